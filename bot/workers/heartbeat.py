"""The heartbeat (workers layer): this process says it is alive, and frees the work of
those that stopped saying so.

Each process has an identity: an id new at every start, and a name that stays the same
across restarts (host:port). Every lease it takes is owned by `identity.owner(worker)`. It
beats about once a second on the real clock (a test's fake clock jumps hours, which must
not make processes look dead); one silent for DEAD_AFTER is dead, and its claimed rows are
free again at once instead of after their leases (a minute for a message). At start, a
process frees what its own previous incarnation held: that one was killed, or it would
still hold the port.

A process frozen for longer than DEAD_AFTER (not killed) comes back to find its claims
given away: it registers again, and a send it finishes meanwhile may also be made by the
process that took the row over (the outbox's one documented double-send window).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import Clock, SystemClock
from storage import processes
from storage.db import Database

log = logging.getLogger(__name__)
BEAT_EVERY = 1.0
DEAD_AFTER = timedelta(seconds=5)


@dataclass(frozen=True)
class ProcessIdentity:
    id: str
    name: str

    @classmethod
    def new(cls, name: str | None = None) -> ProcessIdentity:
        process_id = uuid.uuid4().hex[:16]
        return cls(process_id, name or f"process-{process_id}")

    def owner(self, worker: str) -> str:
        """The lease owner of one of this process's workers."""
        return f"{processes.owner_prefix(self.id)}{worker}"


class Heartbeat:
    name = "heartbeat"
    idle = BEAT_EVERY

    def __init__(self, database: Database, identity: ProcessIdentity,
                 wall: Clock | None = None, dead_after: timedelta = DEAD_AFTER,
                 on_freed: Callable[[], None] | None = None) -> None:
        self.database = database
        self.identity = identity
        self.wall = wall or SystemClock()
        self.dead_after = dead_after
        # Work came free: every worker should look.
        self.on_freed = on_freed
        self._last: datetime | None = None

    async def register(self) -> int:
        """Say this process runs, and take back what its earlier incarnation held."""
        now = self.wall.now()
        async with self.database.transaction() as tx:
            await processes.register(tx, self.identity.id, self.identity.name, now)
            gone = await processes.dead(tx, self.identity.id, self.identity.name,
                                        now - self.dead_after)
            freed = await processes.free_claims(tx, gone)
        self._last = now
        if gone:
            log.info("took back %s rows of %s stopped process(es)", freed, len(gone))
        return freed

    async def run_due(self, now: datetime) -> int:
        """Beat (at most twice a second, however often the workers are woken) and free
        what dead processes held; how many rows came free."""
        wall_now = self.wall.now()
        if self._last is not None and (wall_now - self._last).total_seconds() < BEAT_EVERY / 2:
            return 0
        self._last = wall_now
        async with self.database.transaction() as tx:
            alive = await processes.beat(tx, self.identity.id, self.identity.name, wall_now)
            gone = await processes.dead(tx, self.identity.id, self.identity.name,
                                        wall_now - self.dead_after)
            freed = await processes.free_claims(tx, gone)
        if not alive:
            log.warning("this process was taken for dead; its claims were given away")
        if gone:
            log.info("freed %s rows of %s stopped process(es)", freed, len(gone))
        if freed and self.on_freed is not None:
            self.on_freed()
        return freed

    async def next_due(self, now: datetime) -> datetime | None:
        return None

    async def stop(self) -> None:
        """Leave in good order: give back what this process holds."""
        async with self.database.transaction() as tx:
            await processes.forget(tx, self.identity.id)
