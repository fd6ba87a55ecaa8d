"""The reporter is not left in silence (issue 13, item 3), over the fake Bot API: an
EMERGENCY nobody took by its acknowledge deadline tells the reporter, once, to call 113 or
111 themselves; when someone takes the case the reporter hears it in coarse words, never
with the officer's name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot import i18n
from bot.clock import FakeClock
from bot.config import DEMO_CONFIG, load_commune
from storage import cases
from tests.support.database import read
from tests.support.messages import shows
from tests.support.stories import violence_in_thon_tay
from tests.support.telegram import CITIZEN, OFFICER, TelegramWorld, telegram_world


@pytest.fixture
async def world(db_url: str, clock: FakeClock) -> AsyncIterator[TelegramWorld]:
    async with telegram_world(db_url, clock) as built:
        yield built


async def test_an_emergency_nobody_took_tells_the_reporter_to_call(
        world: TelegramWorld) -> None:
    w = world
    story = violence_in_thon_tay("Bố say rượu đánh cháu, cháu đang khóc.", danger="yes")
    for kind, value in story:
        await (w.say(CITIZEN, value) if kind == "say" else w.press(CITIZEN, value))
    case = await read(w.app, cases.case_by_code, "VT-2026-0001")
    assert case is not None and case.urgency == "EMERGENCY"

    def told_to_call() -> list[str]:
        return [m.text for m in w.fake.inbox(CITIZEN)
                if shows(m.text, "reporter.nobody_yet", code=case.code)]

    assert not told_to_call()
    # Two hours pass and nobody takes it: the chain climbs, the reporter is told once.
    for _ in range(12):
        w.clock.advance(timedelta(minutes=10))
        await w.app.settle()
    assert len(told_to_call()) == 1
    assert "113" in told_to_call()[0] and "111" in told_to_call()[0]

    await w.press(OFFICER, f"case:ack:{case.id}")
    await w.app.settle()
    taken = w.last(CITIZEN)
    assert shows(taken.text, "reporter.being_handled", code=case.code)
    officer = next(p for p in load_commune(DEMO_CONFIG).people if p.key == "officer")
    assert officer.name not in taken.text


async def test_a_case_taken_in_time_tells_the_reporter_only_that(world: TelegramWorld) -> None:
    w = world
    for kind, value in violence_in_thon_tay("Hàng xóm thấy cháu bị đánh nhiều lần."):
        await (w.say(CITIZEN, value) if kind == "say" else w.press(CITIZEN, value))
    case = await read(w.app, cases.case_by_code, "VT-2026-0001")
    assert case is not None
    await w.press(OFFICER, f"case:ack:{case.id}")
    for _ in range(12):
        w.clock.advance(timedelta(minutes=10))
        await w.app.settle()
    texts = [m.text for m in w.fake.inbox(CITIZEN)]
    assert any(shows(t, "reporter.being_handled", code=case.code) for t in texts)
    assert not any(shows(t, "reporter.nobody_yet", code=case.code) for t in texts)


async def test_an_alert_nobody_took_in_time_says_so(world: TelegramWorld) -> None:
    """Issue 13, item 8: the first alert's copy stops reading "VỤ VIỆC MỚI" once its
    acknowledge deadline passed; it keeps its buttons, and taking the case edits it
    again."""
    w = world
    story = violence_in_thon_tay("Bố say rượu đánh cháu, cháu đang khóc.", danger="yes")
    for kind, value in story:
        await (w.say(CITIZEN, value) if kind == "say" else w.press(CITIZEN, value))
    case = await read(w.app, cases.case_by_code, "VT-2026-0001")
    assert case is not None
    alert = next(m for m in w.fake.inbox(OFFICER) if f"case:ack:{case.id}" in m.callback_data)
    assert shows(alert.text, "alert.new", code=case.code)
    w.clock.advance(timedelta(minutes=16))
    await w.app.settle()
    assert alert.edits, "the alert was edited"
    assert shows(alert.edits[-1], "alert.overdue", code=case.code,
                 waited=i18n.t("waited.minutes", "vi", count=15))
    assert not shows(alert.edits[-1], "alert.new", code=case.code)
    assert f"case:ack:{case.id}" in alert.callback_data
    await w.press(OFFICER, f"case:ack:{case.id}")
    await w.app.settle()
    assert shows(alert.edits[-1], "case.taken_by", code=case.code,
                 name=next(p for p in load_commune(DEMO_CONFIG).people
                           if p.key == "officer").name)
