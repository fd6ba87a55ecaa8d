"""Two hours without Telegram (issue 12): the fake Bot API answers 500 to every send, or
lets every send hang, while five cases are reported; then it recovers. Every alert arrives
exactly once (on Telegram or, rerouted, on the web), the cases climbed during the outage,
the administrators were told once, and the first answers after recovery arrive within
seconds of real time."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.app import App
from bot.clock import FakeClock
from bot.domain.messages import Input
from bot.services.conversation import InboundEvent
from storage import cases
from tests.support.database import read, rows
from tests.support.fake_telegram import FakeTelegram, Sent
from tests.support.stories import EMERGENCY_REPORT
from tests.support.telegram import IDS, demo_commune_with, telegram_app
from tests.support.waiting import eventually
from tests.support.workers import keep_sent_words

STAFF = tuple(IDS.values())
TELEGRAM_REPORTERS = (5101, 5102)
WEB_REPORTERS = ("web-reporter-1", "web-reporter-2", "web-reporter-3")
OUTAGE = timedelta(hours=2)


async def report_blind_on_telegram(fake: FakeTelegram, user: int) -> None:
    """A reporter whose screen shows nothing new (no answer gets through): they press
    what they know is there."""
    shown = Sent(user, 1, "…", None)
    for kind, value in EMERGENCY_REPORT:
        if kind == "text":
            fake.user_text(user, value)
        else:
            fake.forge(user, value, shown)


async def report_on_web(app: App, sender: str) -> None:
    for n, (kind, value) in enumerate(EMERGENCY_REPORT):
        inp = Input("text", text=value) if kind == "text" else Input("choice", choice=value)
        await app.conversations.handle(InboundEvent("web", sender, inp, key=f"{sender}:{n}"))


@contextlib.asynccontextmanager
async def real_time(clock: FakeClock) -> AsyncIterator[None]:
    """The test clock moves with the wall clock, as time does in production."""
    async def tick() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            clock.advance(timedelta(seconds=now - last))
            last = now

    task = asyncio.create_task(tick())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.parametrize("fault", [500, "timeout"])
async def test_two_hours_without_telegram(db_url: str, clock: FakeClock,
                                          fault: int | str) -> None:
    fake = FakeTelegram(now=lambda: clock.now().timestamp())
    fake.hang_seconds = 0.5
    await fake.start()
    for user in (*STAFF, *TELEGRAM_REPORTERS):
        fake.add_user(user)
    try:
        async with telegram_app(db_url, clock, fake, demo_commune_with(IDS), simulator=True,
                                read_timeout=0.25) as (app, plugin):
            keep_sent_words(app)  # what the admins were told is read back from the outbox
            poller = plugin.poller
            assert poller is not None
            fake.down = fault
            # Five cases in the first minutes: three on the web, two blind on Telegram.
            for sender in WEB_REPORTERS:
                await report_on_web(app, sender)
                clock.advance(timedelta(minutes=1))
                await app.settle()
            for user in TELEGRAM_REPORTERS:
                await report_blind_on_telegram(fake, user)
                while fake.updates and await poller.poll_once():
                    pass
                clock.advance(timedelta(minutes=1))
                await app.settle()
            passed = timedelta(minutes=len(WEB_REPORTERS) + len(TELEGRAM_REPORTERS))
            while passed < OUTAGE:
                step = timedelta(minutes=1) if passed < timedelta(minutes=20) else timedelta(
                    minutes=10)
                clock.advance(step)
                passed += step
                await app.settle()
            codes = [f"VT-2026-000{n}" for n in range(1, 6)]
            for code in codes:
                case = await read(app, cases.case_by_code, code)
                assert case is not None and case.escalation_level >= 2, code
            assert not [m for m in fake.sent if m.chat_id in STAFF], "Telegram was down"

            # It recovers; time runs as in production, and the workers run on their own.
            fake.down = None
            recovered_at = time.perf_counter()
            await app.start()
            async with real_time(clock):
                with contextlib.suppress(AssertionError):  # the assertion below names who
                    await eventually(lambda: all(fake.inbox(u) for u in TELEGRAM_REPORTERS),
                                     seconds=15)
                await eventually(lambda: alerts_settled(app), seconds=30)
                print(f"\nalerts settled {time.perf_counter() - recovered_at:.2f} s after recovery")
                await asyncio.sleep(1.0)  # anything that would come twice comes now
            first_answers = [fake.inbox(u)[0].at - recovered_at for u in TELEGRAM_REPORTERS
                             if fake.inbox(u)]
            assert len(first_answers) == len(TELEGRAM_REPORTERS)
            assert max(first_answers) < 5, first_answers
            await assert_every_alert_arrived_once(app)
            await assert_admins_told_once(app)
            queued = await rows(app, "outbox")
            print(f"\nlong outage ({fault}): 5 reports, "
                  f"{sum(r.kind in ('alert', 'escalation') for r in queued)} alert rows "
                  f"(copies included), sent on Telegram "
                  f"{sum(r.status == 'sent' and r.channel == 'telegram' for r in queued)}, "
                  f"on the web {sum(r.status == 'sent' and r.channel == 'web' for r in queued)}"
                  f", first answers after recovery in "
                  f"{', '.join(f'{t:.2f}' for t in first_answers)} s")
    finally:
        await fake.stop()


async def alerts_settled(app: App) -> bool:
    """No alert or escalation (nor a copy of one) waits to be sent any more."""
    return not [r for r in await rows(app, "outbox") if r.status == "pending"
                and r.kind in ("alert", "escalation", "additions")]


async def assert_every_alert_arrived_once(app: App) -> None:
    """Each alert and escalation went out once: on Telegram, or its copy on the web."""
    queued = await rows(app, "outbox")
    web_log = {r.outbox_id for r in await rows(app, "sim_messages", direction="out")}
    copies = {r.dedupe_key: r for r in queued if r.dedupe_key
              and r.dedupe_key.startswith("reroute:")}
    originals = [r for r in queued if r.kind in ("alert", "escalation")
                 and not (r.dedupe_key or "").startswith("reroute:")]
    assert len(originals) >= 10
    for original in originals:
        copy = copies.get(f"reroute:{original.id}")
        arrived = [r for r in (original, copy) if r is not None and r.status == "sent"]
        assert len(arrived) == 1, (original.id, original.status, copy and copy.status)
        if arrived[0].channel == "web":
            assert arrived[0].id in web_log


async def assert_admins_told_once(app: App) -> None:
    told = [r for r in await rows(app, "outbox", kind="admin")
            if r.payload["reply"]["texts"][0]["id"] == "delivery.channel_down"]
    assert [(r.address, r.channel, r.status) for r in told] == [("admin", "web", "sent")]
