"""The inbound worker (workers layer): handles webhook events after the channel has had
its 200.

A webhook stores the raw event in the inbound queue and answers at once (Zalo wants an
answer within 2 seconds); this worker claims stored events with a lease, so several
processes share the queue, and hands each to its channel's handler, which turns it into
InboundEvents for the conversation service. A crash after handling but before the event is
marked handled only means it is handled again: the conversation service's own inbound keys
recognise it, so nothing happens twice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from storage import conversations, inbound
from storage.db import Database

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=60)
# An event that fails this often is a bug, not a fault: it is set aside (kept, with its
# error) so it cannot hold its sender's later messages back for ever.
MAX_ATTEMPTS = 5
# A stored event holds what the person wrote. Once handled it is only needed to drop Zalo's
# retries, which stop within hours (older events are refused as replays anyway, and the
# conversation's own inbound keys would still recognise one): keep it a day. Events set
# aside after failing are kept longer, to be looked into.
KEEP_HANDLED = timedelta(days=1)
KEEP_SET_ASIDE = timedelta(days=30)
# The conversation service's inbound keys (every channel's) only need to outlive
# redeliveries: Telegram keeps an update 24 hours, Zalo's retries stop within hours and
# older events are refused as replays. Kept for ever they would also do harm: after a week
# without updates Telegram numbers them from a random point, and a new update meeting an
# old key would be dropped as a duplicate.
KEEP_KEYS = timedelta(days=3)
PRUNE_EVERY = timedelta(hours=1)

EventHandler = Callable[[Mapping[str, Any]], Awaitable[None]]


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(5 * 2 ** attempts, 600))


class InboundWorker:
    """Handles stored events of the channels that have a handler in `handlers`."""

    name = "inbound"
    idle = 5.0

    def __init__(self, database: Database, handlers: Mapping[str, EventHandler],
                 owner: str | None = None, batch: int = 64, concurrency: int = 8) -> None:
        self.database = database
        self.handlers = dict(handlers)
        self.owner = owner or f"inbound-{uuid.uuid4().hex[:8]}"
        self.batch = batch
        # Events handled at once: each holds a database connection while it runs, and the
        # delivery and timer workers need some left.
        self._slots = asyncio.Semaphore(concurrency)
        self._next_prune: datetime | None = None

    async def run_due(self, now: datetime) -> int:
        """One look: claim the events due (one per sender), handle them concurrently,
        record the results in one transaction. Returns how many were claimed."""
        await self._prune_if_due(now)
        token = f"{self.owner}:{uuid.uuid4().hex[:8]}"
        async with self.database.transaction() as tx:
            claimed = await inbound.lease_due(tx, now, list(self.handlers), token, LEASE,
                                              self.batch)
        if not claimed:
            return 0
        outcomes = await asyncio.gather(*(self._handle(event.id, event.channel,
                                                       event.payload, event.attempts)
                                          for event in claimed))
        async with self.database.transaction() as tx:
            await inbound.mark_handled(tx, [e.id for e, error in zip(claimed, outcomes,
                                                                     strict=True)
                                            if error is None], token, now)
            for event, error in zip(claimed, outcomes, strict=True):
                if error is None:
                    continue
                give_up = event.attempts >= MAX_ATTEMPTS
                if give_up:
                    log.error("inbound %s (%s) failed %s times: set aside (%s)", event.id,
                              event.channel, event.attempts, error)
                else:
                    log.warning("inbound %s (%s) failed (%s); retrying", event.id,
                                event.channel, error)
                await inbound.mark_failed(tx, event.id, token, error,
                                          None if give_up else now + backoff(event.attempts),
                                          now)
        return len(claimed)

    async def _prune_if_due(self, now: datetime) -> None:
        """Deleting is idempotent, so each process may do it on its own schedule."""
        if self._next_prune is not None and now < self._next_prune:
            return
        self._next_prune = now + PRUNE_EVERY
        async with self.database.transaction() as tx:
            removed = await inbound.prune(tx, now - KEEP_HANDLED, now - KEEP_SET_ASIDE)
            forgotten = await conversations.forget_inbound(tx, now - KEEP_KEYS)
        if removed or forgotten:
            log.info("inbound: %s old events and %s old keys deleted", removed, forgotten)

    async def _handle(self, event_id: int, channel: str, payload: Mapping[str, Any],
                      attempts: int) -> str | None:
        """Run one event's handler; the error's type name when it failed (no content: an
        exception's text could carry what the person wrote)."""
        if attempts > MAX_ATTEMPTS:
            return "crashed while handling"  # it took its process down each time
        try:
            async with self._slots:
                await self.handlers[channel](payload)
        except Exception as exc:
            log.exception("inbound %s (%s) failed", event_id, channel)
            return type(exc).__name__
        return None

    async def next_due(self, now: datetime) -> datetime | None:
        async with self.database.read() as tx:
            return await inbound.next_due_at(tx, list(self.handlers))
