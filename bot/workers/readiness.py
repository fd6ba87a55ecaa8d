"""What operators ask the process at scrape time (workers layer): whether it is ready to
serve (/readyz), and the outbox gauges of /metrics.

Ready means three checks pass: the database answers a trivial query within a short
timeout; every worker has looked within its expected interval (the scheduler keeps when
each last did); the message that has waited longest on the channels this process sends
on waited less than a threshold. The answer names what fails, never a person.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bot.clock import Clock
from bot.metrics import Metrics
from bot.workers.scheduler import Scheduler
from storage import outbox
from storage.db import Database

DATABASE, OUTBOX = "database", "outbox"
# How long a message may wait to be sent before the process counts as not ready.
OUTBOX_WITHIN = timedelta(minutes=5)


@dataclass(frozen=True)
class Verdict:
    """Ready or not; `failing` names the failing checks ("database", "worker:<name>",
    "outbox"), `checks` what each found."""

    failing: tuple[str, ...]
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return not self.failing

    def to_json(self) -> dict[str, Any]:
        return {"ready": self.ready, "failing": list(self.failing), "checks": self.checks}


class Readiness:
    def __init__(self, database: Database, clock: Clock, scheduler: Scheduler,
                 channels: Sequence[str], outbox_within: timedelta = OUTBOX_WITHIN) -> None:
        self.database = database
        # The clock the outbox's times are written on (a fake one in the simulator).
        self.clock = clock
        self.scheduler = scheduler
        self.channels = list(channels)
        self.outbox_within = outbox_within

    async def verdict(self) -> Verdict:
        failing: list[str] = []
        checks: dict[str, Any] = {}
        answers = await self.database.answers()
        checks[DATABASE] = "ok" if answers else "no answer"
        if not answers:
            failing.append(DATABASE)
        late = self.scheduler.late()
        checks["workers"] = {w.name: (f"late: no look for {round(late[w.name])} s"
                                      if w.name in late else "ok")
                             for w in self.scheduler.workers}
        failing.extend(f"worker:{name}" for name in late)
        if answers:
            async with self.database.read() as tx:
                oldest = await outbox.oldest_waiting(tx, self.channels)
            waited = (self.clock.now() - oldest).total_seconds() if oldest else 0.0
            checks[OUTBOX] = {"oldest_waiting_seconds": round(max(0.0, waited)),
                              "limit_seconds": round(self.outbox_within.total_seconds())}
            if waited > self.outbox_within.total_seconds():
                failing.append(OUTBOX)
        else:
            checks[OUTBOX] = "not checked: no database"
        return Verdict(tuple(failing), checks)


async def read_outbox_gauges(database: Database, clock: Clock, metrics: Metrics) -> None:
    """Set the outbox gauges from the database as it is now (all channels, every process's
    rows: any process's /metrics shows the whole queue)."""
    async with database.read() as tx:
        rows = await outbox.waiting_by_kind(tx)
    metrics.outbox_waiting(rows, clock.now())
