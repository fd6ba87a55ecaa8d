"""The digest timers of the people at the top of the escalation chain (storage layer).

One row per person, made the first time a case waits on them; claimed with a lease like
the deadline timers (storage/deadlines.py), so of several processes one sends a digest.
Functions take the caller's transaction and never commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update

from bot.domain.top_digest import DigestTimer
from storage.db import Tx
from storage.models import TopDigest
from storage.sql import insert, table

digests = table(TopDigest)


def _timer(m: Mapping[Any, Any]) -> DigestTimer:
    return DigestTimer(person_id=m["person_id"], due_at=m["due_at"],
                       last_sent_at=m["last_sent_at"], seq=m["seq"])


async def arm(tx: Tx, person_ids: Sequence[int], at: datetime) -> None:
    """Each person's next digest falls due at `at`, unless one is due already: the pending
    one stands (it will list every case waiting by then)."""
    if not person_ids:
        return
    stmt = insert(tx, digests).values([{"person_id": p, "due_at": at, "seq": 0}
                                       for p in dict.fromkeys(person_ids)])
    await tx.conn.execute(stmt.on_conflict_do_update(
        index_elements=["person_id"],
        set_={"due_at": func.coalesce(digests.c.due_at, stmt.excluded.due_at)}))


def _free(now: datetime) -> Any:
    return or_(digests.c.lease_until.is_(None), digests.c.lease_until < now)


async def lease_due(tx: Tx, now: datetime, owner: str, lease: timedelta,
                    limit: int) -> list[int]:
    """Claim up to `limit` due digests nobody holds; their people's ids, earliest first."""
    ids = list(await tx.conn.scalars(
        select(digests.c.person_id).where(digests.c.due_at <= now, _free(now))
        .order_by(digests.c.due_at, digests.c.person_id).limit(limit)))
    if not ids:
        return []
    await tx.conn.execute(update(digests).where(digests.c.person_id.in_(ids),
                                                digests.c.due_at <= now, _free(now))
                          .values(lease_owner=owner, lease_until=now + lease))
    claimed = set(await tx.conn.scalars(select(digests.c.person_id).where(
        digests.c.person_id.in_(ids), digests.c.lease_owner == owner)))
    return [i for i in ids if i in claimed]


async def leased(tx: Tx, person_id: int, owner: str, now: datetime) -> DigestTimer | None:
    """The person's digest timer, if this claim still holds it and it is due."""
    row = (await tx.conn.execute(select(digests).where(
        digests.c.person_id == person_id, digests.c.lease_owner == owner,
        digests.c.due_at <= now))).first()
    return _timer(row._mapping) if row else None


async def hold(tx: Tx, person_id: int, due_at: datetime | None) -> None:
    """Nothing sent: look again at `due_at` (None: nothing waits on the person)."""
    await tx.conn.execute(update(digests).where(digests.c.person_id == person_id)
                          .values(due_at=due_at, lease_owner=None, lease_until=None))


async def sent(tx: Tx, person_id: int, now: datetime, next_at: datetime) -> None:
    """A digest was queued now; the next one is due no earlier than `next_at`."""
    await tx.conn.execute(update(digests).where(digests.c.person_id == person_id)
                          .values(seq=digests.c.seq + 1, last_sent_at=now, due_at=next_at,
                                  lease_owner=None, lease_until=None))


async def next_due_at(tx: Tx) -> datetime | None:
    value: datetime | None = await tx.conn.scalar(select(func.min(digests.c.due_at)))
    return value


async def of_person(tx: Tx, person_id: int) -> DigestTimer | None:
    row = (await tx.conn.execute(select(digests)
                                 .where(digests.c.person_id == person_id))).first()
    return _timer(row._mapping) if row else None
