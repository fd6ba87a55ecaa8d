"""The pruning worker (workers layer): once an hour, deletes what only served delivery once
it is older than the commune's retention (`[retention]` in the commune file): outbox
messages sent, skipped or failed for good, timers done, the web simulator's chat log (after
`delivered_days`), and the statistics files with their download links (after
`files_days`). Cases, their deadlines, team and audit trail are never deleted here; what
a case or a waiting message still needs is kept whatever its age (storage.outbox's
prune_delivered says what).

It takes no lease. Each table goes in bounded batches, oldest first (DELETE ... WHERE id IN
(SELECT id ... ORDER BY <age>, id LIMIT n): storage.sql.delete_batch), each batch its own
short transaction, so neither SQLite's write lock nor PostgreSQL's row locks are held for
long. Deleting by age is idempotent: processes sharing one database each prune on their
own schedule, rows another process is deleting at that moment are skipped (SKIP LOCKED),
rows already gone are not found, and the last one to look deletes what is left, or
nothing. Two processes deleting at once is harmless.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.domain.commune import Retention
from bot.metrics import Metrics
from storage import deadlines, files, outbox, simulator
from storage.db import Database

log = logging.getLogger(__name__)
EVERY = timedelta(hours=1)
# Rows per DELETE: a batch holds the write lock for milliseconds.
BATCH = 500


class PruningWorker:
    name = "pruning"
    idle = 600.0

    def __init__(self, database: Database, retention: Retention, every: timedelta = EVERY,
                 batch: int = BATCH, metrics: Metrics | None = None) -> None:
        self.database = database
        self.metrics = metrics or Metrics()
        self.retention = retention
        self.every = every
        self.batch = batch
        # When to look again; None: at the first look (a process that was down catches up).
        self._next: datetime | None = None

    async def run_due(self, now: datetime) -> int:
        """One batch of each table when due; how many rows went. A full batch means more
        may be left: the scheduler calls again at once, and the hour starts only once
        every table is caught up."""
        if self._next is not None and now < self._next:
            return 0
        delivered_before = now - self.retention.delivered
        counts: dict[str, int] = {}
        async with self.database.transaction() as tx:
            counts["outbox"] = await outbox.prune_delivered(tx, delivered_before, self.batch)
        async with self.database.transaction() as tx:
            counts["timers"] = await deadlines.prune_timers(tx, delivered_before, self.batch)
        async with self.database.transaction() as tx:
            counts["simulator"] = await simulator.prune(tx, delivered_before, self.batch)
        async with self.database.transaction() as tx:
            counts["files"] = await files.prune(tx, now - self.retention.files,
                                                await outbox.files_waiting(tx), self.batch)
        if all(n < self.batch for n in counts.values()):
            self._next = now + self.every
        for table, n in counts.items():
            if n:
                self.metrics.purged.labels(table).inc(n)
        deleted = sum(counts.values())
        if deleted:
            log.info("pruned %s outbox messages, %s timers, %s simulator messages, %s files",
                     counts["outbox"], counts["timers"], counts["simulator"], counts["files"])
        return deleted

    async def next_due(self, now: datetime) -> datetime | None:
        return self._next
