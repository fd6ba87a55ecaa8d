"""The timer worker (workers layer): wakes at the next due deadline timer or top-of-chain
digest and fires what is due, shared safely between processes: timers in transactions of
up to `together`, digests each in its own."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.metrics import Metrics
from bot.services.escalation import Escalation
from storage import deadlines, top_digests
from storage.db import Database

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=120)


class TimerWorker:
    name = "timers"
    idle = 30.0

    def __init__(self, database: Database, escalation: Escalation,
                 on_fired: Callable[[], None] | None = None, owner: str | None = None,
                 batch: int = 200, together: int = 200,
                 metrics: Metrics | None = None) -> None:
        self.database = database
        self.metrics = metrics or Metrics()
        self.escalation = escalation
        # Fired timers queue messages: the delivery worker should look.
        self.on_fired = on_fired
        self.owner = owner or f"timers-{uuid.uuid4().hex[:8]}"
        self.batch = batch
        # Timers fired in one transaction. 1,000 due at once on PostgreSQL, in-process:
        # 3.1-3.4 s by 50 (claims of 100), 2.0-2.2 s by 200. A batch holds SQLite's write
        # lock for a few hundred milliseconds at most.
        self.together = together

    async def run_due(self, now: datetime) -> int:
        fired = 0
        async with self.database.transaction() as tx:
            claimed = await deadlines.lease_due_timers(tx, now, self.owner, LEASE, self.batch)
            digests = await top_digests.lease_due(tx, now, self.owner, LEASE, self.batch)
        for start in range(0, len(claimed), self.together):
            fired += await self._fire(claimed[start:start + self.together], now)
        for person_id in digests:
            async with self.database.transaction() as tx:
                digest = await top_digests.leased(tx, person_id, self.owner, now)
                if digest is not None:
                    await self.escalation.digest.fire(tx, digest, now)
        # Every claimed digest moved its due time on (sent, held or at rest): work done.
        fired += len(digests)
        if fired and self.on_fired:
            self.on_fired()
        return fired

    async def _fire(self, timer_ids: list[int], now: datetime) -> int:
        """Fire these timers in one transaction (a restart may find a thousand due); if
        that fails, one by one, so one that cannot fire keeps none of the others back
        (it stays claimed, and is tried again when its lease ends)."""
        try:
            async with self.database.transaction() as tx:
                timers = await deadlines.leased_timers(tx, timer_ids, self.owner)
                await self.escalation.fire_all(tx, timers, now)
            for timer in timers:
                self.metrics.timer_lateness.observe(
                    max(0.0, (now - timer.fire_at).total_seconds()))
            return len(timers)
        except Exception as error:
            # The error's text may quote a case's words: only its kind is logged.
            log.warning("%s timer(s) from %s failed (%s)", len(timer_ids), timer_ids[0],
                        type(error).__name__)
            if len(timer_ids) == 1:
                return 0
        return sum([await self._fire([timer_id], now) for timer_id in timer_ids])

    async def next_due(self, now: datetime) -> datetime | None:
        async with self.database.read() as tx:
            due = [d for d in (await deadlines.next_timer_at(tx),
                               await top_digests.next_due_at(tx)) if d is not None]
        return min(due) if due else None
