"""The inbound queue (storage layer): webhook events stored before the channel gets its 200,
claimed afterwards with a lease by whichever process is free. Functions never commit.

One sender's events are handed out one at a time, oldest first: a process may claim a
sender's event only when no older event of that sender is still unhandled, so two processes
never handle one person's messages out of order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import InboundQueue

# A row whose handling failed waits under this owner until its lease (the backoff) ends.
RETRY_OWNER = "retry"


async def store_events(s: AsyncSession, channel: str,
                       events: Sequence[tuple[str, str, dict[str, Any], datetime]]
                       ) -> list[bool]:
    """Store (key, sender, payload, received_at) events in one statement, in their order;
    for each, whether it is new (False: its key was stored before, or earlier in `events`)."""
    fresh: dict[str, dict[str, Any]] = {}
    for key, sender, payload, now in events:
        fresh.setdefault(key, dict(channel=channel, key=key, sender=sender, payload=payload,
                                   received_at=now, attempts=0))
    dialect = s.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (insert(InboundQueue).values(list(fresh.values()))
            .on_conflict_do_nothing(index_elements=["key"]).returning(InboundQueue.key))
    stored = set((await s.scalars(stmt)).all())
    result = []
    for key, *_ in events:
        result.append(key in stored)
        stored.discard(key)  # a second copy in the same batch is a duplicate
    return result


def _first_of_sender(channels: Sequence[str]) -> Any:
    """Unhandled events with no older unhandled event of the same sender: the only ones
    that can be handed out (the others wait their turn, whatever their own times)."""
    older = aliased(InboundQueue)
    return and_(
        InboundQueue.processed_at.is_(None),
        InboundQueue.channel.in_(channels),
        ~select(older.id).where(older.sender == InboundQueue.sender,
                                older.processed_at.is_(None),
                                older.id < InboundQueue.id).exists(),
    )


def _claimable(now: datetime, channels: Sequence[str]) -> Any:
    return and_(_first_of_sender(channels),
                or_(InboundQueue.lease_until.is_(None), InboundQueue.lease_until < now))


async def lease_due(s: AsyncSession, now: datetime, channels: Sequence[str], owner: str,
                    lease: timedelta, limit: int) -> Sequence[InboundQueue]:
    """Claim up to `limit` events, each the oldest unhandled one of its sender. `owner` is
    unique per claim, so what carries it afterwards is ours alone."""
    if not channels:
        return []
    ids = list(await s.scalars(select(InboundQueue.id).where(_claimable(now, channels))
                               .order_by(InboundQueue.id).limit(limit)))
    if not ids:
        return []
    await s.execute(
        update(InboundQueue)
        .where(InboundQueue.id.in_(ids), InboundQueue.processed_at.is_(None),
               or_(InboundQueue.lease_until.is_(None), InboundQueue.lease_until < now))
        .values(lease_owner=owner, lease_until=now + lease,
                attempts=InboundQueue.attempts + 1)
        .execution_options(synchronize_session=False))
    return (await s.scalars(
        select(InboundQueue).where(InboundQueue.id.in_(ids), InboundQueue.lease_owner == owner)
        .order_by(InboundQueue.id).execution_options(populate_existing=True))).all()


async def mark_handled(s: AsyncSession, ids: Sequence[int], owner: str, now: datetime) -> int:
    """Mark events handled, if the lease is still ours (else another process has them)."""
    if not ids:
        return 0
    result = await s.execute(
        update(InboundQueue)
        .where(InboundQueue.id.in_(ids), InboundQueue.lease_owner == owner,
               InboundQueue.processed_at.is_(None))
        .values(processed_at=now, lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False))
    return cast("CursorResult[Any]", result).rowcount


async def mark_failed(s: AsyncSession, event_id: int, owner: str, error: str,
                      retry_at: datetime | None, now: datetime) -> None:
    """Record a failure: the event comes back at `retry_at`, or with None is given up
    (marked handled, the error kept), so it no longer holds its sender's later events."""
    values: dict[str, Any] = {"last_error": error[:200]}
    if retry_at is None:
        values.update(processed_at=now, lease_owner=None, lease_until=None)
    else:
        values.update(lease_owner=RETRY_OWNER, lease_until=retry_at)
    await s.execute(
        update(InboundQueue)
        .where(InboundQueue.id == event_id, InboundQueue.lease_owner == owner,
               InboundQueue.processed_at.is_(None))
        .values(**values).execution_options(synchronize_session=False))


async def prune(s: AsyncSession, handled_before: datetime, set_aside_before: datetime) -> int:
    """Delete events handled before `handled_before`, and those set aside after failing
    (kept longer, to be looked into) before `set_aside_before`. Returns how many."""
    result = await s.execute(
        delete(InboundQueue)
        .where(InboundQueue.processed_at.is_not(None),
               or_(and_(InboundQueue.last_error.is_(None),
                        InboundQueue.processed_at < handled_before),
                   InboundQueue.processed_at < set_aside_before))
        .execution_options(synchronize_session=False))
    return cast("CursorResult[Any]", result).rowcount


async def next_due_at(s: AsyncSession, channels: Sequence[str]) -> datetime | None:
    """When the next unhandled event may be claimed (a leased one: when its lease ends). An
    event behind its sender's older one counts only once that one is done: else a sender
    whose first event waits out a retry would make the worker look again every moment."""
    if not channels:
        return None
    return await s.scalar(
        select(func.min(func.coalesce(InboundQueue.lease_until, InboundQueue.received_at)))
        .where(_first_of_sender(channels)))


async def event_by_key(s: AsyncSession, key: str) -> InboundQueue | None:
    return await s.scalar(select(InboundQueue).where(InboundQueue.key == key)
                          .execution_options(populate_existing=True))


async def unhandled_count(s: AsyncSession) -> int:
    return int(await s.scalar(select(func.count()).select_from(InboundQueue)
                              .where(InboundQueue.processed_at.is_(None))) or 0)
