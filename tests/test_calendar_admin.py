"""/calendar from chat, through the simulator's HTTP API: list, pause, resume, add (a flow),
and who may do what. The clock is moved through the simulator too."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from bot.app import App
from bot.domain.local_time import LOCAL_TZ
from bot.workers.calendar import CalendarWorker
from tests.support import START
from tests.support.database import change, rows
from tests.support.simulator import Simulator, choice_ids


async def minutes_until(sim: Simulator, when: datetime) -> float:
    return (when - sim.app.clock.now()).total_seconds() / 60


async def advance_to(sim: Simulator, when: datetime) -> None:
    await sim.advance(await minutes_until(sim, when))


def calendar_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["kind"] == "calendar"]


async def test_officers_read_the_calendar(sim: Simulator) -> None:
    officer = sim["officer"]
    await officer.text("/calendar")
    listing = await officer.last()
    assert listing["ids"][0] == "calendar.list.head"
    assert listing["ids"].count("calendar.list.line") == 11
    assert "calendar.list.admin_hint" not in listing["ids"]
    text = listing["text"]
    assert "Lịch nhắc việc của xã Vĩnh Thủy" in text
    # Rules in words, next dates as officers write them (today is 23/11/2026).
    assert "Nộp báo cáo năm về bảo vệ trẻ em\nHằng năm, ngày 10/12, lúc 08:00. " \
           "Nhắc: cán bộ xã.\nLần tới: 10/12/2026. Mã: report_year" in text
    assert "Hằng năm, ngày 15/08 âm lịch, lúc 09:00" in text
    assert "Lần tới: 15/09/2027. Mã: mid_autumn" in text
    assert "Thứ Hai đầu tiên của mỗi tháng, lúc 07:30. Nhắc: cộng tác viên, cán bộ xã." \
           "\nLần tới: 07/12/2026" in text
    assert "Hằng quý, ngày 25 của tháng thứ 3 trong quý" in text

    admin = sim["admin"]
    await admin.text("/calendar")
    assert (await admin.last())["ids"][-1] == "calendar.list.admin_hint"


async def test_who_may_do_what(sim: Simulator) -> None:
    for key in ("collaborator", "citizen", "police"):
        await sim[key].text("/calendar")
        assert (await sim[key].last())["ids"] == ["calendar.list_not_allowed"]
    officer = sim["officer"]
    for command in ("/calendar pause report_year", "/calendar resume report_year",
                    "/calendar add"):
        await officer.text(command)
        assert (await officer.last())["ids"] == ["calendar.change_not_allowed"]
    admin = sim["admin"]
    await admin.text("/calendar pause no_such_event")
    reply = await admin.last()
    assert reply["ids"] == ["calendar.unknown_key"] and "no_such_event" in reply["text"]
    for command in ("/calendar delete report_year", "/calendar pause", "/calendar pause a b"):
        await admin.text(command)
        assert (await admin.last())["ids"] == ["calendar.usage"]
    paused = [r.key for r in await rows(sim.app, "calendar_events", paused=True)]
    assert paused == []


async def test_pause_silences_an_event_and_resume_brings_it_back(sim: Simulator) -> None:
    admin, officer = sim["admin"], sim["officer"]
    await admin.text("/calendar pause report_year")
    reply = await admin.last()
    assert reply["ids"] == ["calendar.paused"]
    assert "Nộp báo cáo năm về bảo vệ trẻ em" in reply["text"]
    await admin.text("/calendar")
    assert "calendar.list.line_paused" in (await admin.last())["ids"]

    # 3 December 08:00: the annual report's 7-day reminder would be due; it stays silent.
    await advance_to(sim, datetime(2026, 12, 3, 8, 0, tzinfo=LOCAL_TZ))
    await advance_to(sim, datetime(2026, 12, 3, 12, 0, tzinfo=LOCAL_TZ))
    assert calendar_messages(await officer.inbox()) == []

    await admin.text("/calendar resume report_year")
    assert (await admin.last())["ids"] == ["calendar.resumed"]
    # Back on, the missed reminder goes out while it is still before the deadline, with
    # the days counted now.
    await sim.advance(1)
    got = calendar_messages(await officer.inbox())
    assert got[0]["ids"] == ["calendar.reminder.days", "calendar.reminder.numbers_follow"]
    assert "10/12/2026, còn 7 ngày nữa" in got[0]["text"]
    assert [m["media"]["kind"] for m in got if m["media"]] == ["document", "photo"]
    await advance_to(sim, datetime(2026, 12, 9, 8, 0, tzinfo=LOCAL_TZ))
    got = calendar_messages(await officer.inbox())
    assert got[0]["ids"][0] == "calendar.reminder.tomorrow"


async def add_event(sim: Simulator, rule: str, *, title: str = "Họp giao ban quý IV",
                    who: str = "who:both", days: str = "1,0", at: str = "10:00") -> None:
    admin = sim["admin"]
    await admin.text("/calendar add")
    assert (await admin.last())["ids"] == ["calendar.add.title"]
    await admin.text(title)
    assert (await admin.last())["ids"] == ["calendar.add.rule"]
    await admin.text(rule)
    who_prompt = await admin.last()
    assert who_prompt["ids"] == ["calendar.add.who"]
    assert choice_ids(who_prompt)[:4] == ["who:collaborator", "who:officer", "who:both",
                                          "who:staff"]
    await admin.tap(who)
    assert (await admin.last())["ids"] == ["calendar.add.days"]
    await admin.text(days)
    assert (await admin.last())["ids"] == ["calendar.add.at"]
    await admin.text(at)
    confirm = await admin.last()
    assert confirm["ids"] == ["calendar.add.confirm"]
    assert title in confirm["text"]


async def test_an_admin_adds_an_event_that_then_fires(sim: Simulator) -> None:
    admin = sim["admin"]
    await add_event(sim, "once 2026-11-30")
    confirm = (await admin.inbox(all_=True))[-1]
    assert "Một lần, ngày 30/11/2026" in confirm["text"]
    assert "Cán bộ và cộng tác viên" in confirm["text"]
    await admin.tap("calendar:save")
    added = await admin.last()
    assert added["ids"] == ["calendar.added"]
    assert "Lần nhắc đầu tiên: 29/11/2026 lúc 10:00" in added["text"]
    [row] = await rows(sim.app, "calendar_events", origin="chat")
    assert (row.title, row.rule, row.roles, row.days_before, row.at) == (
        "Họp giao ban quý IV", "once 2026-11-30", "officer,collaborator", "1,0", "10:00")
    assert row.key in added["text"]

    await admin.text("/calendar")
    assert "Họp giao ban quý IV\nMột lần, ngày 30/11/2026, lúc 10:00" in (
        await admin.last())["text"]

    await advance_to(sim, datetime(2026, 11, 29, 9, 59, tzinfo=LOCAL_TZ))
    for key in ("collaborator", "officer", "officer2"):
        assert calendar_messages(await sim[key].inbox()) == []
    await sim.advance(1)
    for key in ("collaborator", "officer", "officer2"):
        got = calendar_messages(await sim[key].inbox())
        assert [m["ids"] for m in got] == [["calendar.reminder.tomorrow"]]
        assert got[0]["text"] == "📅 Nhắc việc: Họp giao ban quý IV\nNgày mai, 30/11/2026."
    for key in ("police", "leader", "admin", "citizen"):
        assert calendar_messages(await sim[key].inbox()) == []
    await advance_to(sim, datetime(2026, 11, 30, 10, 0, tzinfo=LOCAL_TZ))
    got = calendar_messages(await sim["collaborator"].inbox())
    assert [m["ids"] for m in got] == [["calendar.reminder.today"]]


async def test_the_add_flow_asks_again_kindly(sim: Simulator) -> None:
    admin = sim["admin"]
    await admin.text("/calendar add")
    await admin.inbox()
    await admin.text("?")
    assert [m["ids"] for m in await admin.inbox()] == [["calendar.add.bad_title"],
                                                      ["calendar.add.title"]]
    await admin.text("Tập huấn phòng chống đuối nước")
    await admin.inbox()
    for bad in ("every monday", "yearly 02-30", "lunar 13-01", "monthly fifth monday"):
        await admin.text(bad)
        got = await admin.inbox()
        assert [m["ids"] for m in got] == [["calendar.add.bad_rule"], ["calendar.add.rule"]]
        # The prompt repeats the examples to copy.
        assert "monthly first monday" in got[1]["text"]
    await admin.text("  Monthly  First  Monday ")
    assert (await admin.last())["ids"] == ["calendar.add.who"]
    await admin.tap("who:collaborator")
    await admin.inbox()
    for bad in ("mai", "1,1", "400", "1,2,3,4,5,6"):
        await admin.text(bad)
        assert [m["ids"] for m in await admin.inbox()] == [["calendar.add.bad_days"],
                                                          ["calendar.add.days"]]
    await admin.tap("days:0")
    await admin.inbox()
    for bad in ("25:00", "sáng", "7"):
        await admin.text(bad)
        assert [m["ids"] for m in await admin.inbox()] == [["calendar.add.bad_at"],
                                                          ["calendar.add.at"]]
    await admin.tap("at:08:00")
    confirm = await admin.last()
    assert "Thứ Hai đầu tiên của mỗi tháng" in confirm["text"]
    assert "Lúc: 08:00" in confirm["text"]
    await admin.tap("back")
    assert (await admin.last())["ids"] == ["calendar.add.at"]
    await admin.text("7h30")
    await admin.tap("calendar:save")
    assert "Lần nhắc đầu tiên: 07/12/2026 lúc 07:30" in (await admin.last())["text"]


async def test_a_day_already_past_is_not_stored(sim: Simulator) -> None:
    await add_event(sim, "once 2026-01-05")
    await sim["admin"].tap("calendar:save")
    assert (await sim["admin"].last())["ids"] == ["calendar.add.in_past"]
    assert await chat_events(sim.app) == []


async def test_saving_checks_the_role_again(sim: Simulator) -> None:
    await add_event(sim, "yearly 12-24")
    # The admin lost the role while the flow was open.
    assert await change(sim.app, "people", {"role": "officer"}, key="admin") == 1
    await sim["admin"].tap("calendar:save")
    assert (await sim["admin"].last())["ids"] == ["calendar.change_not_allowed"]
    assert await chat_events(sim.app) == []


async def test_cancel_leaves_the_calendar_unchanged(sim: Simulator) -> None:
    await add_event(sim, "yearly 12-24")
    await sim["admin"].tap("cancel")
    assert "flow.cancelled" in (await sim["admin"].last())["ids"]
    assert await chat_events(sim.app) == []
    assert sim.app.clock.now() == START


async def test_a_change_wakes_the_running_scheduler(sim: Simulator) -> None:
    await add_event(sim, "once 2026-11-23", who="who:collaborator", days="0", at="08:00")
    await sim.app.start()
    worker = sim.app.scheduler.worker("calendar")
    assert isinstance(worker, CalendarWorker)
    deadline = asyncio.get_running_loop().time() + 10
    while worker.looks < 1:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)
    # Nothing is due for days, so the worker sleeps for its 10-minute re-check; the new
    # event's reminder for today (08:00, already past but still useful) must not wait.
    # (The delivery worker now runs too, so replies are awaited rather than read at once.)
    await sim["admin"].tap("calendar:save")
    collaborator = sim["collaborator"]
    got: list[dict[str, Any]] = []
    while not got:
        assert asyncio.get_running_loop().time() < deadline, "the reminder did not come"
        await asyncio.sleep(0.02)
        got = calendar_messages(await collaborator.inbox())
    assert got[0]["text"] == "📅 Nhắc việc: Họp giao ban quý IV\nHôm nay, 23/11/2026."


async def chat_events(app: App) -> list[str]:
    return [r.key for r in await rows(app, "calendar_events", origin="chat")]
