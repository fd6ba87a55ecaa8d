"""The top of the escalation chain (the chairman, the province contact) is alerted once per
case, when the case reaches it; after that it hears of the cases still waiting on it in one
digest a day per person, never in the quiet hours (22:00-06:00 local) unless a case is an
EMERGENCY, and whichever process sends it, once (issue 12, defect 9)."""

from __future__ import annotations

import asyncio
import re
import tomllib
from datetime import datetime, time, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from bot.app import App, Setup, build_app
from bot.clock import FakeClock
from bot.config import DEMO_CONFIG, ConfigError, load_commune, parse_commune
from bot.domain.local_time import LOCAL_TZ
from bot.domain.top_digest import DigestPace
from bot.handlers.simulator import SimulatorPlugin
from tests.support import START
from tests.support.database import messages
from tests.support.messages import shows
from tests.support.processes import serve_refused
from tests.support.simulator import Simulator, choice_ids, walk_report
from tests.support.stories import report_in
from tests.support.workers import keep_sent_words

TOP = ("chairman", "province")


def local(when: datetime) -> datetime:
    return when.astimezone(LOCAL_TZ)


def at_night(when: datetime) -> bool:
    return not time(6, 0) <= local(when).time() < time(22, 0)


async def hours(sim: Simulator, n: float, step_minutes: int = 30) -> None:
    """Move the clock `n` hours, a step at a time, the workers running after each."""
    for _ in range(round(n * 60 / step_minutes)):
        await sim.advance(step_minutes)


async def top_messages(app: App, key: str, kind: str | None = None) -> list[Any]:
    return [m for m in await messages(app)
            if m.person_key == key and (kind is None or m.kind == kind)]


def listed(digest: Any) -> list[str]:
    """The case codes a digest lists, in its order."""
    return [t["params"]["code"] for t in digest.payload["reply"]["texts"]
            if t["id"] == "digest.case"]


async def test_a_week_of_four_cases_nobody_takes(sim: Simulator) -> None:
    """Before the digest the top was re-alerted every period: in this week 780 messages
    each (757 escalations, 23 deadline reminders), 227 of them at night; now 11 (4 alerts,
    7 digests), none at night."""
    keep_sent_words(sim.app)  # the digests are read back from the outbox
    codes = [await walk_report(sim, "citizen", report_in(v)) for v in ("tay", "dong", "nam")]
    await hours(sim, 11.5)
    # Reported at 20:30, the fourth case would reach the top at 23:30: it waits for 06:00.
    codes.append(await walk_report(sim, "citizen", report_in("bac")))
    await hours(sim, 7 * 24)

    for key in TOP:
        mine = await top_messages(sim.app, key)
        alerts = [m for m in mine if m.kind == "escalation"]
        digests = [m for m in mine if m.kind == "digest"]
        # One alert per case, when it reached the top; then a digest a day, no more.
        assert [m.case_id for m in alerts] == [1, 2, 3, 4]
        assert local(alerts[-1].created_at) == datetime(2026, 11, 24, 6, 0, tzinfo=LOCAL_TZ)
        assert 6 <= len(digests) <= 7
        assert all(later.created_at - earlier.created_at >= timedelta(days=1)
                   for earlier, later in pairwise(digests))
        # Nothing else: no reminder per case and deadline.
        assert len(mine) == len(alerts) + len(digests)
        assert [m for m in mine if at_night(m.created_at)] == []
        # Every digest after the fourth case reached the top lists all four, oldest first.
        assert {tuple(listed(d)) for d in digests} == {tuple(codes)}

    # The phone shows it with a button per case to take it.
    digest = (await sim["chairman"].inbox(all_=True))[-1]
    assert shows(digest["text"], "digest.top", count=4)
    assert shows(digest["text"], "waited.days", count=7)
    assert choice_ids(digest) == ["case:ack:1", "case:ack:2", "case:ack:3", "case:ack:4"]
    # Below the top nothing changed: the vice-chairman had each case's alert on its way up.
    leader = await top_messages(sim.app, "leader", "escalation")
    assert [m.case_id for m in leader] == [1, 2, 3, 4]


async def test_an_emergency_at_the_top_may_wake_it_at_night_once_a_day(
        sim: Simulator) -> None:
    keep_sent_words(sim.app)  # the digests are read back from the outbox
    sim.app.clock.set(START.replace(hour=22, minute=30))
    code = await walk_report(sim, "citizen", report_in("dong", danger="yes"))
    # 15 minutes a level: the top has it at 23:15, then two nights pass.
    await hours(sim, 49, step_minutes=15)

    for key in TOP:
        alerts = await top_messages(sim.app, key, "escalation")
        digests = await top_messages(sim.app, key, "digest")
        assert [local(m.created_at) for m in alerts] == [
            datetime(2026, 11, 23, 23, 15, tzinfo=LOCAL_TZ)]
        assert [local(m.created_at) for m in digests] == [
            datetime(2026, 11, 24, 23, 15, tzinfo=LOCAL_TZ),
            datetime(2026, 11, 25, 23, 15, tzinfo=LOCAL_TZ)]
        assert [listed(d) for d in digests] == [[code], [code]]


async def test_a_case_someone_takes_drops_out_of_the_next_digest(sim: Simulator) -> None:
    keep_sent_words(sim.app)  # the digests are read back from the outbox
    first = await walk_report(sim, "citizen", report_in("tay"))
    second = await walk_report(sim, "citizen", report_in("dong"))
    await hours(sim, 27)  # Tuesday 12:00: a day after both reached the top

    chairman = sim["chairman"]
    digest = (await chairman.inbox(all_=True))[-1]
    assert shows(digest["text"], "digest.top", count=2)
    assert choice_ids(digest) == ["case:ack:1", "case:ack:2"]
    # The chairman takes the second case from the digest and records its first assessment.
    await chairman.tap("case:ack:2")
    assert shows((await chairman.last())["text"], "case.you_took", code=second)
    await chairman.tap("case:assess:2")
    await chairman.tap("risk:high")
    await chairman.text("Đã báo công an xã, cháu ở với bà ngoại.")
    await chairman.tap("form:violence")
    await chairman.tap("setting:family")
    # The officer takes the first case, but its initial assessment is late already.
    await sim["officer"].tap("case:ack:1")
    await hours(sim, 24)

    for key in TOP:
        digests = await top_messages(sim.app, key, "digest")
        assert [listed(d) for d in digests] == [[first, second], [first]]
    digest = (await chairman.inbox())[-1]
    assert shows(digest["text"], "digest.top", count=1)
    assert choice_ids(digest) == ["case:handover:1"]
    await chairman.tap("case:handover:1")
    assert shows((await chairman.last())["text"], "handover.prompt", code=first)


async def test_two_processes_on_one_database_send_one_digest(
        sim: Simulator, db_url: str, clock: FakeClock) -> None:
    await walk_report(sim, "citizen", report_in("tay"))
    await hours(sim, 3)  # the top has the case
    other = await build_app(Setup(db_url, load_commune(DEMO_CONFIG), clock),
                            [SimulatorPlugin()])
    try:
        clock.advance(timedelta(days=1))
        for _ in range(2):
            await asyncio.gather(sim.app.settle(), other.settle())
    finally:
        await other.close()
    for key in TOP:
        assert len(await top_messages(sim.app, key, "digest")) == 1


# ---- the pace, and the commune file that sets it ------------------------------------------


def at(hour: int, minute: int = 0, day: int = 23) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=LOCAL_TZ)


def test_the_pace_keeps_the_quiet_hours_and_the_interval() -> None:
    pace = DigestPace()
    assert [pace.is_quiet(at(h, m)) for h, m in ((21, 59), (22, 0), (5, 59), (6, 0))] == [
        False, True, True, False]
    assert pace.quiet_end(at(23, 0)) == at(6, 0, day=24)
    assert pace.quiet_end(at(2, 0)) == at(6, 0)
    assert pace.quiet_end(at(9, 0)) == at(9, 0)
    # Held one interval after the last digest, then to the morning unless an emergency.
    assert pace.held_until(at(20, 0), at(21, 0, day=22), False) == at(21, 0)
    assert pace.held_until(at(23, 0), at(21, 0, day=22), False) == at(6, 0, day=24)
    assert pace.held_until(at(23, 0), at(21, 0, day=22), True) is None
    assert pace.held_until(at(9, 0), None, False) is None
    # Quiet hours within a day, and a faster pace.
    lunch = DigestPace(per_day=3, quiet=(time(12, 0), time(13, 30)))
    assert lunch.interval == timedelta(hours=8)
    assert [lunch.is_quiet(at(h, m)) for h, m in ((11, 59), (12, 0), (13, 30), (23, 0))] == [
        False, True, False, False]
    assert lunch.quiet_end(at(12, 15)) == at(13, 30)


def demo_raw() -> dict[str, Any]:
    return tomllib.loads(DEMO_CONFIG.read_text(encoding="utf-8"))


def test_the_commune_file_sets_the_pace() -> None:
    assert load_commune(DEMO_CONFIG).top_digest == DigestPace(1, (time(22, 0), time(6, 0)))
    raw = demo_raw()
    del raw["escalation"]["top_reminders_per_day"], raw["escalation"]["quiet_hours"]
    assert parse_commune(raw).top_digest == DigestPace()
    raw["escalation"].update(top_reminders_per_day=2, quiet_hours=["21:30", "05:30"])
    assert parse_commune(raw).top_digest == DigestPace(2, (time(21, 30), time(5, 30)))


PER_DAY = "top_reminders_per_day must be a whole number from 1 to 24"
QUIET = "quiet_hours must be two times like"


@pytest.mark.parametrize(("fields", "message"), [
    ({"top_reminder_per_day": 1}, "escalation: unknown field(s) top_reminder_per_day"),
    ({"quiet_hour": ["22:00", "06:00"]}, "escalation: unknown field(s) quiet_hour"),
    ({"top_reminders_per_day": 0}, f"{PER_DAY}, not 0"),
    ({"top_reminders_per_day": 25}, f"{PER_DAY}, not 25"),
    ({"top_reminders_per_day": "1"}, f"{PER_DAY}, not '1'"),
    ({"top_reminders_per_day": True}, f"{PER_DAY}, not True"),
    ({"top_reminders_per_day": 1.5}, f"{PER_DAY}, not 1.5"),
    ({"quiet_hours": ["22:00"]}, QUIET),
    ({"quiet_hours": ["22h", "06:00"]}, QUIET),
    ({"quiet_hours": ["22:00", "24:00"]}, QUIET),
    ({"quiet_hours": "22:00-06:00"}, QUIET),
    ({"quiet_hours": ["06:00", "06:00"]}, "quiet_hours must start and end at different"),
])
def test_a_mistake_in_the_pace_is_one_line(fields: dict[str, Any], message: str) -> None:
    raw = demo_raw()
    raw["escalation"].update(fields)
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        parse_commune(raw)
    assert "\n" not in str(caught.value)


def test_serve_says_a_mistake_in_the_commune_file_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "commune.toml"
    config.write_text(DEMO_CONFIG.read_text(encoding="utf-8").replace(
        "top_reminders_per_day", "top_reminder_per_day"), encoding="utf-8")
    refused = serve_refused({"SAFECHILD_CONFIG": str(config),
                             "SAFECHILD_DB": str(tmp_path / "safechild.db")})
    assert refused.returncode == 2
    assert refused.stderr == (
        "safechild: escalation: unknown field(s) top_reminder_per_day; did you mean "
        "top_reminders_per_day?\n")
