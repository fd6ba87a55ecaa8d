"""The outbox: messages are written with the change that causes them, then delivered.

Delivery claims rows with a lease in the database, so several processes share the work and
a row is never handed to two senders; a crash before the commit sends nothing, a crash after
it leaves the row pending for the next sweep.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.domain.commune import CHANNELS
from bot.domain.messages import Media, Reply
from bot.services.sweeping import sweep_forever
from storage import files_repo, repo
from storage.models import Identity, Outbox, Person

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 12
EDIT_WAIT = timedelta(seconds=2)
# Messages that matter wherever they arrive: when a channel cannot reach the person (blocked,
# unfollowed, outside Zalo's window), they go to the person's other channel at once. Not
# conversation replies and their media (the person is writing on that very channel), nor
# edits and progress counts of messages that stay where they are.
REROUTED_KINDS = frozenset({"alert", "escalation", "reminder", "handover", "question",
                            "notice", "team_notice", "reporter_notice", "calendar",
                            "broadcast", "admin"})
# Session.info key: the channels this process delivers on (set by the engine).
SERVED = "served_channels"
# Media.channel of a file the bot made itself, kept in stored_files (any channel may send it).
STORED = "stored"


class DeliveryError(Exception):
    """A send failed; `retry_after` (seconds) when the channel said when to come back."""

    def __init__(self, reason: str, retry_after: float | None = None,
                 permanent: bool = False, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.permanent = permanent
        # The person cannot be reached on this channel any more (e.g. blocked the bot).
        self.unreachable = unreachable


@dataclass(frozen=True)
class FileToSend:
    """A file the bot made (a Media with channel "stored"), loaded for the channel."""

    id: int
    name: str
    mime: str
    content: bytes
    # The secret part of its download link (the web simulator shows a link, not bytes).
    token: str


@dataclass(frozen=True)
class Delivery:
    """What a channel needs to send one message (already addressed, not yet rendered)."""

    outbox_id: int
    address: str
    language: str
    reply: Reply
    kind: str
    meta: Mapping[str, Any]
    # The stored file the reply's media names; None when there is none (or it is gone).
    file: FileToSend | None = None


class Channel(Protocol):
    name: str

    async def deliver(self, session: AsyncSession | None, delivery: Delivery) -> str | None:
        """Send one message; return the channel's message reference. `session` is the
        delivery's transaction for a channel whose sending is itself a database write
        (one with `transactional = True`); None for outside APIs."""
        ...


def served_identities(s: AsyncSession, identities: Sequence[Identity]) -> list[Identity]:
    """The identities on channels this deployment delivers on (all, if the session does not
    say which: a session made outside an engine)."""
    served = s.info.get(SERVED)
    if served is None:
        return list(identities)
    return [i for i in identities if i.channel in served]


def preferred(identities: Sequence[Identity], first: str | None = None) -> Identity | None:
    """Among the channels that still reach a person: the one they chose (`first`), else
    the one they last used."""
    reachable = [i for i in identities if i.unreachable_at is None]
    reachable.sort(key=lambda i: (i.channel != first if first else False,
                                  i.last_seen_at is None,
                                  -(i.last_seen_at.timestamp() if i.last_seen_at else 0),
                                  CHANNELS.index(i.channel)
                                  if i.channel in CHANNELS else 99))
    return reachable[0] if reachable else None


async def enqueue(s: AsyncSession, person: Person, reply: Reply, now: datetime, *,
                  kind: str = "reply", case_id: int | None = None,
                  dedupe_key: str | None = None, fresh_key: bool = False,
                  to: tuple[str, str] | None = None,
                  identities: Sequence[Identity] | None = None,
                  meta: Mapping[str, Any] | None = None,
                  broadcast_id: int | None = None) -> Outbox | None:
    """Queue `reply` for `person`: at `to` (channel, address) when answering them where they
    wrote, else on their preferred reachable channel. `fresh_key` says the dedupe key
    cannot exist yet (it names a row created in this transaction), sparing the lookup."""
    if dedupe_key and not fresh_key and await repo.outbox_exists(s, dedupe_key):
        return None
    if to is None:
        if identities is None:
            identities = await repo.identities_of(s, person.id)
        target = preferred(served_identities(s, identities), person.preferred_channel)
        if target is None:
            log.warning("no reachable channel person=%s kind=%s", person.id, kind)
            return None
        to = (target.channel, target.external_id)
    row = Outbox(person_id=person.id, case_id=case_id, channel=to[0], address=to[1], kind=kind,
                 payload={"reply": reply.to_json(), "language": person.language,
                          "meta": dict(meta or {})},
                 dedupe_key=dedupe_key, status="pending", attempts=0, next_attempt_at=now,
                 created_at=now, broadcast_id=broadcast_id)
    s.add(row)
    return row


async def enqueue_edit(s: AsyncSession, original: Outbox, reply: Reply, now: datetime,
                       language: str, seq: int | None = None) -> Outbox | None:
    """Change a message already queued or sent (e.g. an alert someone has taken). Once per
    message; a message edited again and again (a progress count) numbers its edits `seq`."""
    key = f"edit:{original.id}" if seq is None else f"edit:{original.id}:{seq}"
    if await repo.outbox_exists(s, key):
        return None
    row = Outbox(person_id=original.person_id, case_id=original.case_id,
                 channel=original.channel, address=original.address, kind="edit",
                 payload=edit_payload(original, reply, language),
                 dedupe_key=key, status="pending", attempts=0,
                 next_attempt_at=now, created_at=now)
    s.add(row)
    return row


def edit_payload(original: Outbox, reply: Reply, language: str) -> dict[str, Any]:
    return {"reply": reply.to_json(), "language": language, "meta": {"edit_of": original.id}}


async def enqueue_media(s: AsyncSession, person: Person, alert: Outbox | None,
                        media: Sequence[Media], caption: Reply, now: datetime,
                        dedupe_key: str) -> None:
    """Follow an alert with the report's photos and voice notes, each its own message, on
    the alert's chat, when the files came in on that same channel (a Telegram file_id
    means nothing elsewhere; the alert already says how many files there are)."""
    if alert is None:
        return
    for n, item in enumerate(media):
        if item.channel != alert.channel:
            continue
        await enqueue(s, person, Reply(caption.texts, media=item), now, kind="media",
                      case_id=alert.case_id, dedupe_key=f"{dedupe_key}:m{n}", fresh_key=True,
                      to=(alert.channel, alert.address))


async def _stored_file(s: AsyncSession, media: Media | None) -> FileToSend | None:
    if media is None or media.channel != STORED or not media.ref.isdigit():
        return None
    row = await files_repo.stored_file(s, int(media.ref))
    if row is None:
        return None
    return FileToSend(row.id, row.name, row.mime, row.content, row.token)


@dataclass(frozen=True)
class _Result:
    """What became of one send, waiting to be committed."""

    outbox_id: int
    token: str
    ref: str | None
    error: DeliveryError | None
    held_back: list[int]


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(2 ** attempts, 300))


class OutboxWorker:
    """Delivers pending rows for the channels this process serves."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock,
                 channels: Mapping[str, Channel], owner: str | None = None,
                 batch: int = 50, concurrency: int = 16,
                 on_unreachable: Callable[[AsyncSession, Outbox, datetime],
                                          Awaitable[None]] | None = None) -> None:
        self.on_unreachable = on_unreachable
        self.sessions = sessions
        self.clock = clock
        self.channels = dict(channels)
        self.owner = owner or f"outbox-{uuid.uuid4().hex[:8]}"
        self.batch = batch
        self.wake = asyncio.Event()
        # How many chats are sent to at once; the channel's own limiter paces the rest.
        self.slots = asyncio.Semaphore(concurrency)
        self._results: list[tuple[_Result, asyncio.Future[None]]] = []
        self._recording = asyncio.Lock()

    async def deliver_due(self) -> int:
        """One sweep: claim due rows, send them, record the results. Returns rows sent.

        Rows for a channel that writes in our database (the simulator) are sent inside
        their own transaction, exactly once. Rows for an outside API are sent with no
        transaction open, so a slow or rate-limited API never holds the database's write
        lock; the lease keeps other processes off them meanwhile. Different chats go out
        concurrently, one chat's rows in order."""
        now = self.clock.now()
        token = f"{self.owner}:{uuid.uuid4().hex[:8]}"
        async with self.sessions.begin() as s:
            ids = await repo.due_outbox_ids(s, now, self.batch, list(self.channels))
            claimed = await repo.lease_outbox(s, ids, token, now, LEASE)
            outside: dict[tuple[str, str], list[Delivery]] = {}
            inside: list[int] = []
            if claimed:
                for row in await repo.leased_outbox(s, claimed, token):
                    if getattr(self.channels[row.channel], "transactional", False):
                        inside.append(row.id)
                        continue
                    delivery = await self._prepare(s, row, now)
                    if delivery is not None:
                        outside.setdefault((row.channel, row.address), []).append(delivery)
        if not claimed:
            return 0
        sent = 0
        for outbox_id in inside:
            sent += await self._deliver_inside(outbox_id, token)
        if outside:
            results = await asyncio.gather(*(self._deliver_chat(channel, rows, token)
                                             for (channel, _), rows in outside.items()))
            sent += sum(results)
        return sent

    async def _prepare(self, s: AsyncSession, row: Outbox, now: datetime) -> Delivery | None:
        """The row as a Delivery, or None when it cannot go yet (its lease is released)."""
        payload = row.payload
        meta = dict(payload.get("meta", {}))
        if "edit_of" in meta:
            # An edit needs the channel's reference of the message it changes.
            original = await repo.outbox_row(s, int(meta["edit_of"]))
            if original is None or original.status == "failed":
                row.status = "skipped"
                row.lease_owner, row.lease_until = None, None
                return None
            if original.status != "sent" or not original.external_ref:
                row.next_attempt_at = now + EDIT_WAIT
                row.lease_owner, row.lease_until = None, None
                return None
            meta["message_ref"] = original.external_ref
        row.attempts += 1
        reply = Reply.from_json(payload["reply"])
        return Delivery(row.id, row.address, payload.get("language", "vi"), reply, row.kind,
                        meta, await _stored_file(s, reply.media))

    async def _deliver_inside(self, outbox_id: int, token: str) -> int:
        async with self.sessions.begin() as s:
            rows = await repo.leased_outbox(s, [outbox_id], token)
            if not rows:
                return 0
            row = rows[0]
            now = self.clock.now()
            delivery = await self._prepare(s, row, now)
            if delivery is None:
                return 0
            try:
                ref = await self.channels[row.channel].deliver(s, delivery)
            except DeliveryError as exc:
                await self._failed(s, row, exc, now)
                return 0
            self._sent(row, ref, now)
            return 1

    async def _deliver_chat(self, channel_name: str, deliveries: list[Delivery],
                            token: str) -> int:
        """One chat's rows, in order; after a failure the rest wait, so none overtakes it."""
        channel = self.channels[channel_name]
        sent = 0
        for n, delivery in enumerate(deliveries):
            try:
                async with self.slots:
                    ref = await channel.deliver(None, delivery)
            except DeliveryError as exc:
                await self._record(delivery.outbox_id, token, None, exc,
                                   [d.outbox_id for d in deliveries[n + 1:]])
                return sent
            # Committed before the chat's next send: the window in which a crash would
            # resend this message is one small transaction wide (Telegram has no
            # idempotency key to close it).
            await self._record(delivery.outbox_id, token, ref, None, [])
            sent += 1
        return sent

    async def _record(self, outbox_id: int, token: str, ref: str | None,
                      error: DeliveryError | None, held_back: list[int]) -> None:
        """Commit one send's result. Results that finish while another commit holds the
        write lock are committed together by the next one (group commit): under load that
        is one transaction for many messages instead of one each, and no result waits
        longer than it would have waited for the lock anyway."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._results.append((_Result(outbox_id, token, ref, error, held_back), done))
        async with self._recording:
            if not done.done():
                batch, self._results = self._results, []
                try:
                    await self._write_results(batch)
                except Exception as exc:
                    for _, waiter in batch:
                        waiter.set_exception(exc)
                except BaseException:
                    for _, waiter in batch:
                        waiter.cancel()
                    raise
                else:
                    for _, waiter in batch:
                        waiter.set_result(None)
        await done

    async def _write_results(self, batch: list[tuple[_Result, asyncio.Future[None]]]) -> None:
        async with self.sessions.begin() as s:
            now = self.clock.now()
            rows = await repo.outbox_rows(s, [result.outbox_id for result, _ in batch])
            for result, _ in batch:
                row = rows.get(result.outbox_id)
                if row is not None and row.status == "pending":
                    if row.lease_owner != result.token:
                        log.warning("outbox %s: lease expired during the send", row.id)
                    if result.error is None:
                        self._sent(row, result.ref, now)
                    else:
                        await self._failed(s, row, result.error, now)
                if result.held_back:
                    await repo.release_outbox(
                        s, result.held_back, result.token,
                        row.next_attempt_at if row is not None else now)

    @staticmethod
    def _sent(row: Outbox, ref: str | None, now: datetime) -> None:
        row.external_ref = ref
        row.status = "sent"
        row.sent_at = now
        row.lease_owner, row.lease_until = None, None

    async def _failed(self, s: AsyncSession, row: Outbox, exc: DeliveryError,
                      now: datetime) -> None:
        row.last_error = exc.reason[:200]
        row.lease_owner, row.lease_until = None, None
        if exc.unreachable:
            await repo.mark_unreachable(s, row.channel, row.address, now)
            if self.on_unreachable is not None and row.kind in REROUTED_KINDS:
                await self.on_unreachable(s, row, now)
        if exc.permanent or row.attempts >= MAX_ATTEMPTS:
            row.status = "failed"
            log.warning("outbox %s failed for good: %s", row.id, exc.reason[:80])
        else:
            wait = (timedelta(seconds=exc.retry_after) if exc.retry_after is not None
                    else backoff(row.attempts))
            row.next_attempt_at = now + wait

    async def next_due(self) -> datetime | None:
        async with self.sessions() as s:
            return await repo.next_outbox_at(s, list(self.channels))

    async def run(self, stop: asyncio.Event, idle: float = 5.0) -> None:
        """Deliver until `stop`; wakes on `wake`, at the next due time, or every `idle` s."""
        await sweep_forever(stop, self.wake, self.clock, self.deliver_due, self.next_due,
                            idle, "outbox")
