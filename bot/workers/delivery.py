"""The delivery worker (workers layer): sends what the outbox holds, on each channel's
sender.

Messages are claimed with a lease in the database, so several processes share the work and
a message is never handed to two senders; a crash before the claim commits sends nothing, a
crash after it leaves the message pending for the next look once the lease runs out. Sends
go out with no transaction open, so a slow or rate-limited channel never holds the
database's write lock. Different chats go out concurrently, one chat's messages in order.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from bot.clock import Clock
from bot.domain.delivery import STORED, Delivery, DeliveryError, OutboxMessage, Sender
from bot.domain.message_kinds import rule_of
from storage import files, outbox, people
from storage.db import Database, Tx

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 12
EDIT_WAIT = timedelta(seconds=2)
LATER: Final = "later"
SKIPPED: Final = "skipped"

# What to do when a channel says it cannot reach a message's person: True when the case
# was sent up the chain (the timer worker should look).
Reroute = Callable[[Tx, OutboxMessage, datetime], Awaitable[bool]]


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


class DeliveryWorker:
    """Delivers pending messages for the channels this process serves."""

    name = "delivery"
    idle = 5.0

    def __init__(self, database: Database, clock: Clock, senders: Mapping[str, Sender], *,
                 reroute: Reroute | None = None,
                 climbed: Callable[[], None] | None = None, owner: str | None = None,
                 batch: int = 50, concurrency: int = 16) -> None:
        self.database = database
        self.clock = clock
        self.senders = dict(senders)
        self.reroute = reroute
        # Called once a reroute that sent a case up the chain has committed.
        self.climbed = climbed
        self.owner = owner or f"outbox-{uuid.uuid4().hex[:8]}"
        self.batch = batch
        # How many chats are sent to at once; the channel's own limiter paces the rest.
        self.slots = asyncio.Semaphore(concurrency)
        self._results: list[tuple[_Result, asyncio.Future[None]]] = []
        self._recording = asyncio.Lock()

    async def run_due(self, now: datetime) -> int:
        return await self.deliver_due()

    async def next_due(self, now: datetime) -> datetime | None:
        async with self.database.read() as tx:
            return await outbox.next_due_at(tx, list(self.senders), now)

    async def deliver_due(self) -> int:
        """One look: claim due messages, send them, record the results. Returns how many
        were sent."""
        now = self.clock.now()
        token = f"{self.owner}:{uuid.uuid4().hex[:8]}"
        chats: dict[tuple[str, str], list[Delivery]] = {}
        async with self.database.transaction() as tx:
            claimed = await outbox.lease_due(tx, now, list(self.senders), token, LEASE,
                                             self.batch)
            ready: list[int] = []
            waiting: set[tuple[str, str]] = set()
            for message in claimed:
                chat = (message.channel, message.address)
                if chat in waiting:  # behind a row of its chat that cannot go yet
                    await outbox.release(tx, [message.id], token, now, attempted=False)
                    continue
                delivery = await self._prepare(tx, message, token, now)
                if delivery is LATER:
                    waiting.add(chat)
                if not isinstance(delivery, Delivery):
                    continue
                ready.append(message.id)
                chats.setdefault(chat, []).append(delivery)
            await outbox.count_attempts(tx, ready)
        if not claimed:
            return 0
        results = await asyncio.gather(*(self._deliver_chat(channel, deliveries, token)
                                         for (channel, _), deliveries in chats.items()))
        return sum(results)

    async def _prepare(self, tx: Tx, message: OutboxMessage, token: str,
                       now: datetime) -> Delivery | Literal["later", "skipped"]:
        """The message as a Delivery; LATER when it cannot go yet (its lease is let go),
        SKIPPED when it is not to be sent at all."""
        meta = dict(message.meta)
        if "edit_of" in meta:
            # An edit needs the channel's reference of the message it changes.
            original = await outbox.message(tx, int(meta["edit_of"]))
            if original is None or original.status == outbox.FAILED:
                await outbox.skip(tx, message.id)
                return SKIPPED
            if original.status != outbox.SENT or not original.external_ref:
                await outbox.release(tx, [message.id], token, now + EDIT_WAIT,
                                     attempted=False)
                return LATER
            meta["message_ref"] = original.external_ref
        reply = message.reply
        file = await files.stored_file(tx, int(reply.media.ref)) if (
            reply.media is not None and reply.media.channel == STORED
            and reply.media.ref.isdigit()) else None
        return Delivery(message.id, message.address, message.language, reply, message.kind,
                        meta, file)

    async def _deliver_chat(self, channel: str, deliveries: list[Delivery],
                            token: str) -> int:
        """One chat's messages, in order; after a failure the rest wait, so none overtakes
        it."""
        sender = self.senders[channel]
        sent = 0
        for n, delivery in enumerate(deliveries):
            try:
                async with self.slots:
                    ref = await sender.deliver(delivery)
            except Exception as exc:
                # A sender's own bug counts as a failed send: retried, never left leased.
                error = (exc if isinstance(exc, DeliveryError)
                         else DeliveryError(type(exc).__name__))
                await self._record(delivery.outbox_id, token, None, error,
                                   [d.outbox_id for d in deliveries[n + 1:]])
                return sent
            # Committed before the chat's next send: the window in which a crash would
            # resend this message is one small transaction wide (Telegram and Zalo have no
            # idempotency key to close it; the simulator has one).
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
        async with self.database.transaction() as tx:
            now = self.clock.now()
            found = await outbox.messages(tx, [result.outbox_id for result, _ in batch])
            sent: list[tuple[int, str | None]] = []
            for result, _ in batch:
                message = found.get(result.outbox_id)
                again_at = now
                if message is not None and message.status == outbox.PENDING:
                    if message.lease_owner != result.token:
                        log.warning("outbox %s: lease expired during the send", message.id)
                    if result.error is None:
                        sent.append((message.id, result.ref))
                    else:
                        again_at = await self._failed(tx, message, result.error, now)
                if result.held_back:
                    await outbox.release(tx, result.held_back, result.token, again_at)
            await outbox.mark_sent(tx, sent, now)

    async def _failed(self, tx: Tx, message: OutboxMessage, exc: DeliveryError,
                      now: datetime) -> datetime:
        """Record a failed send; when the message (and the chat's next ones) may go again."""
        if exc.unreachable:
            await people.mark_unreachable(tx, message.channel, message.address, now)
            if self.reroute is not None and rule_of(message.kind).reroute:
                if await self.reroute(tx, message, now) and self.climbed is not None:
                    tx.after_commit(self.climbed)
        if exc.permanent or message.attempts >= MAX_ATTEMPTS:
            await outbox.mark_failed(tx, message.id, exc.reason, retry_at=None)
            log.warning("outbox %s failed for good: %s", message.id, exc.reason[:80])
            return now
        wait = (timedelta(seconds=exc.retry_after) if exc.retry_after is not None
                else backoff(message.attempts))
        await outbox.mark_failed(tx, message.id, exc.reason, retry_at=now + wait)
        return now + wait
