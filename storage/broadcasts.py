"""Broadcasts: an officer's message to every collaborator, and the tracking of its
delivery, claimed with a lease by one tracker at a time (storage layer)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update

from storage.db import Tx
from storage.models import Broadcast as BroadcastRow
from storage.sql import table

broadcasts = table(BroadcastRow)


@dataclass(frozen=True)
class Broadcast:
    id: int
    commune_id: int
    sender_id: int
    total: int
    # The sender's progress message, edited as delivery goes on.
    progress_outbox_id: int | None
    # Delivered + unreachable count last shown in the progress message, and when.
    reported: int
    reported_at: datetime | None
    edits: int
    finished_at: datetime | None


def _broadcast(m: Mapping[Any, Any]) -> Broadcast:
    return Broadcast(id=m["id"], commune_id=m["commune_id"], sender_id=m["sender_id"],
                     total=m["total"], progress_outbox_id=m["progress_outbox_id"],
                     reported=m["reported"], reported_at=m["reported_at"], edits=m["edits"],
                     finished_at=m["finished_at"])


async def add_broadcast(tx: Tx, commune_id: int, sender_id: int, total: int,
                        now: datetime) -> int:
    return int((await tx.conn.execute(broadcasts.insert().values(
        commune_id=commune_id, sender_id=sender_id, created_at=now, total=total, reported=0,
        edits=0).returning(broadcasts.c.id))).scalar_one())


async def set_progress_message(tx: Tx, broadcast_id: int, outbox_id: int | None) -> None:
    await tx.conn.execute(update(broadcasts).where(broadcasts.c.id == broadcast_id)
                          .values(progress_outbox_id=outbox_id))


def _free(now: datetime) -> Any:
    return or_(broadcasts.c.lease_until.is_(None), broadcasts.c.lease_until < now)


async def lease_unfinished(tx: Tx, now: datetime, owner: str, lease: timedelta,
                           limit: int) -> list[int]:
    """Claim broadcasts still being delivered that no other tracker holds."""
    ids = list(await tx.conn.scalars(
        select(broadcasts.c.id).where(broadcasts.c.finished_at.is_(None), _free(now))
        .order_by(broadcasts.c.id).limit(limit)))
    return await claim(tx, ids, owner, now, lease)


async def claim(tx: Tx, ids: Sequence[int], owner: str, now: datetime,
                lease: timedelta) -> list[int]:
    """Claim what nobody else holds; `owner` is unique per claim, so what carries it is ours."""
    if not ids:
        return []
    await tx.conn.execute(update(broadcasts).where(broadcasts.c.id.in_(list(ids)),
                                                   broadcasts.c.finished_at.is_(None),
                                                   _free(now))
                          .values(lease_owner=owner, lease_until=now + lease))
    return list(await tx.conn.scalars(select(broadcasts.c.id).where(
        broadcasts.c.id.in_(list(ids)), broadcasts.c.lease_owner == owner)))


async def leased(tx: Tx, broadcast_id: int, owner: str) -> Broadcast | None:
    row = (await tx.conn.execute(select(broadcasts).where(
        broadcasts.c.id == broadcast_id, broadcasts.c.lease_owner == owner,
        broadcasts.c.finished_at.is_(None)))).first()
    return _broadcast(row._mapping) if row else None


async def any_unfinished(tx: Tx) -> bool:
    return (await tx.conn.execute(select(broadcasts.c.id)
                                  .where(broadcasts.c.finished_at.is_(None))
                                  .limit(1))).first() is not None


async def save_tracking(tx: Tx, broadcast: Broadcast) -> None:
    """What the tracker showed the sender (and whether it is over), and its claim let go."""
    await tx.conn.execute(update(broadcasts).where(broadcasts.c.id == broadcast.id).values(
        reported=broadcast.reported, reported_at=broadcast.reported_at, edits=broadcast.edits,
        finished_at=broadcast.finished_at, lease_owner=None, lease_until=None))
