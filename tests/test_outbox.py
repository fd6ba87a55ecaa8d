"""The outbox: nothing lost after a commit, nothing sent before it, nothing sent twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from bot.handlers.web import WebChannel
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import Engine, build_engine
from bot.clock import FakeClock
from bot.config import DEMO_CONFIG, load_commune
from bot.domain.messages import Input
from bot.services.conversation import InboundEvent
from bot.services.outbox import Delivery, DeliveryError, OutboxWorker
from storage.models import Case, Outbox, SimMessage
from tests.support.stories import EMERGENCY_REPORT


class FlakyChannel:
    """A channel edge that fails the first `failures` sends, as a rate-limited API would."""

    name = "web"

    def __init__(self, failures: int, retry_after: float | None = None) -> None:
        self.failures = failures
        self.retry_after = retry_after
        self.sent: list[int] = []
        self.calls = 0

    async def deliver(self, session: AsyncSession | None, delivery: Delivery) -> str | None:
        self.calls += 1
        if self.calls <= self.failures:
            raise DeliveryError("429 too many requests", retry_after=self.retry_after)
        self.sent.append(delivery.outbox_id)
        return str(delivery.outbox_id)


async def report(engine: Engine, sender: str = "citizen") -> None:
    for n, (kind, value) in enumerate(EMERGENCY_REPORT):
        inp = Input("text", text=value) if kind == "text" else Input("choice", choice=value)
        await engine.conversations.handle(InboundEvent("web", sender, inp, key=f"{sender}:{n}"))


async def count(engine: Engine, model: type, *where: object) -> int:
    async with engine.database.read() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_crash_before_commit_sends_nothing_and_loses_nothing(engine: Engine) -> None:
    for n, (kind, value) in enumerate(EMERGENCY_REPORT[:-1]):
        inp = Input("text", text=value) if kind == "text" else Input("choice", choice=value)
        await engine.conversations.handle(InboundEvent("web", "citizen", inp, key=f"c:{n}"))
    before = await count(engine, Outbox)

    def crash(session: object) -> None:
        raise RuntimeError("power cut")

    event.listen(engine.sessions.class_.sync_session_class, "before_commit", crash)
    try:
        with pytest.raises(RuntimeError):
            await engine.conversations.handle(
                InboundEvent("web", "citizen", Input("choice", choice="confirm"), key="c:last"))
    finally:
        event.remove(engine.sessions.class_.sync_session_class, "before_commit", crash)
    assert await count(engine, Case) == 0
    assert await count(engine, Outbox) == before
    # The channel redelivers the same update: it is processed now, once.
    assert await engine.conversations.handle(
        InboundEvent("web", "citizen", Input("choice", choice="confirm"), key="c:last"))
    assert await count(engine, Case) == 1
    assert await count(engine, Outbox, Outbox.kind == "alert") == 2


async def test_alerts_committed_before_a_crash_are_delivered_after_restart(
        db_url: str, clock: FakeClock) -> None:
    first = await build_engine(db_url, load_commune(DEMO_CONFIG), clock,
                               {"web": WebChannel(clock)})
    await report(first)
    # The process dies before its outbox worker ran.
    await first.db.dispose()

    second = await build_engine(db_url, load_commune(DEMO_CONFIG), clock,
                                {"web": WebChannel(clock)})
    try:
        assert await count(second, Outbox, Outbox.status == "pending") >= 3
        while await second.outbox.deliver_due():
            pass
        assert await count(second, Outbox, Outbox.status == "pending") == 0
        async with second.database.read() as s:
            addresses = Counter((await s.scalars(select(SimMessage.address).where(
                SimMessage.payload.is_not(None)))).all())
        assert addresses["officer"] >= 1 and addresses["police"] >= 1
        # Running the worker again sends nothing more.
        before = await count(second, SimMessage)
        assert await second.outbox.deliver_due() == 0
        assert await count(second, SimMessage) == before
    finally:
        await second.close()


async def test_rate_limited_send_waits_retry_after_and_sends_once(
        db_url: str, clock: FakeClock) -> None:
    flaky = FlakyChannel(failures=2, retry_after=30)
    eng = await build_engine(db_url, load_commune(DEMO_CONFIG), clock, {"web": flaky})
    try:
        await eng.conversations.handle(
            InboundEvent("web", "citizen", Input("command", command="start"), key="s1"))
        assert await eng.outbox.deliver_due() == 0  # 429
        assert await eng.outbox.deliver_due() == 0  # not due again before retry_after
        clock.advance(timedelta(seconds=31))
        assert await eng.outbox.deliver_due() == 0  # 429 again
        clock.advance(timedelta(seconds=31))
        assert await eng.outbox.deliver_due() == 1
        clock.advance(timedelta(hours=1))
        assert await eng.outbox.deliver_due() == 0
        assert len(flaky.sent) == 1 and flaky.calls == 3
        async with eng.database.read() as s:
            row = (await s.scalars(select(Outbox))).one()
        assert (row.status, row.attempts) == ("sent", 3)
    finally:
        await eng.close()


async def test_two_workers_share_the_outbox_without_sending_twice(
        db_url: str, clock: FakeClock) -> None:
    channel = FlakyChannel(failures=0)
    eng = await build_engine(db_url, load_commune(DEMO_CONFIG), clock, {"web": channel})
    try:
        for i in range(8):
            await report(eng, sender=f"reporter-{i}")
        total = await count(eng, Outbox)
        workers = [OutboxWorker(eng.sessions, clock, {"web": channel}, owner=f"w{i}", batch=7)
                   for i in range(3)]

        async def drain(w: OutboxWorker) -> None:
            while await w.deliver_due():
                pass

        await asyncio.gather(*(drain(w) for w in workers))
        assert len(channel.sent) == total
        assert len(set(channel.sent)) == total
        assert await count(eng, Outbox, Outbox.status == "sent") == total
    finally:
        await eng.close()


async def test_results_finishing_together_are_committed_together(
        db_url: str, clock: FakeClock) -> None:
    """Sends to many chats that finish at once share a commit (group commit); each row is
    still recorded as sent with its own message reference, or kept for a retry."""
    channel = FlakyChannel(failures=3, retry_after=30)
    eng = await build_engine(db_url, load_commune(DEMO_CONFIG), clock, {"web": channel})
    try:
        for i in range(8):
            await report(eng, sender=f"reporter-{i}")
        total = await count(eng, Outbox)
        assert total > 30
        commits = Counter[str]()
        event.listen(eng.db.sync_engine, "commit", lambda conn: commits.update(["commit"]))
        while await eng.outbox.deliver_due():
            pass
        # One claim per batch plus far fewer result commits than messages.
        assert commits["commit"] < total / 2
        async with eng.database.read() as s:
            rows = (await s.scalars(select(Outbox))).all()
        sent = [r for r in rows if r.status == "sent"]
        assert {r.external_ref for r in sent} == {str(r.id) for r in sent}
        # The three refused ones, and their chats' later rows held back behind them.
        waiting = [r for r in rows if r.status == "pending"]
        assert len(sent) + len(waiting) == total and len(waiting) >= 3
        assert all(r.lease_owner is None for r in waiting)
        clock.advance(timedelta(seconds=31))
        while await eng.outbox.deliver_due():
            pass
        assert await count(eng, Outbox, Outbox.status == "sent") == total
        assert sorted(channel.sent) == sorted(r.id for r in rows)
    finally:
        await eng.close()
