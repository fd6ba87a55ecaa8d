"""Queries for broadcasts: who gets one, claiming unfinished ones, counting their delivery
(storage layer). Like storage/repo.py, nothing here commits; the caller owns the
transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.calendar_repo import people_with_roles, with_roles
from storage.models import Broadcast, Outbox, Person

COLLABORATOR = "collaborator"


async def collaborators(s: AsyncSession, commune_id: int) -> Sequence[Person]:
    """Every collaborator of the commune, configured or joined through an invite."""
    return await people_with_roles(s, commune_id, (COLLABORATOR,))


async def count_collaborators(s: AsyncSession, commune_id: int) -> int:
    return int(await s.scalar(select(func.count()).select_from(Person).where(
        *with_roles(commune_id, (COLLABORATOR,)))) or 0)


async def add_broadcast(s: AsyncSession, commune_id: int, sender_id: int, total: int,
                        now: datetime) -> Broadcast:
    row = Broadcast(commune_id=commune_id, sender_id=sender_id, created_at=now, total=total,
                    reported=0, edits=0)
    s.add(row)
    await s.flush()
    return row


async def unfinished_ids(s: AsyncSession, now: datetime, limit: int) -> list[int]:
    """Broadcasts still being delivered that no other tracker holds right now."""
    return list(await s.scalars(
        select(Broadcast.id)
        .where(Broadcast.finished_at.is_(None),
               or_(Broadcast.lease_until.is_(None), Broadcast.lease_until < now))
        .order_by(Broadcast.id).limit(limit)))


async def any_unfinished(s: AsyncSession) -> bool:
    return await s.scalar(select(Broadcast.id).where(Broadcast.finished_at.is_(None))
                          .limit(1)) is not None


async def lease_broadcasts(s: AsyncSession, ids: Sequence[int], owner: str, now: datetime,
                           lease: timedelta) -> list[int]:
    """Claim what nobody else holds; `owner` is unique per claim, so what carries it is ours."""
    if not ids:
        return []
    await s.execute(
        update(Broadcast)
        .where(Broadcast.id.in_(ids), Broadcast.finished_at.is_(None),
               or_(Broadcast.lease_until.is_(None), Broadcast.lease_until < now))
        .values(lease_owner=owner, lease_until=now + lease)
        .execution_options(synchronize_session=False))
    return list(await s.scalars(select(Broadcast.id).where(Broadcast.id.in_(ids),
                                                           Broadcast.lease_owner == owner)))


async def leased_broadcast(s: AsyncSession, broadcast_id: int, owner: str) -> Broadcast | None:
    return await s.scalar(select(Broadcast).where(Broadcast.id == broadcast_id,
                                                  Broadcast.lease_owner == owner,
                                                  Broadcast.finished_at.is_(None))
                          .execution_options(populate_existing=True))


async def delivery_counts(s: AsyncSession, broadcast_id: int) -> dict[str, int]:
    """The broadcast's copies to collaborators by outbox status (pending, sent, failed)."""
    rows = await s.execute(select(Outbox.status, func.count()).where(
        Outbox.broadcast_id == broadcast_id, Outbox.kind == "broadcast")
        .group_by(Outbox.status))
    return {str(status): int(n) for status, n in rows.all()}


async def rewrite_waiting(s: AsyncSession, outbox_id: int, payload: dict[str, Any],
                          now: datetime) -> bool:
    """Give a queued message new content, only if no sender holds it right now; False if
    it is already sent, failed or being sent (then a new message must follow it)."""
    result = await s.execute(
        update(Outbox)
        .where(Outbox.id == outbox_id, Outbox.status == "pending",
               or_(Outbox.lease_until.is_(None), Outbox.lease_until < now))
        .values(payload=payload)
        .execution_options(synchronize_session=False))
    return cast("CursorResult[Any]", result).rowcount == 1
