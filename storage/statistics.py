"""Queries behind period statistics (storage layer): the facts of a commune's cases.

Portable SQL only (one outer join, range filters on an indexed column), so SQLite and
PostgreSQL answer the same.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import DateTime, func, select, type_coerce

from storage.db import Tx
from storage.models import Case, Village

CHUNK = 2_000


class CaseFactRow(NamedTuple):
    """The columns statistics need from one case; no names, descriptions or phones. Times
    are in UTC, naive on SQLite (`_plain`)."""

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
    setting: str | None


def _plain(column: Any) -> Any:
    """A time as the driver reads it, without storage.models' UTC conversion: naive UTC on
    SQLite, aware on PostgreSQL (statistics take both); three a case, a hundred thousand
    cases a province's year."""
    return type_coerce(column, DateTime(timezone=True))


async def case_facts(tx: Tx, commune_id: int, start: datetime,
                     end: datetime) -> AsyncIterator[list[CaseFactRow]]:
    """Cases of the commune created in [start, end), oldest first, streamed in chunks of
    CHUNK: the caller counts the rows as they arrive, so a year of a large commune is never
    held in memory at once (bench/stats.py: 100,000 cases); a chunk at a time, because
    handing each row across from the database's thread costs more than counting it."""
    stmt = (
        select(Case.code, Case.types, Case.confirmed_form, Case.sex, Case.age_band,
               # A place the reporter typed stands in for a village the list did not have.
               func.coalesce(Village.name, Case.location_text), Case.urgency, Case.status,
               Case.outcome, _plain(Case.created_at), _plain(Case.acknowledged_at),
               _plain(Case.assessed_at), Case.escalation_level, Case.setting)
        .outerjoin(Village, Village.id == Case.village_id)
        .where(Case.commune_id == commune_id, Case.created_at >= start,
               Case.created_at < end)
        .order_by(Case.created_at, Case.id)
        .execution_options(yield_per=CHUNK)
    )
    result = await tx.conn.stream(stmt)
    async for chunk in result.partitions(CHUNK):
        yield [CaseFactRow._make(row) for row in chunk]
