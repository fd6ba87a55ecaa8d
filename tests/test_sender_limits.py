"""One sender cannot bury the others (issue 15, item 11): past `[limits]`, a sender who
writes too fast is told once to slow down, and what they send is still taken in; past the
hourly report limit, their further reports are still cases, and the team hears of them in
one alert instead of one each (an emergency always gets its own). Through the simulator,
on SQLite and PostgreSQL; the flood beside an emergency on the fake Bot API."""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.config import DEMO_CONFIG, ConfigError, load_province, parse_commune
from bot.domain.commune import CommuneConfig, SenderLimits
from tests.support.database import rows
from tests.support.fake_telegram import FakeTelegram
from tests.support.province import commune_files, write_province
from tests.support.simulator import Simulator, WalkIn, choice_ids, simulator
from tests.support.stories import report_in, violence_in_thon_tay
from tests.support.telegram import (
    CITIZEN,
    IDS,
    OFFICER,
    TelegramWorld,
    demo_commune_with,
    telegram_app,
)


def commune_with(limits: dict[str, Any]) -> CommuneConfig:
    raw = tomllib.loads(DEMO_CONFIG.read_text(encoding="utf-8"))
    raw["limits"] = limits
    return parse_commune(raw)


@pytest.fixture
async def sim(db_url: str, clock: FakeClock) -> AsyncIterator[Simulator]:
    config = commune_with({"messages_per_minute": 5, "reports_per_hour": 2})
    async with simulator(db_url, clock, config) as found:
        yield found


def test_limits_are_read_and_checked() -> None:
    assert commune_with({}).limits == SenderLimits(5, 30)
    assert commune_with({"reports_per_hour": 9}).limits == SenderLimits(9, 30)
    for bad, named in (({"messages_per_minute": 0}, "messages_per_minute"),
                       ({"reports_per_hour": "5"}, "reports_per_hour"),
                       ({"report_per_hour": 5}, "reports_per_hour")):
        with pytest.raises(ConfigError) as refused:
            commune_with(bad)
        assert named in str(refused.value) and "\n" not in str(refused.value)


async def test_a_fast_sender_is_told_once_and_what_they_sent_is_kept(
        sim: Simulator, clock: FakeClock) -> None:
    walker = WalkIn(sim, "fast")
    for n in range(5):
        await walker.say("text", f"xin chào {n}")
    answered = len(await sim["fast"].inbox(all_=True))
    assert answered >= 5
    # The sixth message of the minute opens a report: it is taken in, and the one
    # answer says to slow down, with the report's first question under it.
    await walker.say("choice", "menu:report")
    told = await walker.last()
    assert told["ids"][:2] == ["limits.slow_down", "report.danger.prompt"], told
    assert "111" in told["text"]
    assert "danger:yes" in choice_ids(told)
    # More words in the same minute are taken in, not answered.
    await walker.say("text", "???")
    await walker.say("text", "có ai không")
    assert len(await sim["fast"].inbox(all_=True)) == answered + 1
    # An answer to the question the bot asked is not flooding (answers come only as fast
    # as the bot asks): it moves the report on, and the next question comes.
    await walker.say("choice", "danger:no")
    moved = await walker.last()
    assert moved["ids"][:1] == ["report.types.prompt"], moved
    # A minute later words are answered again, where the report stands.
    clock.advance(timedelta(minutes=1, seconds=1))
    await walker.say("text", "còn đó không")
    again = await walker.last()
    assert "limits.slow_down" not in again["ids"]
    assert any(c.startswith("type:") for c in choice_ids(again)), again


async def test_the_communes_own_people_are_not_slowed(sim: Simulator) -> None:
    """An officer taking many cases in a minute is never told to slow down."""
    officer = sim["officer"]
    for n in range(8):
        await officer.text(f"/cases {n}")
    assert all("limits.slow_down" not in m["ids"] for m in await officer.inbox(all_=True))


async def test_reports_past_the_hourly_limit_are_alerted_once_together(
        sim: Simulator, clock: FakeClock) -> None:
    officer = sim["officer"]
    await officer.inbox()
    codes = []
    for n in range(4):
        walker = WalkIn(sim, "many")
        walker.n = 100 * n
        for kind, value in report_in("dong"):
            await walker.say(kind, value)
            clock.advance(timedelta(seconds=13))  # under 5 messages a minute
        codes.append(f"VT-2026-{n + 1:04d}")
    got = await officer.inbox()
    alerts = [m for m in got if m["ids"][:1] == ["alert.new"]]
    grouped = [m for m in got if m["ids"][:1] == ["alert.many_reports"]]
    assert [c for c in codes if any(c in m["text"] for m in alerts)] == codes[:2]
    assert len(grouped) == 1 and codes[2] in grouped[0]["text"], got
    assert "menu:cases" in choice_ids(grouped[0])
    # Every report is a case the officer can open; the reporter got each one's code.
    opened = [r.code for r in await rows(sim.app, "cases")]
    assert opened == codes
    await officer.text("/cases")
    listing = (await officer.last())["text"]
    assert all(code in listing for code in codes), listing
    # An emergency from the same sender is alerted on its own at once.
    walker = WalkIn(sim, "many")
    walker.n = 1000
    for kind, value in report_in("dong", danger="yes"):
        await walker.say(kind, value)
        clock.advance(timedelta(seconds=13))
    emergency = [m for m in await officer.inbox() if m["ids"][:1] == ["alert.new"]]
    assert len(emergency) == 1 and "VT-2026-0005" in emergency[0]["text"]
    # Someone else's report is alerted as always.
    other = WalkIn(sim, "someone-else")
    for kind, value in report_in("tay"):
        await other.say(kind, value)
    assert [m for m in await officer.inbox() if m["ids"][:1] == ["alert.new"]]


FLOODER = 5101


async def flood_and_emergency(db_url: str, clock: FakeClock, flood: int
                              ) -> tuple[list[str], int, int, int]:
    """One account sends `flood` messages before each step of someone else's emergency
    report. Returns the order of what the fake received in the pump that raised the alert
    ("alert" or "flood" per message), how many answers the flooder got in all, how many
    of their messages were taken in, and the pump (step) that delivered the alert."""
    fake = FakeTelegram(now=lambda: clock.now().timestamp())
    await fake.start()
    try:
        for user in (CITIZEN, OFFICER, FLOODER):
            fake.add_user(user)
        async with telegram_app(db_url, clock, fake, demo_commune_with(IDS)) as (app, plugin):
            world = TelegramWorld(fake, app, plugin, clock)
            raised_at, order = -1, []
            for n, (kind, value) in enumerate(violence_in_thon_tay("Cháu bị đánh.",
                                                                     danger="yes")):
                for i in range(flood):
                    fake.user_text(FLOODER, f"spam {n}.{i}")
                before = len(fake.sent)
                await (world.say(CITIZEN, value) if kind == "say"
                       else world.press(CITIZEN, value))
                now_sent = fake.sent[before:]
                if raised_at < 0 and any(s.chat_id == OFFICER for s in now_sent):
                    raised_at = n
                    order = ["alert" if s.chat_id == OFFICER else "flood"
                             for s in now_sent if s.chat_id in (OFFICER, FLOODER)]
            answered = len(fake.inbox(FLOODER))
            # The whole walk takes the fake clock under a minute: one minute's count.
            taken = max(r.pace_count for r in await rows(app, "conversations",
                                                         order_by="person_id"))
            return order, answered, taken, raised_at
    finally:
        await fake.stop()


async def test_a_flood_from_one_account_does_not_hold_back_anothers_emergency(
        db_url: str, clock: FakeClock) -> None:
    """30 messages a minute (the default) are answered; past that the flooder is told once
    and their messages are still taken in. The emergency is alerted at the step it is
    alerted at with no flood (where it happened), and its alert is delivered at that step."""
    order, answered, taken, raised = await flood_and_emergency(db_url, clock, 40)
    steps = violence_in_thon_tay("Cháu bị đánh.", danger="yes")
    assert raised == steps.index(("say", "Thôn Tây"))
    # Delivered at that very step: the flood's answers (a backlog of at most 31, drained
    # at the channel's pace for one chat) never stand in its way.
    assert "alert" in order and order.count("flood") <= 5, order
    assert answered <= 31, answered
    assert taken == 40 * len(steps), (taken, len(steps))


def test_a_provinces_limits_are_its_own_files(tmp_path: Path) -> None:
    """One process serves every commune of a province: the province file sets the limits,
    and a commune file that sets them is refused in one line naming the province file."""
    path = write_province(tmp_path, communes=2)
    path.write_text(path.read_text(encoding="utf-8")
                    + "\n[limits]\nreports_per_hour = 3\n", encoding="utf-8")
    assert load_province(path).limits == SenderLimits(3, 30)
    first = commune_files(tmp_path)[0]
    first.write_text(first.read_text(encoding="utf-8") + "\n[limits]\nreports_per_hour = 9\n",
                     encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_province(path)
    message = str(refused.value)
    assert "[limits]" in message and path.name in message and "\n" not in message
