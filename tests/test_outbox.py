"""The outbox: nothing lost after a commit, nothing sent before it, nothing sent twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest

from bot.app import App, Setup, build_app
from bot.clock import FakeClock
from bot.config import DEMO_CONFIG, load_commune
from bot.domain.delivery import Delivery, DeliveryError
from bot.domain.messages import Input
from bot.handlers.plugin import ChannelPlugin
from bot.handlers.simulator import SimulatorPlugin
from bot.services.conversation import InboundEvent
from bot.workers.delivery import DeliveryWorker
from tests.support.channels import SenderPlugin
from tests.support.database import count, counting_commits, power_cut_at_commit, rows
from tests.support.stories import ALERTED_AT, EMERGENCY_REPORT
from tests.support.workers import worker_of


class FlakyChannel:
    """A channel edge that fails the first `failures` sends, as a rate-limited API would."""

    name = "web"

    def __init__(self, failures: int, retry_after: float | None = None) -> None:
        self.failures = failures
        self.retry_after = retry_after
        self.sent: list[int] = []
        self.calls = 0

    async def deliver(self, delivery: Delivery) -> str | None:
        self.calls += 1
        if self.calls <= self.failures:
            raise DeliveryError("429 too many requests", retry_after=self.retry_after)
        self.sent.append(delivery.outbox_id)
        return str(delivery.outbox_id)


async def report(app: App, sender: str = "citizen") -> None:
    for n, (kind, value) in enumerate(EMERGENCY_REPORT):
        inp = Input("text", text=value) if kind == "text" else Input("choice", choice=value)
        await app.conversations.handle(InboundEvent("web", sender, inp, key=f"{sender}:{n}"))


async def make_app(db_url: str, clock: FakeClock, channel: ChannelPlugin) -> App:
    return await build_app(Setup(db_url, load_commune(DEMO_CONFIG), clock), [channel])


async def test_crash_before_commit_sends_nothing_and_loses_nothing(app: App) -> None:
    # An emergency opens with the answer that says where.
    *before_alert, (_, where) = EMERGENCY_REPORT[:ALERTED_AT]
    for n, (kind, value) in enumerate(before_alert):
        inp = Input("text", text=value) if kind == "text" else Input("choice", choice=value)
        await app.conversations.handle(InboundEvent("web", "citizen", inp, key=f"c:{n}"))
    before = await count(app, "outbox")

    with power_cut_at_commit(app), pytest.raises(RuntimeError):
        await app.conversations.handle(
            InboundEvent("web", "citizen", Input("choice", choice=where), key="c:last"))
    assert await count(app, "cases") == 0
    assert await count(app, "outbox") == before
    # The channel redelivers the same update: it is processed now, once.
    assert await app.conversations.handle(
        InboundEvent("web", "citizen", Input("choice", choice=where), key="c:last"))
    assert await count(app, "cases") == 1
    assert await count(app, "outbox", kind="alert") == 2


async def test_alerts_committed_before_a_crash_are_delivered_after_restart(
        db_url: str, clock: FakeClock) -> None:
    first = await make_app(db_url, clock, SimulatorPlugin())
    await report(first)
    # The process dies before its delivery worker ran.
    await first.database.close()

    second = await make_app(db_url, clock, SimulatorPlugin())
    try:
        assert await count(second, "outbox", status="pending") >= 3
        while await worker_of(second, DeliveryWorker).deliver_due():
            pass
        assert await count(second, "outbox", status="pending") == 0
        addresses = Counter(m.address for m in await rows(second, "sim_messages",
                                                           direction="out"))
        assert addresses["officer"] >= 1 and addresses["police"] >= 1
        # Running the worker again sends nothing more.
        before = await count(second, "sim_messages")
        assert await worker_of(second, DeliveryWorker).deliver_due() == 0
        assert await count(second, "sim_messages") == before
    finally:
        await second.close()


async def test_rate_limited_send_waits_retry_after_and_sends_once(
        db_url: str, clock: FakeClock) -> None:
    flaky = FlakyChannel(failures=2, retry_after=30)
    eng = await make_app(db_url, clock, SenderPlugin(flaky))
    try:
        await eng.conversations.handle(
            InboundEvent("web", "citizen", Input("command", command="start"), key="s1"))
        worker = worker_of(eng, DeliveryWorker)
        assert await worker.deliver_due() == 0  # 429
        assert await worker.deliver_due() == 0  # not due again before retry_after
        clock.advance(timedelta(seconds=31))
        assert await worker.deliver_due() == 0  # 429 again
        clock.advance(timedelta(seconds=31))
        assert await worker.deliver_due() == 1
        clock.advance(timedelta(hours=1))
        assert await worker.deliver_due() == 0
        assert len(flaky.sent) == 1 and flaky.calls == 3
        (row,) = await rows(eng, "outbox")
        assert (row.status, row.attempts) == ("sent", 3)
    finally:
        await eng.close()


async def test_two_workers_share_the_outbox_without_sending_twice(
        db_url: str, clock: FakeClock) -> None:
    channel = FlakyChannel(failures=0)
    eng = await make_app(db_url, clock, SenderPlugin(channel))
    try:
        for i in range(8):
            await report(eng, sender=f"reporter-{i}")
        total = await count(eng, "outbox")
        workers = [DeliveryWorker(eng.database, clock, {"web": channel}, owner=f"w{i}",
                                  batch=7) for i in range(3)]

        async def drain(w: DeliveryWorker) -> None:
            while await w.deliver_due():
                pass

        await asyncio.gather(*(drain(w) for w in workers))
        assert len(channel.sent) == total
        assert len(set(channel.sent)) == total
        assert await count(eng, "outbox", status="sent") == total
    finally:
        await eng.close()


async def test_results_finishing_together_are_committed_together(
        db_url: str, clock: FakeClock) -> None:
    """Sends to many chats that finish at once share a commit (group commit); each row is
    still recorded as sent with its own message reference, or kept for a retry."""
    channel = FlakyChannel(failures=3, retry_after=30)
    eng = await make_app(db_url, clock, SenderPlugin(channel))
    try:
        for i in range(8):
            await report(eng, sender=f"reporter-{i}")
        total = await count(eng, "outbox")
        assert total > 30
        with counting_commits(eng) as commits:
            while await worker_of(eng, DeliveryWorker).deliver_due():
                pass
        # One claim per batch plus far fewer result commits than messages.
        assert commits["commit"] < total / 2
        queued = await rows(eng, "outbox")
        sent = [r for r in queued if r.status == "sent"]
        assert {r.external_ref for r in sent} == {str(r.id) for r in sent}
        # The three refused ones, and their chats' later rows held back behind them.
        waiting = [r for r in queued if r.status == "pending"]
        assert len(sent) + len(waiting) == total and len(waiting) >= 3
        assert all(r.lease_owner is None for r in waiting)
        clock.advance(timedelta(seconds=31))
        while await worker_of(eng, DeliveryWorker).deliver_due():
            pass
        assert await count(eng, "outbox", status="sent") == total
        assert sorted(channel.sent) == sorted(r.id for r in queued)
    finally:
        await eng.close()
