"""Requests to close a case that wait for the chairman's approval (storage layer).

Functions take the caller's transaction and never commit; they return domain dataclasses.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from bot.domain.cases import CloseRequest, Decision
from storage.db import Tx
from storage.models import CloseRequest as CloseRequestRow
from storage.sql import rowcount, table

requests = table(CloseRequestRow)
COLUMNS = tuple(requests.c)


def _request(m: Mapping[Any, Any]) -> CloseRequest:
    return CloseRequest(**{c.name: m[c.name] for c in COLUMNS})


async def add_request(tx: Tx, case_id: int, requested_by: int, outcome: str, note: str,
                      now: datetime) -> CloseRequest:
    """A new request for the case; one still waiting is replaced (its buttons go stale)."""
    await tx.conn.execute(
        update(requests).where(requests.c.case_id == case_id, requests.c.decision.is_(None))
        .values(decision=Decision.REPLACED.value, decided_at=now))
    row = (await tx.conn.execute(requests.insert().values(
        case_id=case_id, requested_by=requested_by, outcome=outcome, note=note,
        requested_at=now).returning(*COLUMNS))).one()
    return _request(row._mapping)


async def request(tx: Tx, request_id: int) -> CloseRequest | None:
    row = (await tx.conn.execute(select(requests).where(requests.c.id == request_id))).first()
    return _request(row._mapping) if row else None


async def decide(tx: Tx, request_id: int, person_id: int, decision: Decision,
                 now: datetime) -> bool:
    """Answer a waiting request; False if it was answered (or replaced) already, so of two
    presses only the first counts."""
    return rowcount(await tx.conn.execute(
        update(requests).where(requests.c.id == request_id, requests.c.decision.is_(None))
        .values(decided_by=person_id, decision=decision.value, decided_at=now))) == 1
