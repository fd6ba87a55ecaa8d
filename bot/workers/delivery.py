"""The delivery worker (workers layer): sends what the outbox holds, on each channel's
sender.

Messages are claimed with a lease in the database, so several processes share the work and
a message is never handed to two senders; a crash before the claim commits sends nothing, a
crash after it leaves the message to the next look once the process's heartbeat stops
(bot/workers/heartbeat.py). Sends go out with no transaction open, so a slow or
rate-limited channel never holds the database's write lock. Different chats go out
concurrently; one chat's messages strictly in order, across looks, retries and processes.
A look waits for its sends only briefly (HOLD): a send that hangs (up to the channel's
read timeout) goes on in the background, its rows still claimed, and every other chat's
messages keep going meanwhile; when it ends, the worker is woken for that chat's next.

When a channel fails (5xx, timeouts, no connection), its rows wait with growing pauses and
the channel is marked failing; every few seconds one waiting row is tried early, and the
first send that goes through makes every waiting row of the channel due at once. What a
case waits on (alerts, escalations, hand-overs, questions) is never given up while the case
is open: after a few failed tries it also goes to the person's other channel and the case
climbs; other messages are dropped once too old to matter (a reply: the person is told
where they were). A channel failing for long is reported to the administrators once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from bot.clock import Clock
from bot.domain.delivery import (
    INSTEAD_OF,
    STORED,
    Delivery,
    DeliveryError,
    DeliveryPolicy,
    Metered,
    OutboxMessage,
    Sender,
    copy_key,
)
from bot.domain.message_kinds import Kind, rule_of
from bot.metrics import Metrics, error_code
from bot.services.undelivered import Undelivered
from storage import audit, cases, channel_health, files, outbox, people
from storage.audit import AuditRow
from storage.db import Database, Tx

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=60)
EDIT_WAIT = timedelta(seconds=2)
# A failing channel: how often one waiting row is tried early to see whether it is back.
PROBE_EVERY = timedelta(seconds=3)
# Failed tries (besides DeliveryPolicy.reroute_after) of a message a case waits on before
# it also goes elsewhere and the case climbs; the longest pause between its tries.
REROUTE_AFTER = 3
PERSISTENT_PAUSE = 60
# How long one look waits for its sends before it looks again (the rest go on meanwhile).
HOLD = 0.25
# The kinds counted as alerts sent: a case's first alert and each escalated one.
ALERTS = (Kind.ALERT.value, Kind.ESCALATION.value)
LATER: Final = "later"
SKIPPED: Final = "skipped"


@dataclass(frozen=True)
class _Result:
    """What became of one send, waiting to be committed."""

    outbox_id: int
    token: str
    ref: str | None
    error: DeliveryError | None
    held_back: list[int]
    # Messages the channel counts against the person's messaging window (Metered).
    cost: int = 0


def shown_to(found: Mapping[int, OutboxMessage], sent: Sequence[tuple[int, str | None]]
             ) -> list[tuple[int, int | None, str, Mapping[str, object]]]:
    """Audit rows for the messages that went out and showed their person a case (alerts,
    escalations, hand-overs, what followed them): a read, by whom, of which case."""
    rows: list[tuple[int, int | None, str, Mapping[str, object]]] = []
    for oid, _ in sent:
        message = found[oid]
        if message.case_id is not None and rule_of(message.kind).shows_case:
            rows.append((message.case_id, message.person_id, "shown",
                         {"kind": message.kind, "outbox": message.id,
                          "channel": message.channel}))
    return rows


def backoff(attempts: int, longest: int = 300) -> timedelta:
    return timedelta(seconds=min(2 ** attempts, longest))


class DeliveryWorker:
    """Delivers pending messages for the channels this process serves."""

    name = "delivery"
    idle = 5.0

    def __init__(self, database: Database, clock: Clock, senders: Mapping[str, Sender], *,
                 undelivered: Undelivered | None = None,
                 policy: DeliveryPolicy | None = None,
                 climbed: Callable[[], None] | None = None,
                 finished: Callable[[], None] | None = None, owner: str | None = None,
                 batch: int = 50, concurrency: int = 16, hold: float = HOLD,
                 metrics: Metrics | None = None) -> None:
        self.database = database
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.senders = dict(senders)
        self.undelivered = undelivered
        self.policy = policy or DeliveryPolicy()
        # Called once a failure that sent a case up the chain has committed.
        self.climbed = climbed
        # Called when sends that outlasted their look end: their chats' next rows can go.
        self.finished = finished
        self.hold = hold
        self._sending: set[asyncio.Task[int]] = set()
        self.owner = owner or f"outbox-{uuid.uuid4().hex[:8]}"
        self.batch = batch
        # How many chats are sent to at once; the channel's own limiter paces the rest.
        self.slots = asyncio.Semaphore(concurrency)
        self._results: list[tuple[_Result, asyncio.Future[None]]] = []
        self._recording = asyncio.Lock()
        # Channels known (from the database, or our own failures) to be failing, and when
        # that was last read: a hint that spares a query per look, never the truth.
        self._failing: set[str] = set()
        self._health_read_at: datetime | None = None

    async def run_due(self, now: datetime) -> int:
        return await self.deliver_due(hold=self.hold)

    async def finish(self) -> int:
        """Wait for the sends still under way (the end of run_until_idle, and stopping);
        how many of them went. Cancelled, it cancels them: their rows stay claimed until
        this process's heartbeat stops (or its next start takes them back)."""
        sent = 0
        while self._sending:
            results = await asyncio.gather(*self._sending, return_exceptions=True)
            sent += sum(r for r in results if isinstance(r, int))
        return sent

    async def next_due(self, now: datetime) -> datetime | None:
        async with self.database.read() as tx:
            due = await outbox.next_due_at(tx, list(self.senders), now)
        if self._failing:  # the next early try of a failing channel
            probe = now + PROBE_EVERY
            due = probe if due is None else min(due, probe)
        return due

    async def deliver_due(self, hold: float | None = None) -> int:
        """One look: claim due messages, send them, record the results. Returns how many
        were sent, counting those still being sent after `hold` seconds (None: wait for
        every send), which go on in the background."""
        now = self.clock.now()
        token = f"{self.owner}:{uuid.uuid4().hex[:8]}"
        chats: dict[tuple[str, str], list[Delivery]] = {}
        async with self.database.transaction() as tx:
            await outbox.take_turn(tx)
            await self._probe_failing(tx, now)
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
        tasks = [asyncio.create_task(self._deliver_chat(channel, deliveries, token))
                 for (channel, _), deliveries in chats.items()]
        if not tasks:
            return 0
        done, under_way = await asyncio.wait(tasks, timeout=hold)
        for task in under_way:
            self._sending.add(task)
            task.add_done_callback(self._sent_in_background)
        # A task's own failure (a database error while recording) is logged by its class
        # alone: its text can carry a parameter. Its rows wait for their lease to end.
        return sum(self._sent(task) for task in done) + len(under_way)

    @staticmethod
    def _sent(task: asyncio.Task[int]) -> int:
        if task.cancelled():
            return 0
        if (exc := task.exception()) is not None:
            log.error("delivery failed: %s", type(exc).__name__)
            return 0
        return task.result()

    def _sent_in_background(self, task: asyncio.Task[int]) -> None:
        self._sending.discard(task)
        self._sent(task)
        if self.finished is not None:
            self.finished()

    async def _prepare(self, tx: Tx, message: OutboxMessage, token: str,
                       now: datetime) -> Delivery | Literal["later", "skipped"]:
        """The message as a Delivery; LATER when it cannot go yet (its lease is let go),
        SKIPPED when it is not to be sent at all."""
        if (await self._dropped_for_age(tx, message, now)
                or await self._arrived_elsewhere(tx, message)):
            return SKIPPED
        meta = dict(message.meta)
        if "edit_of" in meta:
            # An edit needs the channel's reference of the message it changes.
            original = await outbox.message(tx, int(meta["edit_of"]))
            if original is None or original.status in (outbox.FAILED, outbox.SKIPPED):
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
            cost = sender.cost(delivery) if isinstance(sender, Metered) else 0
            await self._record(delivery.outbox_id, token, ref, None, [], cost)
            sent += 1
        return sent

    async def _record(self, outbox_id: int, token: str, ref: str | None,
                      error: DeliveryError | None, held_back: list[int],
                      cost: int = 0) -> None:
        """Commit one send's result. Results that finish while another commit holds the
        write lock are committed together by the next one (group commit): under load that
        is one transaction for many messages instead of one each, and no result waits
        longer than it would have waited for the lock anyway."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._results.append((_Result(outbox_id, token, ref, error, held_back, cost), done))
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
            spent: list[tuple[str, str, int]] = []
            working: set[str] = set()
            failing: set[str] = set()
            alerts: list[tuple[str, str]] = []
            failed: list[tuple[str, str]] = []
            for result, _ in batch:
                message = found.get(result.outbox_id)
                if message is not None and message.status == outbox.PENDING:
                    if message.lease_owner != result.token:
                        log.warning("outbox %s: lease expired during the send", message.id)
                    if result.error is None:
                        sent.append((message.id, result.ref))
                        if message.kind in ALERTS:
                            alerts.append((message.channel, message.kind))
                        if result.cost:
                            spent.append((message.channel, message.address, result.cost))
                        working.add(message.channel)
                        await self._withdraw_copies(tx, message, now)
                    else:
                        await self._failed(tx, message, result.error, now)
                        failed.append((message.channel, error_code(result.error)))
                        if result.error.outage:
                            failing.add(message.channel)
                if result.held_back:
                    # Due now, yet behind their chat's first row: they go right after it.
                    await outbox.release(tx, result.held_back, result.token, now)
            await outbox.mark_sent(tx, sent, now)
            await people.count_sent(tx, spent)
            await cases.audit_all(tx, shown_to(found, sent), now)
            await self._audit_files(tx, found, sent, now)
        for channel, kind in alerts:
            self.metrics.alerts_sent.labels(channel, kind).inc()
        for channel, code in failed:
            self.metrics.deliveries_failed.labels(channel, code).inc()
        # The channel's row is written in transactions of its own, holding no outbox row:
        # on PostgreSQL a transaction that held both in the other order could deadlock.
        for channel in failing:
            await self._channel_failing(channel, now)
        for channel in working & self._failing:
            await self._channel_back(channel, now)

    async def _audit_files(self, tx: Tx, found: Mapping[int, OutboxMessage],
                           sent: Sequence[tuple[int, str | None]], now: datetime) -> None:
        """A statistics file that reached a person (asked for, or a calendar reminder's):
        a read of its commune's figures, on the commune's audit chain."""
        carried: dict[int, int] = {}
        for oid, _ in sent:
            media = found[oid].reply.media
            if media is not None and media.channel == STORED and media.ref.isdigit():
                carried[oid] = int(media.ref)
        if not carried:
            return
        owners = await files.communes_of(tx, set(carried.values()))
        await audit.record_all(tx, [
            AuditRow(owners[file_id], found[oid].person_id, "stats_delivered", now,
                     {"file": file_id, "outbox": oid, "channel": found[oid].channel})
            for oid, file_id in carried.items() if owners.get(file_id) is not None])

    async def _channel_failing(self, channel: str, now: datetime) -> None:
        self._failing.add(channel)
        async with self.database.transaction() as tx:
            since = await channel_health.failing(tx, channel, now)
            await self._maybe_tell_admins(tx, channel, since, now)

    async def _failed(self, tx: Tx, message: OutboxMessage, exc: DeliveryError,
                      now: datetime) -> None:
        """Record a failed send and decide when it goes again, if ever."""
        rule = rule_of(message.kind)
        if exc.unreachable:
            await people.mark_unreachable(tx, message.channel, message.address, now)
            if self.undelivered is not None and rule.reroute:
                if await self.undelivered.unreachable(tx, message, now):
                    self._after_climb(tx)
        if exc.permanent:
            await outbox.mark_failed(tx, message.id, exc.reason, retry_at=None)
            log.warning("outbox %s failed for good: %s", message.id, exc.reason[:80],
                        extra={"outbox_id": message.id, "channel": message.channel,
                               "code": error_code(exc)})
            return
        if await self._dropped_for_age(tx, message, now):
            return
        waiting_on = outbox.OUTAGE if exc.outage else None
        if rule.persistent:
            if not await self._case_still_open(tx, message):
                await outbox.withdraw(tx, message.id, "case closed")
                return
            # Idempotent (one copy, one climb per message), so asked at each failed try.
            if (exc.outage and message.attempts >= REROUTE_AFTER
                    and message.created_at is not None
                    and now - message.created_at >= self.policy.reroute_after
                    and self.undelivered is not None
                    and await self.undelivered.channel_failing(tx, message, now)):
                self._after_climb(tx)
        wait = (timedelta(seconds=exc.retry_after) if exc.retry_after is not None
                else backoff(message.attempts, PERSISTENT_PAUSE if rule.persistent else 300))
        await outbox.mark_failed(tx, message.id, exc.reason, retry_at=now + wait,
                                 waiting_on=waiting_on)

    def _after_climb(self, tx: Tx) -> None:
        if self.climbed is not None:
            tx.after_commit(self.climbed)

    async def _case_still_open(self, tx: Tx, message: OutboxMessage) -> bool:
        if message.case_id is None or self.undelivered is None:
            return True
        return await self.undelivered.case_open(tx, message.case_id)

    async def _dropped_for_age(self, tx: Tx, message: OutboxMessage, now: datetime) -> bool:
        """A message not worth sending this late is withdrawn (a reply: the person will be
        told where they were). Never what a case waits on."""
        rule = rule_of(message.kind)
        if rule.persistent or message.created_at is None:
            return False
        if now - message.created_at <= (rule.expires or self.policy.replies_expire_after):
            return False
        await outbox.withdraw(tx, message.id, "expired")
        log.info("outbox %s dropped: too old to send (%s)", message.id, message.kind)
        if self.undelivered is not None:
            await self.undelivered.reply_dropped(tx, message, now)
        return True

    async def _arrived_elsewhere(self, tx: Tx, message: OutboxMessage) -> bool:
        """A rerouted message whose other copy already arrived (while this one was being
        tried, so it could not be withdrawn then) is withdrawn now."""
        if INSTEAD_OF in message.meta:
            other = await outbox.message(tx, int(message.meta[INSTEAD_OF]))
        elif message.attempts >= REROUTE_AFTER and rule_of(message.kind).persistent:
            other = await outbox.by_key(tx, copy_key(message.id))
        else:
            return False
        if other is None or other.status != outbox.SENT:
            return False
        await outbox.withdraw(tx, message.id, "arrived on another channel")
        return True

    async def _withdraw_copies(self, tx: Tx, message: OutboxMessage, now: datetime) -> None:
        """One copy of a rerouted message arrived: the others need not follow."""
        if INSTEAD_OF in message.meta:
            await outbox.withdraw_waiting(tx, now, ids=[int(message.meta[INSTEAD_OF])])
        elif message.attempts > REROUTE_AFTER and rule_of(message.kind).persistent:
            await outbox.withdraw_waiting(tx, now, dedupe_key=copy_key(message.id))

    async def _probe_failing(self, tx: Tx, now: datetime) -> None:
        """Every PROBE_EVERY: which channels fail (any process may have seen it), and one
        waiting row of each made due, to find out whether it is back."""
        if self._health_read_at is not None and now - self._health_read_at < PROBE_EVERY:
            return
        self._health_read_at = now
        failing = await channel_health.failing_channels(tx, list(self.senders))
        self._failing = {f.channel for f in failing}
        for f in failing:
            if await channel_health.take_probe(tx, f.channel, now, now + PROBE_EVERY):
                await outbox.probe(tx, f.channel, now)
            await self._maybe_tell_admins(tx, f.channel, f.since, now)

    async def _maybe_tell_admins(self, tx: Tx, channel: str, since: datetime,
                                 now: datetime) -> None:
        if (self.undelivered is not None and now - since >= self.policy.tell_admins_after
                and await channel_health.take_telling_admins(tx, channel, since, now)):
            told = await self.undelivered.channel_down(tx, channel, since, now)
            log.warning("%s failing since %s: %s admin(s) told", channel, since.isoformat(),
                        told)

    async def _channel_back(self, channel: str, now: datetime) -> None:
        """A send went through on a channel that was failing: its waiting rows go now."""
        self._failing.discard(channel)
        async with self.database.transaction() as tx:
            was = await self._recovered(tx, channel, now)
        if was:
            log.info("%s works again; %s waiting message(s) due now", channel, was)

    async def _recovered(self, tx: Tx, channel: str, now: datetime) -> int:
        was = await channel_health.recovered(tx, channel)
        if was is None:
            return 0
        due = await outbox.outage_over(tx, channel, now)
        if was.admins_told_at is not None and self.undelivered is not None:
            await self.undelivered.channel_back(tx, channel, was.since, now)
        return due
