"""Broadcasts: an officer's message to every collaborator of the commune, with a progress
message that is edited as delivery goes on and a summary at the end (domain service).

`/broadcast` starts the flow in bot/flows/broadcast.py; its Submit queues one outbox row per
collaborator (kind "broadcast", so conversations go first) in the confirming transaction.
The tracker runs beside the outbox: it counts those rows by status and edits the sender's
progress message, then sends the summary once every row is final. Collaborators with no
channel that reaches them count as unreachable from the start.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.domain.messages import Input, Reply, Text, say
from bot.domain.permissions import may_broadcast
from bot.flows import engine
from bot.flows.book import FLOWS
from bot.flows.broadcast import text_problem
from bot.flows.effects import Effect
from bot.services.directory import Directory
from bot.services.outbox import edit_payload, enqueue, enqueue_edit
from bot.services.sweeping import sweep_forever
from storage import broadcast_repo, repo
from storage.models import Broadcast, Outbox, Person

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=60)
# The progress message changes at most this often (plus once at the end): a chat app that
# rewrites a message many times a second only flickers, and edits cost rate limit too.
EDIT_EVERY = timedelta(seconds=3)


def progress_reply(done: int, total: int, finished: bool) -> Reply:
    if finished:
        return say("broadcast.progress_done", done=done, total=total)
    return say("broadcast.progress", done=done, total=total)


class Broadcasts:
    """The `/broadcast` command and the flow's `broadcast` action."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    async def on_command(self, s: AsyncSession, person: Person, state: engine.State,
                         ctx: engine.Context, inp: Input, now: datetime
                         ) -> tuple[engine.State, list[Effect]] | None:
        """Start the flow for someone who may broadcast, with the number it will reach."""
        if not may_broadcast(person):
            return state, [say("broadcast.not_allowed")]
        count = await broadcast_repo.count_collaborators(s, self.directory.commune_id)
        if count == 0:
            return state, [say("broadcast.nobody")]
        data: dict[str, Any] = {"count": count}
        lead: list[Effect] = []
        typed = inp.args.strip()
        if typed:
            problem = text_problem(typed)
            if problem is None:
                data["text"] = typed
            else:
                lead.append(Reply((problem,)))
        new_state, effects = engine.start(FLOWS, "broadcast", ctx, data, current=state)
        return new_state, [*lead, *effects]

    async def on_submit(self, s: AsyncSession, person: Person, channel: str,
                        data: dict[str, Any], now: datetime) -> list[Reply]:
        """Queue the message for every collaborator and the progress message for the sender."""
        if not may_broadcast(person):
            return [say("broadcast.not_allowed")]
        text = str(data.get("text", "")).strip()
        problem = text_problem(text)
        if problem is not None:
            return [Reply((problem,))]
        commune_id = self.directory.commune_id
        people = await broadcast_repo.collaborators(s, commune_id)
        if not people:
            return [say("broadcast.nobody")]
        sent = await broadcast_repo.add_broadcast(s, commune_id, person.id, len(people), now)
        progress = await enqueue(s, person, progress_reply(0, len(people), False), now,
                                 kind="progress", to=await self._address(s, person, channel),
                                 dedupe_key=f"broadcast:{sent.id}:progress", fresh_key=True)
        message = Reply((Text("broadcast.message", {
            "commune": self.directory.config.name,
            "sender": person.name or Text("broadcast.unnamed_sender"), "text": text}),))
        identities = await repo.identities_for(s, [p.id for p in people])
        queued = 0
        for collaborator in people:
            row = await enqueue(s, collaborator, message, now, kind="broadcast",
                                identities=identities[collaborator.id],
                                dedupe_key=f"broadcast:{sent.id}:p{collaborator.id}",
                                fresh_key=True, broadcast_id=sent.id)
            queued += row is not None
        await s.flush()
        sent.progress_outbox_id = progress.id if progress is not None else None
        log.info("broadcast %s by person %s: %s collaborators, %s with a channel", sent.id,
                 person.id, len(people), queued)
        # The progress message is the answer; the summary follows when delivery is over.
        return []

    @staticmethod
    async def _address(s: AsyncSession, person: Person, channel: str
                       ) -> tuple[str, str] | None:
        """Where the sender confirmed: progress belongs in that chat."""
        mine = [i for i in await repo.identities_of(s, person.id) if i.channel == channel]
        mine.sort(key=lambda i: i.last_seen_at.timestamp() if i.last_seen_at else 0.0,
                  reverse=True)
        return (channel, mine[0].external_id) if mine else None


class BroadcastTracker:
    """Edits each unfinished broadcast's progress message and sends its summary.

    Broadcasts are claimed with a lease, so trackers in several processes never work on the
    same one at once; the summary's dedupe key makes it once even past an expired lease.
    At most one edit of a progress message is outstanding at a time, which keeps edits in
    order (the outbox retries a failed one later, when a newer one could overtake it); a
    new count while one waits rewrites the waiting one instead."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock,
                 on_queued: Callable[[], None] | None = None, owner: str | None = None,
                 every: timedelta = EDIT_EVERY, batch: int = 20) -> None:
        self.sessions = sessions
        self.clock = clock
        self.on_queued = on_queued
        self.owner = owner or f"broadcasts-{uuid.uuid4().hex[:8]}"
        self.every = every
        self.batch = batch
        self.wake = asyncio.Event()

    async def track_due(self) -> int:
        """One sweep; returns how many broadcasts got an edit or their summary."""
        now = self.clock.now()
        token = f"{self.owner}:{uuid.uuid4().hex[:8]}"
        async with self.sessions.begin() as s:
            ids = await broadcast_repo.unfinished_ids(s, now, self.batch)
            claimed = await broadcast_repo.lease_broadcasts(s, ids, token, now, LEASE)
        changed = 0
        for broadcast_id in claimed:
            async with self.sessions.begin() as s:
                row = await broadcast_repo.leased_broadcast(s, broadcast_id, token)
                if row is None:
                    continue
                changed += await self._track(s, row, now)
                row.lease_owner, row.lease_until = None, None
        if changed and self.on_queued is not None:
            self.on_queued()
        return changed

    async def _track(self, s: AsyncSession, row: Broadcast, now: datetime) -> bool:
        counts = await broadcast_repo.delivery_counts(s, row.id)
        pending, delivered = counts.get("pending", 0), counts.get("sent", 0)
        # Failed copies and collaborators with no channel at all.
        unreachable = row.total - delivered - pending
        done, finished = row.total - pending, pending == 0
        progress = (await repo.outbox_row(s, row.progress_outbox_id)
                    if row.progress_outbox_id is not None else None)
        due = row.reported_at is None or now - row.reported_at >= self.every
        changed = False
        if progress is not None and (finished or (done != row.reported and due)):
            if not await self._show(s, row, progress, progress_reply(done, row.total, finished),
                                    now):
                return False  # the last edit is being sent right now: look again soon
            row.reported, row.reported_at = done, now
            changed = True
        if finished:
            sender = await repo.person(s, row.sender_id)
            if sender is not None:
                to = (progress.channel, progress.address) if progress is not None else None
                await enqueue(s, sender, say("broadcast.summary", sent=delivered,
                                             unreachable=unreachable, total=row.total),
                              now, kind="progress", to=to,
                              dedupe_key=f"broadcast:{row.id}:summary")
            row.finished_at = now
            log.info("broadcast %s finished: %s sent, %s unreachable", row.id, delivered,
                     unreachable)
            changed = True
        return changed

    async def _show(self, s: AsyncSession, row: Broadcast, progress: Outbox, reply: Reply,
                    now: datetime) -> bool:
        """Put the new count in front of the sender; False if that must wait."""
        language = str(progress.payload.get("language", "vi"))
        if progress.status == "pending":
            # Not sent yet: it may as well go out with the newest count.
            fresh = {**progress.payload, "reply": reply.to_json()}
            if await broadcast_repo.rewrite_waiting(s, progress.id, fresh, now):
                return True
        if row.edits:
            last = await repo.outbox_by_key(s, f"edit:{progress.id}:{row.edits}")
            if last is not None and last.status == "pending":
                return await broadcast_repo.rewrite_waiting(
                    s, last.id, edit_payload(progress, reply, language), now)
        if await enqueue_edit(s, progress, reply, now, language, seq=row.edits + 1):
            row.edits += 1
        return True

    async def next_due(self) -> datetime | None:
        """While a broadcast is under way, look again every `every`; otherwise sleep."""
        async with self.sessions() as s:
            busy = await broadcast_repo.any_unfinished(s)
        return self.clock.now() + self.every if busy else None

    async def run(self, stop: asyncio.Event, idle: float = 5.0) -> None:
        await sweep_forever(stop, self.wake, self.clock, self.track_due, self.next_due, idle,
                            "broadcasts")
