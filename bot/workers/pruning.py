"""The pruning worker (workers layer): once an hour, the retention job. It deletes what only
served delivery once it is older than the commune's retention (`[retention]` in the commune
file): outbox messages sent, skipped or failed for good, timers done (after
`delivered_days`), the web simulator's chat log (after `simulator_days`), and the
statistics files with their download links (after `files_days`). It empties what held
people's words once nothing needs them: the Reply of every message no longer pending (its
metadata stays for the delivery accounting, dedupe, edits and each chat's order), and the
conversations last changed more than a day ago (a report draft; the person starts afresh).
It blanks the free text of the cases each commune closed more than its
`closed_case_text_days` ago, keeping their structured fields. Cases, their deadlines,
team and audit trail are never deleted here; what a case or a waiting message still needs
is kept whatever its age (storage.outbox's prune_delivered says what). Zalo's raw inbound
events are emptied as they are handled (storage.inbound.mark_handled).

It takes no lease. Each kind goes in bounded batches, oldest first (storage.sql's
delete_batch and update_batch), each batch its own short transaction, so neither SQLite's
write lock nor PostgreSQL's row locks are held for long. Deleting by age, and blanking what
is not blank yet, are idempotent: processes sharing one database each prune on their own
schedule, rows another process is changing at that moment are skipped (SKIP LOCKED), rows
already done are not found, and the last one to look does what is left, or nothing. Each
run's counts go to bot.services.retention.record_purge.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from bot.domain.commune import Retention
from bot.metrics import Metrics
from bot.services.conversation import DRAFT_TTL
from bot.services.retention import record_purge
from storage import case_texts, conversations, deadlines, files, outbox, simulator
from storage.db import Database

log = logging.getLogger(__name__)
EVERY = timedelta(hours=1)
# Rows per statement: a batch holds the write lock for milliseconds.
BATCH = 500


class PruningWorker:
    name = "pruning"
    idle = 600.0

    def __init__(self, database: Database, retention: Retention, every: timedelta = EVERY,
                 batch: int = BATCH, metrics: Metrics | None = None,
                 closed_case_text: Mapping[int, timedelta] | None = None) -> None:
        """`closed_case_text`: per commune id, how long after a case's close its free text
        is kept (none given: no case is touched)."""
        self.database = database
        self.metrics = metrics or Metrics()
        self.retention = retention
        self.every = every
        self.batch = batch
        self.closed_case_text = dict(closed_case_text or {})
        # Empty the words of delivered messages. Off only where a long test reads what was
        # sent back from the outbox (tests/support/workers.keep_sent_words).
        self.empty_sent = True
        # When to look again; None: at the first look (a process that was down catches up).
        self._next: datetime | None = None
        # Emptying the outbox goes up the ids, from `_from`: below where a pass starts,
        # every message was done with when the pass before began (so it emptied them).
        # `_next_floor`: where the next pass starts, the first message waiting when this
        # pass began.
        self._from = 0
        self._next_floor: int | None = None

    async def run_due(self, now: datetime) -> int:
        """One batch of each kind when due; how many rows went or were emptied. A full
        batch means more may be left: the scheduler calls again at once, and the hour
        starts only once every kind is caught up."""
        if self._next is not None and now < self._next:
            return 0
        delivered_before = now - self.retention.delivered
        counts: dict[str, int] = {}
        async with self.database.transaction() as tx:
            counts["outbox"] = await outbox.prune_delivered(tx, delivered_before, self.batch)
        emptied, more = await self._empty_outbox() if self.empty_sent else (0, False)
        counts["outbox_payloads"] = emptied
        async with self.database.transaction() as tx:
            counts["timers"] = await deadlines.prune_timers(tx, delivered_before, self.batch)
        async with self.database.transaction() as tx:
            counts["simulator"] = await simulator.prune(tx, now - self.retention.simulator,
                                                        self.batch)
        async with self.database.transaction() as tx:
            counts["files"] = await files.prune(tx, now - self.retention.files,
                                                await outbox.files_waiting(tx), self.batch)
        async with self.database.transaction() as tx:
            counts["drafts"] = await conversations.forget_drafts(tx, now - DRAFT_TTL,
                                                                 self.batch)
        async with self.database.transaction() as tx:
            await record_purge(tx, None, counts, now)
        full = more or any(n >= self.batch for n in counts.values())
        done = sum(counts.values())
        # Communes that keep closed cases' text equally long are purged together.
        alike: dict[timedelta, list[int]] = {}
        for commune_id, keep in self.closed_case_text.items():
            alike.setdefault(keep, []).append(commune_id)
        for keep, commune_ids in alike.items():
            purged = await self._purge_closed(commune_ids, now - keep, now)
            full = full or any(n >= self.batch for n in purged.values())
            done += sum(purged.values())
            for kind, n in purged.items():
                counts[kind] = counts.get(kind, 0) + n
        if not full:
            self._next = now + self.every
        for table, n in counts.items():
            if n:
                self.metrics.purged.labels(table).inc(n)
        return done

    async def _empty_outbox(self) -> tuple[int, bool]:
        """One batch of delivered messages' words, in a pass up the ids that starts where
        the last one found the first message still waiting: how many were emptied, and
        whether the pass goes on."""
        async with self.database.transaction() as tx:
            if self._next_floor is None:
                self._next_floor = await outbox.first_waiting_id(tx)
            emptied, next_from = await outbox.empty_delivered(tx, self._from, self.batch)
        if next_from is not None:
            self._from = next_from
        else:
            self._from, self._next_floor = self._next_floor, None
        return emptied, next_from is not None

    async def _purge_closed(self, commune_ids: Sequence[int], closed_before: datetime,
                            now: datetime) -> dict[str, int]:
        """One batch of these communes' closed cases' free text; how many of each kind.
        Each commune's own counts go to its audit trail."""
        async with self.database.transaction() as tx:
            found = {
                "case_texts": await case_texts.purge_cases(tx, commune_ids, closed_before,
                                                           self.batch),
                "attachments": await case_texts.purge_attachments(tx, commune_ids,
                                                                  closed_before, self.batch),
                "close_notes": await case_texts.purge_close_notes(tx, commune_ids,
                                                                  closed_before, self.batch),
            }
            for commune_id in sorted({c for per in found.values() for c in per}):
                await record_purge(tx, commune_id, {kind: per.get(commune_id, 0)
                                                    for kind, per in found.items()},
                                   now)
        return {kind: sum(per.values()) for kind, per in found.items()}

    async def next_due(self, now: datetime) -> datetime | None:
        return self._next
