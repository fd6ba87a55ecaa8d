"""One chat's messages arrive in the order they were written: across batches, retries,
rate limits and several delivery workers sharing one database (issue 12, defect 4)."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from datetime import timedelta

from bot.app import Setup, build_app
from bot.clock import FakeClock
from bot.config import DEMO_CONFIG, load_commune
from bot.domain.delivery import Delivery, DeliveryError
from bot.domain.messages import Input
from bot.services.conversation import InboundEvent
from bot.workers.delivery import DeliveryWorker
from tests.support.channels import SenderPlugin
from tests.support.database import rows
from tests.support.stories import EMERGENCY_REPORT
from tests.support.workers import worker_of


class OrderedChannel:
    """A channel edge that records what each chat received, in arrival order; its faults
    are scripted (`fail_next`) or random (`failure_rate`, 5xx and 429 alike)."""

    name = "web"

    def __init__(self, failure_rate: float = 0.0, seed: int = 12) -> None:
        self.received: dict[str, list[int]] = defaultdict(list)
        self.log: list[tuple[str, int]] = []
        self.fail_next: list[DeliveryError] = []
        self.failure_rate = failure_rate
        self.random = random.Random(seed)
        self.in_flight: set[str] = set()
        self.overlapping = 0

    async def deliver(self, delivery: Delivery) -> str | None:
        if delivery.address in self.in_flight:
            self.overlapping += 1  # two sends to one chat at once: order is luck
        self.in_flight.add(delivery.address)
        try:
            await asyncio.sleep(self.random.random() * 0.003)
            if self.fail_next:
                raise self.fail_next.pop(0)
            if self.random.random() < self.failure_rate:
                raise (DeliveryError("429", retry_after=1) if self.random.random() < 0.5
                       else DeliveryError("502 Bad Gateway"))
            self.received[delivery.address].append(delivery.outbox_id)
            self.log.append((delivery.address, delivery.outbox_id))
            return str(delivery.outbox_id)
        finally:
            self.in_flight.discard(delivery.address)


def step(sender: str, n: int) -> InboundEvent:
    kind, value = EMERGENCY_REPORT[n]
    inp = Input("text", text=value) if kind == "text" else Input("choice", choice=value)
    return InboundEvent("web", sender, inp, key=f"{sender}:{n}")


async def test_a_newer_message_waits_behind_an_older_one_that_failed(
        db_url: str, clock: FakeClock) -> None:
    channel = OrderedChannel()
    app = await build_app(Setup(db_url, load_commune(DEMO_CONFIG), clock),
                          [SenderPlugin(channel)])
    try:
        worker = worker_of(app, DeliveryWorker)
        await app.conversations.handle(
            InboundEvent("web", "citizen", Input("command", command="start"), key="s1"))
        channel.fail_next.append(DeliveryError("500 Internal Server Error"))
        assert await worker.deliver_due() == 0
        # The next answer is written while the first one waits for its retry.
        await app.conversations.handle(
            InboundEvent("web", "citizen", Input("command", command="help"), key="s2"))
        assert await worker.deliver_due() == 0
        assert channel.received["citizen"] == []
        # Nor is it worth waking for: the chat's first row is what is due next.
        (first, second) = [r.id for r in await rows(app, "outbox")]
        assert await worker.next_due(clock.now()) > clock.now()

        clock.advance(timedelta(seconds=5))
        while await worker.deliver_due():
            pass
        assert channel.received["citizen"] == [first, second]
    finally:
        await app.close()


async def test_several_workers_keep_every_chat_in_order_through_faults(
        db_url: str, clock: FakeClock) -> None:
    """Three workers (as three processes would) with small batches share the outbox while
    reporters keep writing and a third of the sends fail: every chat still receives its
    rows once each, strictly in the order they were queued."""
    channel = OrderedChannel(failure_rate=0.3)
    app = await build_app(Setup(db_url, load_commune(DEMO_CONFIG), clock),
                          [SenderPlugin(channel)])
    try:
        workers = [DeliveryWorker(app.database, clock, {"web": channel}, owner=f"p{i}",
                                  batch=4) for i in range(3)]
        reporters = [f"reporter-{i}" for i in range(6)]
        for n in range(len(EMERGENCY_REPORT)):
            for reporter in reporters:
                await app.conversations.handle(step(reporter, n))
            await asyncio.gather(*(w.deliver_due() for w in workers))
            clock.advance(timedelta(seconds=3))
        for _ in range(200):
            if not [r for r in await rows(app, "outbox") if r.status == "pending"]:
                break
            await asyncio.gather(*(w.deliver_due() for w in workers))
            clock.advance(timedelta(seconds=3))
        queued: dict[str, list[int]] = defaultdict(list)
        for row in await rows(app, "outbox"):
            assert row.status == "sent"
            queued[row.address].append(row.id)
        assert set(queued) >= set(reporters) | {"officer", "police"}
        assert dict(channel.received) == dict(queued)
        assert channel.overlapping == 0
    finally:
        await app.close()


async def test_an_urgent_row_does_not_overtake_an_older_row_of_its_chat(
        db_url: str, clock: FakeClock) -> None:
    """Urgent kinds go first across chats, never inside one: a chat's older conversation
    row goes before its newer alert, while another chat's alert goes before both."""
    channel = OrderedChannel()
    app = await build_app(Setup(db_url, load_commune(DEMO_CONFIG), clock),
                          [SenderPlugin(channel)])
    try:
        # The officer talks to the bot (a conversation row), then a report alerts them.
        await app.conversations.handle(
            InboundEvent("web", "officer", Input("command", command="help"), key="o1"))
        for n in range(len(EMERGENCY_REPORT)):
            await app.conversations.handle(step("citizen", n))
        worker = DeliveryWorker(app.database, clock, {"web": channel}, batch=1)
        while await worker.deliver_due():
            pass
        officer_rows = [r for r in await rows(app, "outbox") if r.address == "officer"]
        assert [r.kind for r in officer_rows][:2] == ["reply", "alert"]
        assert channel.received["officer"] == [r.id for r in officer_rows]
        # With one row per look, the police alert (urgent, its chat's first) went first of
        # all, before the officer's older conversation row.
        police_alert = next(r.id for r in await rows(app, "outbox")
                            if r.address == "police" and r.kind == "alert")
        assert channel.log[0] == ("police", police_alert)
    finally:
        await app.close()
