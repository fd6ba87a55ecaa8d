"""Queries behind period statistics (storage layer): the facts of a commune's cases.

Portable SQL only (one outer join, range filters on an indexed column), so SQLite and
PostgreSQL answer the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Case, Village


class CaseFactRow(NamedTuple):
    """The columns statistics need from one case; no names, descriptions or phones."""

    code: str
    types: str
    confirmed_form: str | None
    sex: str
    age_band: str
    village: str | None
    urgency: str
    status: str
    outcome: str | None
    created_at: datetime
    acknowledged_at: datetime | None
    assessed_at: datetime | None
    escalation_level: int


async def case_facts(s: AsyncSession, commune_id: int, start: datetime,
                     end: datetime) -> Sequence[CaseFactRow]:
    """Cases of the commune created in [start, end), oldest first."""
    stmt = (
        select(Case.code, Case.types, Case.confirmed_form, Case.sex, Case.age_band,
               Village.name, Case.urgency, Case.status, Case.outcome, Case.created_at,
               Case.acknowledged_at, Case.assessed_at, Case.escalation_level)
        .outerjoin(Village, Village.id == Case.village_id)
        .where(Case.commune_id == commune_id, Case.created_at >= start,
               Case.created_at < end)
        .order_by(Case.created_at, Case.id)
    )
    return [CaseFactRow._make(row) for row in await s.execute(stmt)]
