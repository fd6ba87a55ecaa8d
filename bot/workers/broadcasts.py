"""The broadcast tracker (workers layer): edits each unfinished broadcast's progress message
as delivery goes on and sends the sender a summary once every copy is final.

Broadcasts are claimed with a lease, so trackers in several processes never work on the
same one at once; the summary's dedupe key makes it once even past an expired lease. At
most one edit of a progress message is outstanding at a time, which keeps edits in order
(the outbox retries a failed one later, when a newer one could overtake it); a new count
while one waits rewrites the waiting one instead.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from bot.domain.delivery import OutboxMessage
from bot.domain.message_kinds import Kind
from bot.domain.messages import Reply, say
from bot.services.broadcasts import progress_reply
from bot.services.outbox import Outbox, edit_payload
from storage import broadcasts, outbox, people
from storage.broadcasts import Broadcast
from storage.db import Database, Tx

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=60)
# The progress message changes at most this often (plus once at the end): a chat app that
# rewrites a message many times a second only flickers, and edits cost rate limit too.
EDIT_EVERY = timedelta(seconds=3)


class BroadcastTracker:
    name = "broadcasts"
    idle = 5.0

    def __init__(self, database: Database, outbox: Outbox,
                 on_queued: Callable[[], None] | None = None, owner: str | None = None,
                 every: timedelta = EDIT_EVERY, batch: int = 20) -> None:
        self.database = database
        self.outbox = outbox
        self.on_queued = on_queued
        self.owner = owner or f"broadcasts-{uuid.uuid4().hex[:8]}"
        self.every = every
        self.batch = batch

    async def run_due(self, now: datetime) -> int:
        """One look; returns how many broadcasts got an edit or their summary."""
        token = f"{self.owner}:{uuid.uuid4().hex[:8]}"
        async with self.database.transaction() as tx:
            claimed = await broadcasts.lease_unfinished(tx, now, token, LEASE, self.batch)
        changed = 0
        for broadcast_id in claimed:
            async with self.database.transaction() as tx:
                row = await broadcasts.leased(tx, broadcast_id, token)
                if row is None:
                    continue
                row, did = await self._track(tx, row, now)
                changed += did
                await broadcasts.save_tracking(tx, row)
        if changed and self.on_queued is not None:
            self.on_queued()
        return changed

    async def next_due(self, now: datetime) -> datetime | None:
        """While a broadcast is under way, look again every `every`; otherwise sleep."""
        async with self.database.read() as tx:
            busy = await broadcasts.any_unfinished(tx)
        return now + self.every if busy else None

    async def _track(self, tx: Tx, row: Broadcast, now: datetime) -> tuple[Broadcast, bool]:
        counts = await outbox.broadcast_counts(tx, row.id)
        pending, delivered = counts.get("pending", 0), counts.get("sent", 0)
        # Failed copies and collaborators with no channel at all.
        unreachable = row.total - delivered - pending
        done, finished = row.total - pending, pending == 0
        progress = (await outbox.message(tx, row.progress_outbox_id)
                    if row.progress_outbox_id is not None else None)
        due = row.reported_at is None or now - row.reported_at >= self.every
        changed = False
        if progress is not None and (finished or (done != row.reported and due)):
            shown, row = await self._show(tx, row, progress,
                                          progress_reply(done, row.total, finished), now)
            if not shown:
                return row, False  # the last edit is being sent right now: look again soon
            row = replace(row, reported=done, reported_at=now)
            changed = True
        if finished:
            sender = await people.person(tx, row.sender_id)
            if sender is not None:
                to = (progress.channel, progress.address) if progress is not None else None
                await self.outbox.send(tx, sender, say("broadcast.summary", sent=delivered,
                                                       unreachable=unreachable,
                                                       total=row.total),
                                       now, kind=Kind.PROGRESS, to=to,
                                       dedupe_key=f"broadcast:{row.id}:summary")
            row = replace(row, finished_at=now)
            log.info("broadcast %s finished: %s sent, %s unreachable", row.id, delivered,
                     unreachable)
            changed = True
        return row, changed

    async def _show(self, tx: Tx, row: Broadcast, progress: OutboxMessage, reply: Reply,
                    now: datetime) -> tuple[bool, Broadcast]:
        """Put the new count in front of the sender; False if that must wait."""
        language = progress.language
        if progress.status == outbox.PENDING:
            # Not sent yet: it may as well go out with the newest count.
            fresh = {**progress.payload, "reply": reply.to_json()}
            if await outbox.rewrite_waiting(tx, progress.id, fresh, now):
                return True, row
        if row.edits:
            last = await outbox.by_key(tx, f"edit:{progress.id}:{row.edits}")
            if last is not None and last.status == outbox.PENDING:
                return await outbox.rewrite_waiting(
                    tx, last.id, edit_payload(progress, reply, language), now), row
        if await self.outbox.edit(tx, progress, reply, now, language, seq=row.edits + 1):
            row = replace(row, edits=row.edits + 1)
        return True, row
