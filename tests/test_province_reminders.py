"""A province's own reminder calendar (issue 14 item 6: "province report reminders carry
them"): two communes of Thanh Hóa on one process, the simulator's clock moved to the annual
report's deadline. The province's people get the province's figures (each commune's beside
them: table, workbook, chart), each commune's officers their own commune's only; two
processes send each reminder once; the province file's `[calendar]`; /calendar for the
province's people."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bot import i18n
from bot.app import App, Setup, build_app
from bot.clock import FakeClock
from bot.config import ConfigError, load_province
from bot.domain.local_time import LOCAL_TZ
from bot.domain.province import ProvinceConfig
from bot.handlers.simulator import SimulatorPlugin
from bot.services.period_reports import XLSX_MIME
from bot.workers.calendar import CalendarWorker
from bot.workers.delivery import DeliveryWorker
from storage import people
from tests.support.database import rows
from tests.support.province import write_province
from tests.support.reports import add_case_rows, check_png, local, minutes, workbook_values
from tests.support.simulator import Simulator, choice_ids, simulator
from tests.support.workers import worker_of

# The annual report's reminder a week ahead (bot/default_calendar.toml: 10 December, 7 days).
WEEK_BEFORE = datetime(2026, 12, 3, 8, 0, tzinfo=LOCAL_TZ)
REMINDER = "report_year:2026-12-10:7"
# The cases of 2026 in each commune (by index in the province): (form, sex), and the ones
# outside the year that no report of 2026 counts.
CASES: dict[int, list[tuple[str, str]]] = {
    0: [("violence", "girl"), ("violence", "boy"), ("injury", "girl")],
    1: [("sexual_abuse", "girl"), ("sexual_abuse", "girl"), ("abandonment", "boy"),
        ("other", "unknown"), ("other", "unknown")],
}
PROVINCE_PEOPLE = ("province.cpu", "province.swc", "province.province_admin")
COMMUNE_STAFF = ("officer", "officer2", "officer3", "police", "leader", "chairman", "admin")


@pytest.fixture
def province(tmp_path: Path) -> ProvinceConfig:
    return load_province(write_province(tmp_path, communes=2))


@pytest.fixture
async def two(db_url: str, clock: FakeClock,
              province: ProvinceConfig) -> AsyncIterator[Simulator]:
    async with simulator(db_url, clock, province) as sim:
        yield sim


def phone(province: ProvinceConfig, n: int, key: str) -> str:
    return f"{province.communes[n].key}.{key}"


async def add_cases(app: App, province: ProvinceConfig) -> None:
    """CASES, in October 2026, and one case of each commune in 2025."""
    found: list[dict[str, Any]] = []
    for n, commune in enumerate(province.communes):
        directory = next(d for d in app.communes if d.config.key == commune.key)
        village = directory.village_ids["v1"]
        specs = [(local(2026, 10, 1 + k, 9), form, sex) for k, (form, sex) in enumerate(CASES[n])]
        specs.append((local(2025, 12, 31, 23, 59), "violence", "boy"))
        for k, (created, form, sex) in enumerate(specs):
            found.append(dict(
                commune_id=directory.commune_id, code=f"{directory.config.code_prefix}-{k}",
                types=form, confirmed_form=None, sex=sex, age_band="6-10",
                village_id=village, urgency="URGENT", status="acknowledged", outcome=None,
                created_at=created, acknowledged_at=created + minutes(30), assessed_at=None,
                escalation_level=1, description="không bao giờ vào thống kê"))
    await add_case_rows(app, found)


async def advance_to(sim: Simulator, when: datetime) -> None:
    await sim.advance((when - sim.app.clock.now()).total_seconds() / 60)


def calendar_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["kind"] == "calendar"]


async def download(sim: Simulator, url: str) -> tuple[int, str, bytes]:
    async with sim.http.get(f"{sim.base}{url}") as r:
        return r.status, r.headers.get("Content-Type", ""), await r.read()


def t(msgid: str) -> str:
    return i18n.t(msgid, "vi")


async def test_the_provinces_people_get_the_province_figures_at_a_report_deadline(
        two: Simulator, province: ProvinceConfig) -> None:
    sim = two
    await add_cases(sim.app, province)
    await sim.advance(1)
    for key in PROVINCE_PEOPLE:
        assert calendar_messages(await sim[key].inbox()) == [], key
    await advance_to(sim, WEEK_BEFORE)

    names = {n: province.communes[n].name for n in CASES}
    by_name = {names[n]: len(CASES[n]) for n in CASES}
    for key in ("province.cpu", "province.swc"):
        reminder, table, communes, workbook, chart = calendar_messages(await sim[key].inbox())
        assert reminder["ids"] == ["calendar.reminder.days", "calendar.reminder.numbers_follow"]
        assert "Nộp báo cáo năm về bảo vệ trẻ em" in reminder["text"]
        assert "10/12/2026, còn 7 ngày nữa" in reminder["text"]
        # The province's table for the year so far: both communes' cases, not the 2025 ones.
        assert table["ids"][0] == "stats.chat.province_title"
        assert province.name in table["text"] and "2026" in table["text"]
        assert "Tổng số vụ: 8" in table["text"]
        # Each commune's own count, a line each (Hạc Thành before Hàm Rồng).
        assert communes["ids"] == ["stats.chat.communes"]
        assert communes["text"].splitlines()[1:] == [
            f"{name}: {by_name[name]}" for name in ("Hạc Thành", "Hàm Rồng")]
        assert workbook["ids"] == ["stats.file.province_workbook"]
        assert workbook["media"]["name"] == "safechild-thanh-hoa-2026.xlsx"
        assert chart["ids"] == ["stats.file.province_chart"]
    # The workbook: a row per commune with its exact numbers, and the province's sums.
    status, mime, content = await download(sim, workbook["media"]["url"])
    assert status == 200 and mime == XLSX_MIME
    sheets = workbook_values(content)
    summary = {row[0]: row[1] for row in sheets[t("stats.sheet.summary")] if row and row[0]}
    assert summary[t("stats.summary.total")] == 8
    assert summary[t("stats.summary.acknowledged")] == 8
    header, *lines, total = sheets[t("stats.sheet.form")]
    column = {label: i for i, label in enumerate(header)}
    expected_forms = {n: {f: sum(1 for form, _ in CASES[n] if form == f)
                          for f in ("violence", "injury", "sexual_abuse", "abandonment",
                                    "other")} for n in CASES}
    for line in lines:
        n = next(n for n, name in names.items() if name == line[0])
        for form, count in expected_forms[n].items():
            assert line[column[t(f"case_type.{form}")]] == count, (line[0], form)
        assert line[-1] == len(CASES[n])
    assert [line[0] for line in lines] == ["Hạc Thành", "Hàm Rồng"]
    assert total[0] == t("stats.summary.total") and total[-1] == 8
    assert total[column[t("case_type.violence")]] == 2
    assert total[column[t("case_type.sexual_abuse")]] == 2
    header, *lines, total = sheets[t("stats.sheet.sex")]
    column = {label: i for i, label in enumerate(header)}
    assert total[column[t("sex.girl")]] == 4 and total[column[t("sex.unknown")]] == 2
    status, mime, content = await download(sim, chart["media"]["url"])
    assert status == 200 and mime == "image/png"
    check_png(content)
    # The administrator is not among whom a report deadline reminds.
    assert calendar_messages(await sim["province.province_admin"].inbox()) == []

    # Each commune's officers get their own commune's reminder and numbers, never the
    # province's; its other staff (the report deadline reminds officers) nothing.
    for n, commune in enumerate(province.communes):
        for key in ("officer", "officer2", "officer3"):
            reminder, table, workbook, chart = calendar_messages(
                await sim[phone(province, n, key)].inbox())
            assert reminder["ids"] == ["calendar.reminder.days",
                                       "calendar.reminder.numbers_follow"]
            assert table["ids"][0] == "stats.chat.title"
            assert commune.name in table["text"]
            assert f"Tổng số vụ: {by_name[commune.name]}" in table["text"]
            assert workbook["media"]["name"] == f"safechild-{commune.key}-2026.xlsx"
            assert chart["ids"] == ["stats.file.chart"]
        for key in ("police", "leader", "chairman", "admin"):
            assert calendar_messages(await sim[phone(province, n, key)].inbox()) == [], key

    # Recorded once under the province's own row; the clock moving on repeats nothing.
    async with sim.app.database.read() as tx:
        cpu = await people.person_by_key(tx, sim.app.communes.province_id or 0, "cpu")
    assert cpu is not None
    recorded = await rows(sim.app, "calendar_reminders",
                          commune_id=sim.app.communes.province_id)
    assert [(r.key, r.status, r.recipients) for r in recorded] == [(REMINDER, "sent", 2)]
    await sim.advance(60)
    assert calendar_messages(await sim["province.cpu"].inbox()) == []


async def test_two_processes_send_the_provinces_reminder_once(
        db_url: str, province: ProvinceConfig) -> None:
    clock = FakeClock(WEEK_BEFORE)
    one = await build_app(Setup(db_url, province, clock), [SimulatorPlugin()])
    two = await build_app(Setup(db_url, province, clock), [SimulatorPlugin()])
    try:
        await add_cases(one, province)
        looks = [worker_of(app, CalendarWorker).run_due(clock.now()) for app in (one, two)]
        # Each commune's reminder and the province's: three, between the two processes.
        assert sum(await asyncio.gather(*looks)) == 3
        province_id = one.communes.province_id
        assert province_id is not None
        recorded = await rows(one, "calendar_reminders", commune_id=province_id)
        assert [(r.key, r.status) for r in recorded] == [(REMINDER, "sent")]
        async with one.database.read() as tx:
            wanted = {p.id: p.key for p in await people.configured_people(tx, province_id)}
        queued = [r for r in await rows(one, "outbox", kind="calendar")
                  if r.person_id in wanted]
        # The reminder, the table, the communes' list, the workbook, the chart: once each.
        keys = sorted(r.dedupe_key for r in queued)
        assert len(keys) == len(set(keys)) == 10
        assert {wanted[r.person_id] for r in queued} == {"cpu", "swc"}
        # A third process started later (a restart) sends nothing again.
        three = await build_app(Setup(db_url, province, clock), [SimulatorPlugin()])
        try:
            assert await worker_of(three, CalendarWorker).run_due(clock.now()) == 0
        finally:
            await three.close()
        while await worker_of(one, DeliveryWorker).deliver_due():
            pass
        shown = await rows(one, "sim_messages", address="province.cpu", direction="out")
        assert len(shown) == 5
    finally:
        await one.close()
        await two.close()


def with_calendar(tmp_path: Path, calendar: str) -> Path:
    path = write_province(tmp_path, communes=2)
    path.write_text(path.read_text(encoding="utf-8") + "\n" + calendar, encoding="utf-8")
    return path


def test_a_provinces_default_calendar_is_its_report_deadlines_and_the_action_month(
        province: ProvinceConfig) -> None:
    events = {e.key: e for e in province.calendar}
    assert list(events) == ["report_q1", "report_h1", "report_9m", "report_year",
                            "action_month_launch", "action_month_report"]
    for event in events.values():
        assert event.roles == ("officer", "leader"), event.key
    # The communes' dates and leads, and the periods their figures cover.
    assert str(events["report_year"].rule) == "yearly 12-10"
    assert events["report_year"].days_before == (7, 1, 0)
    assert [events[k].covers for k in ("report_q1", "report_h1", "report_9m", "report_year",
                                       "action_month_report")] == ["Q1", "H1", "9M", "Y", "M"]
    assert events["action_month_launch"].covers is None
    assert province.calendar_titles == {}
    # Each commune keeps the commune's defaults.
    assert len(province.communes[0].calendar) == 11


def test_a_province_file_moves_adds_brings_in_and_drops_events(tmp_path: Path) -> None:
    moved = load_province(with_calendar(tmp_path / "a", """
[calendar]
[[calendar.event]]
key = "report_year"
rule = "yearly 12-15"
[[calendar.event]]
key = "action_month_report"
paused = true
[[calendar.event]]
key = "mid_autumn"
roles = ["leader"]
[[calendar.event]]
key = "province_meeting"
title = "Giao ban bảo vệ trẻ em cấp tỉnh"
rule = "quarterly 3/05"
roles = ["officer", "leader", "admin"]
"""))
    events = {e.key: e for e in moved.calendar}
    assert str(events["report_year"].rule) == "yearly 12-15"
    assert events["report_year"].roles == ("officer", "leader")  # the province's, kept
    assert events["action_month_report"].paused
    assert events["mid_autumn"].roles == ("leader",)
    assert events["mid_autumn"].days_before == (14, 3)  # the commune default's
    assert moved.calendar_titles == {"province_meeting": "Giao ban bảo vệ trẻ em cấp tỉnh"}
    assert len(events) == 8

    picked = load_province(with_calendar(tmp_path / "b", """
[calendar]
defaults = false
[[calendar.event]]
key = "report_h1"
"""))
    assert [(e.key, e.roles) for e in picked.calendar] == [("report_h1", ("officer", "leader"))]


@pytest.mark.parametrize(("calendar", "message"), [
    # Brought in from the communes' defaults, it would remind collaborators.
    ('[[calendar.event]]\nkey = "school_opening"',
     "calendar event 'school_opening': a province has no collaborators"),
    ('[[calendar.event]]\nkey = "report_year"\nroles = ["collaborator"]',
     "calendar event 'report_year': a province has no collaborators"),
    ('[[calendar.event]]\nkey = "own"\nrule = "monthly 05"\nroles = ["leader"]',
     "calendar event 'own': a new event needs a 'title'"),
    ('[[calendar.event]]\nkey = "report_year"\nrule = "yearly 13-01"',
     "month 13 is not 1..12"),
    ('[[calendar.event]]\nkey = "report_year"\nday_before = [3]', "day_before"),
])
def test_a_province_calendars_mistakes_name_the_file_and_event(
        tmp_path: Path, calendar: str, message: str) -> None:
    path = with_calendar(tmp_path, f"[calendar]\n{calendar}\n")
    with pytest.raises(ConfigError) as caught:
        load_province(path)
    assert message in str(caught.value)
    assert str(caught.value).startswith(str(path))


async def test_the_provinces_admin_reads_and_pauses_the_provinces_calendar(
        two: Simulator, province: ProvinceConfig) -> None:
    sim = two
    admin = sim["province.province_admin"]
    await admin.text("/calendar")
    listing = await admin.last()
    assert listing["ids"][0] == "calendar.list.province_head"
    assert listing["ids"].count("calendar.list.line") == 6
    assert listing["ids"][-1] == "calendar.list.admin_hint"
    assert f"Lịch nhắc việc cấp tỉnh ({province.name})" in listing["text"]
    assert "Nộp báo cáo năm về bảo vệ trẻ em\nHằng năm, ngày 10/12, lúc 08:00. " \
           "Nhắc: cán bộ tỉnh, lãnh đạo tỉnh.\nLần tới: 10/12/2026. Mã: report_year" \
        in listing["text"]
    assert "Trung thu" not in listing["text"]
    cpu = sim["province.cpu"]
    await cpu.text("/calendar")
    mine = await cpu.last()
    assert mine["ids"][0] == "calendar.list.province_head"
    assert "calendar.list.admin_hint" not in mine["ids"]
    await cpu.text("/calendar pause report_year")
    assert (await cpu.last())["ids"] == ["calendar.change_not_allowed"]

    # Paused at the province, the communes' own annual report still reminds them.
    await admin.text("/calendar pause report_year")
    assert (await admin.last())["ids"] == ["calendar.paused"]
    await advance_to(sim, WEEK_BEFORE)
    assert calendar_messages(await cpu.inbox()) == []
    got = calendar_messages(await sim[phone(province, 0, "officer")].inbox())
    assert got and got[0]["ids"][0] == "calendar.reminder.days"
    await admin.text("/calendar resume report_year")
    assert (await admin.last())["ids"] == ["calendar.resumed"]
    await sim.advance(1)
    got = calendar_messages(await cpu.inbox())
    assert [m["ids"][0] for m in got] == [
        "calendar.reminder.days", "stats.chat.province_title", "stats.file.province_workbook",
        "stats.file.province_chart"]  # no case yet: no list of communes


async def test_the_provinces_admin_adds_an_event_for_the_provinces_people(
        two: Simulator, province: ProvinceConfig) -> None:
    sim = two
    admin = sim["province.province_admin"]
    await admin.text("/calendar add")
    await admin.text("Giao ban quý với các xã")
    await admin.text("once 2026-11-30")
    who = await admin.last()
    assert who["ids"] == ["calendar.add.who"]
    # No collaborators at the province.
    assert choice_ids(who)[:2] == ["who:province", "who:staff"]
    assert "who:collaborator" not in choice_ids(who) and "who:both" not in choice_ids(who)
    await admin.tap("who:province")
    await admin.text("0")
    await admin.text("10:00")
    confirm = await admin.last()
    assert confirm["ids"] == ["calendar.add.confirm"]
    assert "Cán bộ, lãnh đạo tỉnh" in confirm["text"]
    await admin.tap("calendar:save")
    assert (await admin.last())["ids"] == ["calendar.added"]
    province_id = sim.app.communes.province_id
    [row] = await rows(sim.app, "calendar_events", origin="chat")
    assert (row.commune_id, row.roles) == (province_id, "officer,leader")

    await advance_to(sim, datetime(2026, 11, 30, 10, 0, tzinfo=LOCAL_TZ))
    for key in ("province.cpu", "province.swc"):
        got = calendar_messages(await sim[key].inbox())
        assert [m["ids"] for m in got] == [["calendar.reminder.today"]], key
        assert "Giao ban quý với các xã" in got[0]["text"]
    assert calendar_messages(await sim["province.province_admin"].inbox()) == []
    for n in range(2):
        for key in COMMUNE_STAFF:
            assert calendar_messages(await sim[phone(province, n, key)].inbox()) == []
