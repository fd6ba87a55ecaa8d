"""The inbound worker: handles webhook events after the channel has had its 200 (service).

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
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.services.sweeping import sweep_forever
from storage import inbound_repo, repo

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

EventHandler = Callable[[dict[str, Any]], Awaitable[None]]


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(5 * 2 ** attempts, 600))


class InboundWorker:
    """Handles stored events of the channels that registered a handler in `handlers`."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock,
                 owner: str | None = None, batch: int = 64, concurrency: int = 8) -> None:
        self.sessions = sessions
        self.clock = clock
        self.owner = owner or f"inbound-{uuid.uuid4().hex[:8]}"
        self.batch = batch
        # Events handled at once: each holds a database connection while it runs, and the
        # outbox and the timers need some left.
        self._slots = asyncio.Semaphore(concurrency)
        self._next_prune: datetime | None = None
        self.wake = asyncio.Event()
        # Filled in by the channel adapters at wiring time: channel name -> handler.
        self.handlers: dict[str, EventHandler] = {}

    async def handle_due(self) -> int:
        """One sweep: claim the events due (one per sender), handle them concurrently,
        record the results in one transaction. Returns how many were claimed."""
        await self._prune_if_due()
        token = f"{self.owner}:{uuid.uuid4().hex[:8]}"
        async with self.sessions.begin() as s:
            rows = await inbound_repo.lease_due(s, self.clock.now(), list(self.handlers),
                                                token, LEASE, self.batch)
            claimed = [(row.id, row.channel, dict(row.payload), row.attempts) for row in rows]
        if not claimed:
            return 0
        outcomes = await asyncio.gather(*(self._handle(*item) for item in claimed))
        now = self.clock.now()
        async with self.sessions.begin() as s:
            await inbound_repo.mark_handled(
                s, [item[0] for item, error in zip(claimed, outcomes, strict=True)
                    if error is None], token, now)
            for (event_id, channel, _, attempts), error in zip(claimed, outcomes, strict=True):
                if error is None:
                    continue
                give_up = attempts >= MAX_ATTEMPTS
                if give_up:
                    log.error("inbound %s (%s) failed %s times: set aside (%s)", event_id,
                              channel, attempts, error)
                else:
                    log.warning("inbound %s (%s) failed (%s); retrying", event_id, channel,
                                error)
                await inbound_repo.mark_failed(s, event_id, token, error,
                                               None if give_up else now + backoff(attempts),
                                               now)
        return len(claimed)

    async def _prune_if_due(self) -> None:
        """Deleting is idempotent, so each process may do it on its own schedule."""
        now = self.clock.now()
        if self._next_prune is not None and now < self._next_prune:
            return
        self._next_prune = now + PRUNE_EVERY
        async with self.sessions.begin() as s:
            removed = await inbound_repo.prune(s, now - KEEP_HANDLED, now - KEEP_SET_ASIDE)
            forgotten = await repo.forget_inbound(s, now - KEEP_KEYS)
        if removed or forgotten:
            log.info("inbound: %s old events and %s old keys deleted", removed, forgotten)

    async def _handle(self, event_id: int, channel: str, payload: dict[str, Any],
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

    async def next_due(self) -> datetime | None:
        async with self.sessions() as s:
            return await inbound_repo.next_due_at(s, list(self.handlers))

    async def run(self, stop: asyncio.Event, idle: float = 5.0) -> None:
        await sweep_forever(stop, self.wake, self.clock, self.handle_due, self.next_due,
                            idle, "inbound")
