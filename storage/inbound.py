"""The inbound queue (storage layer): webhook events stored before the channel gets its 200,
claimed afterwards with a lease by whichever process is free. Functions never commit.

One sender's events are handed out one at a time, oldest first: a process may claim a
sender's event only when no older event of that sender is still unhandled, so two processes
never handle one person's messages out of order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update

from storage.db import Tx
from storage.models import InboundQueue
from storage.sql import insert, rowcount, table

queue = table(InboundQueue)

# A row whose handling failed waits under this owner until its lease (the backoff) ends.
RETRY_OWNER = "retry"


@dataclass(frozen=True)
class QueuedEvent:
    """A stored webhook event: its channel's raw JSON, and how often it was tried."""

    id: int
    channel: str
    key: str
    payload: Mapping[str, Any]
    attempts: int
    processed_at: datetime | None = None
    last_error: str | None = None


def _event(m: Mapping[Any, Any]) -> QueuedEvent:
    return QueuedEvent(id=m["id"], channel=m["channel"], key=m["key"],
                       payload=dict(m["payload"]), attempts=m["attempts"],
                       processed_at=m["processed_at"], last_error=m["last_error"])


async def store_events(tx: Tx, channel: str,
                       events: Sequence[tuple[str, str, dict[str, Any], datetime]]
                       ) -> list[bool]:
    """Store (key, sender, payload, received_at) events in one statement, in their order;
    for each, whether it is new (False: its key was stored before, or earlier in `events`)."""
    fresh: dict[str, dict[str, Any]] = {}
    for key, sender, payload, now in events:
        fresh.setdefault(key, dict(channel=channel, key=key, sender=sender, payload=payload,
                                   received_at=now, attempts=0))
    stmt = (insert(tx, queue).values(list(fresh.values()))
            .on_conflict_do_nothing(index_elements=["key"]).returning(queue.c.key))
    stored = set((await tx.conn.scalars(stmt)).all())
    result = []
    for key, *_ in events:
        result.append(key in stored)
        stored.discard(key)  # a second copy in the same batch is a duplicate
    return result


def _first_of_sender(channels: Sequence[str]) -> Any:
    """Unhandled events with no older unhandled event of the same sender: the only ones
    that can be handed out (the others wait their turn, whatever their own times)."""
    older = queue.alias("older")
    return and_(
        queue.c.processed_at.is_(None),
        queue.c.channel.in_(list(channels)),
        ~select(older.c.id).where(older.c.sender == queue.c.sender,
                                  older.c.processed_at.is_(None),
                                  older.c.id < queue.c.id).exists(),
    )


def _claimable(now: datetime, channels: Sequence[str]) -> Any:
    return and_(_first_of_sender(channels),
                or_(queue.c.lease_until.is_(None), queue.c.lease_until < now))


async def lease_due(tx: Tx, now: datetime, channels: Sequence[str], owner: str,
                    lease: timedelta, limit: int) -> list[QueuedEvent]:
    """Claim up to `limit` events, each the oldest unhandled one of its sender. `owner` is
    unique per claim, so what carries it afterwards is ours alone."""
    if not channels:
        return []
    ids = list(await tx.conn.scalars(select(queue.c.id).where(_claimable(now, channels))
                                     .order_by(queue.c.id).limit(limit)))
    if not ids:
        return []
    await tx.conn.execute(
        update(queue)
        .where(queue.c.id.in_(ids), queue.c.processed_at.is_(None),
               or_(queue.c.lease_until.is_(None), queue.c.lease_until < now))
        .values(lease_owner=owner, lease_until=now + lease, attempts=queue.c.attempts + 1))
    rows = await tx.conn.execute(select(queue).where(queue.c.id.in_(ids),
                                                     queue.c.lease_owner == owner)
                                 .order_by(queue.c.id))
    return [_event(r._mapping) for r in rows]


async def mark_handled(tx: Tx, ids: Sequence[int], owner: str, now: datetime) -> int:
    """Mark events handled, if the lease is still ours (else another process has them),
    and empty their payloads: the raw event holds what the person typed, and once handled
    only its key (which drops the channel's retries) and times are needed."""
    if not ids:
        return 0
    return rowcount(await tx.conn.execute(
        update(queue)
        .where(queue.c.id.in_(list(ids)), queue.c.lease_owner == owner,
               queue.c.processed_at.is_(None))
        .values(processed_at=now, lease_owner=None, lease_until=None, payload={})))


async def mark_failed(tx: Tx, event_id: int, owner: str, error: str,
                      retry_at: datetime | None, now: datetime) -> None:
    """Record a failure: the event comes back at `retry_at`, or with None is given up
    (marked handled, the error kept), so it no longer holds its sender's later events."""
    values: dict[str, Any] = {"last_error": error[:200]}
    if retry_at is None:
        values.update(processed_at=now, lease_owner=None, lease_until=None)
    else:
        values.update(lease_owner=RETRY_OWNER, lease_until=retry_at)
    await tx.conn.execute(
        update(queue)
        .where(queue.c.id == event_id, queue.c.lease_owner == owner,
               queue.c.processed_at.is_(None))
        .values(**values))


async def prune(tx: Tx, handled_before: datetime, set_aside_before: datetime) -> int:
    """Delete events handled before `handled_before`, and those set aside after failing
    (kept longer, to be looked into) before `set_aside_before`. Returns how many."""
    return rowcount(await tx.conn.execute(
        delete(queue)
        .where(queue.c.processed_at.is_not(None),
               or_(and_(queue.c.last_error.is_(None), queue.c.processed_at < handled_before),
                   queue.c.processed_at < set_aside_before))))


async def next_due_at(tx: Tx, channels: Sequence[str]) -> datetime | None:
    """When the next unhandled event may be claimed (a leased one: when its lease ends). An
    event behind its sender's older one counts only once that one is done: else a sender
    whose first event waits out a retry would make the worker look again every moment."""
    if not channels:
        return None
    value: datetime | None = await tx.conn.scalar(
        select(func.min(func.coalesce(queue.c.lease_until, queue.c.received_at)))
        .where(_first_of_sender(channels)))
    return value


async def event_by_key(tx: Tx, key: str) -> QueuedEvent | None:
    row = (await tx.conn.execute(select(queue).where(queue.c.key == key))).first()
    return _event(row._mapping) if row else None


async def unhandled_count(tx: Tx) -> int:
    return int(await tx.conn.scalar(select(func.count()).select_from(queue)
                                    .where(queue.c.processed_at.is_(None))) or 0)
