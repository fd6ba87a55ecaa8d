"""The timer worker (workers layer): wakes at the next due deadline timer or top-of-chain
digest and fires what is due, each in its own transaction, shared safely between processes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.services.escalation import Escalation
from storage import deadlines, top_digests
from storage.db import Database

LEASE = timedelta(seconds=120)


class TimerWorker:
    name = "timers"
    idle = 30.0

    def __init__(self, database: Database, escalation: Escalation,
                 on_fired: Callable[[], None] | None = None, owner: str | None = None,
                 batch: int = 100) -> None:
        self.database = database
        self.escalation = escalation
        # Fired timers queue messages: the delivery worker should look.
        self.on_fired = on_fired
        self.owner = owner or f"timers-{uuid.uuid4().hex[:8]}"
        self.batch = batch

    async def run_due(self, now: datetime) -> int:
        fired = 0
        async with self.database.transaction() as tx:
            claimed = await deadlines.lease_due_timers(tx, now, self.owner, LEASE, self.batch)
            digests = await top_digests.lease_due(tx, now, self.owner, LEASE, self.batch)
        for timer_id in claimed:
            async with self.database.transaction() as tx:
                timer = await deadlines.leased_timer(tx, timer_id, self.owner)
                if timer is None:
                    continue
                await self.escalation.fire(tx, timer, now)
                fired += 1
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

    async def next_due(self, now: datetime) -> datetime | None:
        async with self.database.read() as tx:
            due = [d for d in (await deadlines.next_timer_at(tx),
                               await top_digests.next_due_at(tx)) if d is not None]
        return min(due) if due else None
