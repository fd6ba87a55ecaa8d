"""Calendar reminders on a real database: a simulated year with a moved clock, restarts,
report deadlines carrying their numbers, the calendar worker, and the calendar config."""

from __future__ import annotations

import asyncio
import calendar as stdlib_calendar
import dataclasses
import tomllib
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import holidays
import pytest

from bot.app import App, Setup, build_app
from bot.clock import Clock, FakeClock
from bot.config import DEMO_CONFIG, ConfigError, load_commune, parse_commune
from bot.domain.commune import CommuneConfig, Retention
from bot.domain.commune_calendar import occurrences
from bot.domain.local_time import LOCAL_TZ
from bot.handlers.simulator import SimulatorPlugin
from bot.services.calendar_reminders import CalendarReminders
from bot.workers.calendar import CalendarWorker
from bot.workers.delivery import DeliveryWorker
from storage import calendar, outbox, people, simulator
from tests.support.database import change, count, read, rows
from tests.support.waiting import eventually
from tests.support.workers import keep_sent_words, worker_of

YEAR_START = datetime(2026, 1, 1, 0, 0, tzinfo=LOCAL_TZ)
YEAR_END = datetime(2027, 1, 1, 0, 0, tzinfo=LOCAL_TZ)
OFFICERS = frozenset({"officer", "officer2"})
COLLABORATORS = frozenset({"collaborator"})
BOTH = OFFICERS | COLLABORATORS


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(YEAR_START)


def first_mondays(year: int) -> list[date]:
    """From the standard library, not from the calendar rules under test."""
    found = []
    for month in range(1, 13):
        week = stdlib_calendar.monthcalendar(year, month)
        day = week[0][0] or week[1][0]
        found.append(date(year, month, day))
    return found


def expected_2026() -> dict[str, tuple[datetime, frozenset[str], str | None]]:
    """Every default reminder of 2026, written out by hand from default_calendar.toml:
    reminder key -> (local due time, who gets it, period of the numbers it carries)."""
    table: dict[str, tuple[datetime, frozenset[str], str | None]] = {}

    def add(event: str, day: date, before: int, hour: int, minute: int, who: frozenset[str],
            period: str | None = None) -> None:
        due = datetime(day.year, day.month, day.day, hour, minute, tzinfo=LOCAL_TZ) \
            - timedelta(days=before)
        table[f"{event}:{day.isoformat()}:{before}"] = (due, who, period)

    add("action_month_prepare", date(2026, 5, 5), 0, 8, 0, OFFICERS)
    for before in (7, 0):
        add("action_month_launch", date(2026, 6, 1), before, 8, 0, BOTH)
    add("action_month_report", date(2026, 7, 1), 0, 8, 0, OFFICERS, "2026-06")
    # Tết Trung thu 2026 is 25 September (published calendars; checked below as well).
    for before in (14, 3):
        add("mid_autumn", date(2026, 9, 25), before, 9, 0, BOTH)
    for before in (7, 1):
        add("school_opening", date(2026, 9, 5), before, 8, 0, BOTH)
    for key, day, period in (("report_q1", date(2026, 3, 20), "2026-Q1"),
                             ("report_h1", date(2026, 6, 15), "2026-H1"),
                             ("report_9m", date(2026, 9, 15), "2026-9M"),
                             ("report_year", date(2026, 12, 10), "2026")):
        for before in (7, 1, 0):
            add(key, day, before, 8, 0, OFFICERS, period)
    for monday in first_mondays(2026):
        for before in (1, 0):
            add("collaborators_meeting", monday, before, 7, 30, BOTH)
    for month in (3, 6, 9, 12):
        for before in (7, 0):
            add("special_circumstances_list", date(2026, month, 25), before, 8, 0,
                COLLABORATORS)
    return table


def rem(app: App) -> CalendarReminders:
    assert app.reminders is not None
    return app.reminders


@dataclass
class Sent:
    """One reminder as the outbox holds it."""

    key: str
    people: dict[str, datetime]  # person key -> when it was queued
    texts: dict[str, list[dict[str, Any]]]  # person key -> the reminder's texts
    files: dict[str, list[str]]  # person key -> names of the files that followed it


async def sent_reminders(app: App) -> dict[str, Sent]:
    """Calendar outbox rows grouped by reminder key (read back from their dedupe keys)."""
    found: dict[str, Sent] = {}
    keys = {person.id: person.key for person in await rows(app, "people")}
    for row in await rows(app, "outbox", kind="calendar"):
        person_key = keys[row.person_id]
        assert row.dedupe_key is not None
        _, _, event, day, before, _pid, *extra = row.dedupe_key.split(":")
        key = f"{event}:{day}:{before}"
        sent = found.setdefault(key, Sent(key, {}, {}, {}))
        reply = row.payload["reply"]
        if extra:
            media = reply.get("media")
            if media:
                sent.files.setdefault(person_key, []).append(media["name"])
            continue
        assert person_key not in sent.people, f"{key} queued twice for {person_key}"
        sent.people[person_key] = row.created_at
        sent.texts[person_key] = reply["texts"]
    return found


async def deliver(app: App) -> None:
    while await worker_of(app, DeliveryWorker).deliver_due():
        pass


async def drive(app: App, clock: FakeClock, until: datetime,
                offsets: tuple[timedelta, ...] = (timedelta(0), timedelta(minutes=1),
                                                  timedelta(minutes=25))) -> int:
    """Move the clock to each next due time (exactly, or a little past it) and send; a
    minute before each due time nothing may go out. Returns the number of steps."""
    steps = 0
    while True:
        upcoming = await rem(app).next_due(clock.now())
        if upcoming is None or upcoming >= until:
            break
        clock.set(upcoming - timedelta(minutes=1))
        assert await rem(app).send_due(clock.now()) == 0
        clock.set(upcoming + offsets[steps % len(offsets)])
        assert await rem(app).send_due(clock.now()) >= 1
        await deliver(app)
        steps += 1
    clock.set(until)
    assert await rem(app).send_due(clock.now()) == 0
    return steps


def check_against_table(sent: dict[str, Sent], expected: dict[str, Any]) -> None:
    for key, (due, who, period) in expected.items():
        got = sent[key]
        assert set(got.people) == who, key
        days_before = int(key.rsplit(":", 1)[1])
        for person, queued in got.people.items():
            local = queued.astimezone(LOCAL_TZ)
            # On the right local date and hour (the drive arrives up to 25 minutes late).
            assert (local.date(), local.hour) == (due.date(), due.hour), (key, local)
            first = got.texts[person][0]
            if days_before == 0:
                assert first["id"] == "calendar.reminder.today"
            elif days_before == 1:
                assert first["id"] == "calendar.reminder.tomorrow"
            else:
                assert first["id"] == "calendar.reminder.days"
                assert first["params"]["days"] == days_before
            assert first["params"]["date"] == date.fromisoformat(
                key.split(":")[1]).strftime("%d/%m/%Y")
            assert first["params"]["title"]["$text"]["id"] == f"calendar.event.{key.split(':')[0]}"
        if period is None:
            assert got.files == {}, key
        else:
            # The numbers go to the officers only, with the workbook of the right period.
            assert set(got.files) == who & OFFICERS, key
            for names in got.files.values():
                assert f"safechild-vinh-thuy-{period}.xlsx" in names, (key, names)


async def test_a_simulated_year_sends_every_default_reminder_once(app: App,
                                                                  clock: FakeClock) -> None:
    expected = expected_2026()
    assert len(expected) == 52
    steps = await drive(app, clock, YEAR_END)
    sent = await sent_reminders(app)
    assert set(sent) == set(expected), set(sent) ^ set(expected)
    check_against_table(sent, expected)
    assert steps <= len(expected)
    recorded = await read(app, calendar.reminders_of, app.directory.commune_id)
    statuses = Counter(r.status for r in recorded)
    unsent = await count(app, "outbox") - await count(app, "outbox", status="sent")
    # Delivered for real: the simulator's officer phone shows every reminder it got.
    shown = await count(app, "sim_messages", address="officer", direction="out")
    assert statuses == {"sent": 52}
    assert unsent == 0
    officer_rows = sum(1 for got in sent.values() if "officer" in got.people) + sum(
        len(got.files.get("officer", ())) + 1 for got in sent.values() if got.files)
    # Each report reminder is followed by its table, workbook and chart.
    assert shown == officer_rows


async def test_mid_autumn_lands_on_the_published_dates(app: App) -> None:
    async with app.database.read() as s:
        events = {e.event.key: e.event for e in
                  await rem(app).stored_events(s)}
    days = occurrences(events["mid_autumn"].rule, date(2025, 1, 1), date(2027, 12, 31))
    # Published Vietnamese calendars (lịch vạn niên) ...
    assert days == [date(2025, 10, 6), date(2026, 9, 25), date(2027, 9, 15)]
    # ... and a second library: China keeps the same lunar day, the same dates these years.
    for day in days:
        china = holidays.country_holidays("CN", years=day.year, language="en_US")
        assert [d for d, name in china.items() if "Mid-Autumn" in name] == [day]


async def new_engine(db_url: str, clock: Clock, config: CommuneConfig | None = None
                     ) -> App:
    """The year's outbox is what these tests read back: kept past the 30 days pruning
    keeps delivered messages (bot/workers/pruning.py), which a started process would
    otherwise delete months into the year."""
    config = dataclasses.replace(config or load_commune(DEMO_CONFIG),
                                 retention=Retention(3650, 3650))
    # The reminders' words are read back too, which the retention job empties once sent.
    return keep_sent_words(await build_app(Setup(db_url, config, clock), [SimulatorPlugin()]))


async def test_restart_in_the_middle_of_the_year(db_url: str, clock: FakeClock) -> None:
    expected = expected_2026()
    first = await new_engine(db_url, clock)
    # Up to just after the school-opening reminder a week ahead (29 August 08:00).
    await drive(first, clock, datetime(2026, 8, 29, 8, 30, tzinfo=LOCAL_TZ))
    before = await sent_reminders(first)
    assert "school_opening:2026-09-05:7" in before
    await first.close()

    # A restart at once: the start-up look repeats nothing it sent a minute ago.
    second = await new_engine(db_url, clock)
    await second.start()
    worker = worker_of(second, CalendarWorker)
    await eventually(lambda: worker.looks >= 1)
    assert await sent_reminders(second) == before
    await second.close()

    # Down from 29 August 08:30 to 14 September 12:00. Missed meanwhile: school opening's
    # 1-day reminder (its day, 5 September, passed), the collaborators' meeting of
    # 7 September and its eve (passed), the 9-month report's 7-day and 1-day reminders
    # (the deadline, 15 September 08:00, is still ahead) and Mid-Autumn's 14-day reminder
    # (festival 25 September, ahead).
    clock.set(datetime(2026, 9, 14, 12, 0, tzinfo=LOCAL_TZ))
    third = await new_engine(db_url, clock)
    await third.start()
    worker = worker_of(third, CalendarWorker)
    await eventually(lambda: worker.looks >= 1)
    await third.scheduler.stop()  # the rest of the year is driven by hand, below
    at_start = await sent_reminders(third)
    new = {k: v for k, v in at_start.items() if k not in before}
    assert set(new) == {"report_9m:2026-09-15:1", "mid_autumn:2026-09-25:14"}
    for got in new.values():
        assert {t.astimezone(LOCAL_TZ) for t in got.people.values()} == {clock.now()}
    # Computed at send time: the festival is 11 days away now, not 14.
    assert new["mid_autumn:2026-09-25:14"].texts["collaborator"][0]["params"]["days"] == 11
    assert new["report_9m:2026-09-15:1"].files  # the numbers came along
    statuses = {r.key: r.status for r in
                await read(third, calendar.reminders_of, third.directory.commune_id)}
    assert statuses["report_9m:2026-09-15:7"] == "superseded"
    for lost in ("school_opening:2026-09-05:1", "collaborators_meeting:2026-09-07:1",
                 "collaborators_meeting:2026-09-07:0"):
        assert lost not in statuses

    await drive(third, clock, YEAR_END)
    sent = await sent_reminders(third)
    lost = {"school_opening:2026-09-05:1", "collaborators_meeting:2026-09-07:1",
            "collaborators_meeting:2026-09-07:0", "report_9m:2026-09-15:7"}
    assert set(sent) == set(expected) - lost
    late = {"report_9m:2026-09-15:1", "mid_autumn:2026-09-25:14"}
    check_against_table(sent, {k: v for k, v in expected.items() if k not in lost | late})
    await third.close()


async def test_the_scheduler_sends_when_the_clock_moves(db_url: str) -> None:
    clock = FakeClock(datetime(2026, 3, 12, 12, 0, tzinfo=LOCAL_TZ))
    app = await new_engine(db_url, clock)
    try:
        await app.start()
        worker = worker_of(app, CalendarWorker)
        await eventually(lambda: worker.looks >= 1)
        assert await officer_messages(app) == []
        # The Q1 report's 7-day reminder is due 13 March 08:00; nobody calls send_due.
        clock.set(datetime(2026, 3, 13, 8, 0, tzinfo=LOCAL_TZ))

        async def arrived() -> bool:
            return len(await officer_messages(app)) >= 4

        await eventually(arrived)
        shown = await officer_messages(app)
        assert shown[0]["ids"][0] == "calendar.reminder.days"
        assert [m["media"]["kind"] for m in shown[1:] if m["media"]] == ["document", "photo"]
    finally:
        await app.close()


class ShiftedClock:
    """Real time, shifted: the scheduler must wake by itself when a reminder falls due."""

    def __init__(self, shift: timedelta) -> None:
        self.shift = shift

    def now(self) -> datetime:
        return datetime.now(UTC) + self.shift


async def test_the_scheduler_wakes_at_the_due_time_by_itself(db_url: str) -> None:
    due = datetime(2026, 3, 13, 8, 0, tzinfo=LOCAL_TZ)
    clock = ShiftedClock(due - datetime.now(UTC) - timedelta(seconds=1))
    app = await new_engine(db_url, clock)
    try:
        await app.start()

        async def arrived() -> bool:
            return bool(await officer_messages(app))

        assert not await arrived()
        await eventually(arrived)
        assert clock.now() >= due
    finally:
        await app.close()


async def officer_messages(app: App) -> list[dict[str, Any]]:
    return [r.payload for r in await rows(app, "sim_messages", address="officer",
                                          direction="out")]


def demo_raw() -> dict[str, Any]:
    with DEMO_CONFIG.open("rb") as fh:
        return tomllib.load(fh)


async def test_report_numbers_go_to_officers_only(db_url: str) -> None:
    # This commune also reminds its collaborators of the 6-month report.
    raw = demo_raw()
    raw["calendar"] = {"event": [{"key": "report_h1", "roles": ["officer", "collaborator"]}]}
    clock = FakeClock(datetime(2026, 6, 15, 8, 0, tzinfo=LOCAL_TZ))
    app = await new_engine(db_url, clock, parse_commune(raw))
    try:
        assert await rem(app).send_due(clock.now()) == 1
        await deliver(app)
        sent = await sent_reminders(app)
        got = sent["report_h1:2026-06-15:0"]
        assert set(got.people) == BOTH
        assert set(got.files) == OFFICERS
        for person in OFFICERS:
            assert [t["id"] for t in got.texts[person]] == [
                "calendar.reminder.today", "calendar.reminder.numbers_follow"]
            assert got.files[person] == ["safechild-vinh-thuy-2026-H1.xlsx",
                                         "safechild-vinh-thuy-2026-H1.png"]
        assert [t["id"] for t in got.texts["collaborator"]] == ["calendar.reminder.today"]
        [row] = await rows(app, "calendar_reminders")
        assert (row.status, row.recipients) == ("sent", 3)
    finally:
        await app.close()


async def test_two_processes_send_a_reminder_once(db_url: str) -> None:
    clock = FakeClock(datetime(2026, 6, 1, 8, 0, tzinfo=LOCAL_TZ))
    one = await new_engine(db_url, clock)
    two = await new_engine(db_url, clock)
    try:
        results = await asyncio.gather(rem(one).send_due(clock.now()),
                                       rem(two).send_due(clock.now()))
        # 1 June 2026 08:00: the Action Month launch (and the 07:30 meeting, still useful).
        assert sum(results) == 2
        sent = await sent_reminders(one)
        assert set(sent) == {"action_month_launch:2026-06-01:0",
                             "collaborators_meeting:2026-06-01:0"}
        assert all(set(s.people) == BOTH for s in sent.values())
    finally:
        await one.close()
        await two.close()


async def test_nothing_is_sent_to_citizens_the_group_or_the_unreachable(db_url: str) -> None:
    raw = demo_raw()
    raw["commune"]["telegram_alert_group"] = -100123
    raw["calendar"] = {"defaults": False, "event": [{
        "key": "everyone", "title": "Họp toàn xã", "rule": "yearly 06-01",
        "roles": ["collaborator", "officer", "police", "leader", "admin"]}]}
    clock = FakeClock(datetime(2026, 6, 1, 8, 0, tzinfo=LOCAL_TZ))
    app = await new_engine(db_url, clock, parse_commune(raw))
    try:
        async with app.database.transaction() as s:
            officer2 = await people.person_by_key(s, app.directory.commune_id, "officer2")
            assert officer2 is not None
            for ident in await people.identities_of(s, officer2.id):
                await people.mark_unreachable(s, ident.channel, ident.external_id,
                                              clock.now())
        assert await rem(app).send_due(clock.now()) == 1
        sent = await sent_reminders(app)
        got = sent["everyone:2026-06-01:0"]
        assert set(got.people) == {"collaborator", "officer", "police", "police_chief",
                                   "leader", "chairman", "province", "admin"}
        assert got.texts["admin"][0]["params"]["title"] == {
            "$text": {"id": "raw", "params": {"text": "Họp toàn xã"}}}
        [row] = await rows(app, "calendar_reminders")
        assert row.recipients == 8
    finally:
        await app.close()


# --- the calendar in the config file and in the database ---------------------------------


def test_the_demo_commune_has_the_default_calendar() -> None:
    cfg = load_commune(DEMO_CONFIG)
    assert [e.key for e in cfg.calendar] == [
        "action_month_prepare", "action_month_launch", "action_month_report", "mid_autumn",
        "school_opening", "report_q1", "report_h1", "report_9m", "report_year",
        "collaborators_meeting", "special_circumstances_list"]
    assert cfg.calendar_titles == {}


def test_a_commune_overrides_adds_and_drops_events() -> None:
    raw = demo_raw()
    raw["calendar"] = {"event": [
        # Seed 001: the annual report is due by 10 November.
        {"key": "report_year", "rule": "yearly 11-10"},
        {"key": "girls_day", "title": "Ngày Quốc tế trẻ em gái", "rule": "yearly 10-11",
         "roles": ["officer", "collaborator"], "days_before": [3]},
    ]}
    cfg = parse_commune(raw)
    events = {e.key: e for e in cfg.calendar}
    assert len(events) == 12
    assert str(events["report_year"].rule) == "yearly 11-10"
    # The rest of the default stays.
    assert (events["report_year"].days_before, events["report_year"].covers) == ((7, 1, 0), "Y")
    assert events["girls_day"].days_before == (3,)
    assert cfg.calendar_titles == {"girls_day": "Ngày Quốc tế trẻ em gái"}

    raw["calendar"] = {"defaults": False, "event": [{"key": "report_h1"}]}
    cfg = parse_commune(raw)
    assert [(e.key, str(e.rule)) for e in cfg.calendar] == [("report_h1", "yearly 06-15")]
    raw["calendar"] = {"defaults": False}
    assert parse_commune(raw).calendar == ()


@pytest.mark.parametrize(("calendar", "message"), [
    ({"event": [{"key": "x", "rule": "yearly 10-11", "roles": ["officer"]}]},
     "'x': a new event needs a 'title'"),
    ({"event": [{"key": "report_q1", "rule": "yearly 02-30"}]}, "'report_q1'"),
    ({"event": [{"key": "report_q1", "roles": ["citizen"]}]}, "unknown role"),
    ({"event": [{"key": "report_q1", "days_before": [1, 1]}]}, "repeats"),
    ({"event": [{"key": "report_q1", "at": "25:00"}]}, "'report_q1'"),
    ({"event": [{"key": "report_q1"}, {"key": "report_q1"}]}, "duplicate"),
    ({"event": [{"key": "report_q1", "day_before": [1]}]}, "unknown field"),
    ({"defaults": "no"}, "'defaults' must be true or false"),
    ({"events": []}, "unknown field"),
    ({"event": [{"rule": "yearly 01-01"}]}, "needs a string 'key'"),
])
def test_calendar_mistakes_name_the_event(calendar: dict[str, Any], message: str) -> None:
    raw = demo_raw()
    raw["calendar"] = calendar
    with pytest.raises(ConfigError, match=message):
        parse_commune(raw)


async def test_sync_keeps_chat_pauses_and_chat_events(db_url: str, clock: FakeClock) -> None:
    app = await new_engine(db_url, clock)
    async with app.database.transaction() as s:
        row = await calendar.event_by_key(s, app.directory.commune_id, "report_q1")
        assert row is not None and row.origin == "config" and not row.paused
        await calendar.add_event(s, commune_id=app.directory.commune_id,
                                 key="chat_1", title="Họp", rule="monthly 15",
                                 roles="officer", days_before="0", at="08:00", covers=None,
                                 paused=False, origin="chat", updated_at=clock.now())
    assert await change(app, "calendar_events", {"paused": True}, id=row.id) == 1
    await app.close()

    # The file changes: the Q1 report moves, the meeting goes, an event comes.
    raw = demo_raw()
    raw["calendar"] = {"event": [
        {"key": "report_q1", "rule": "yearly 03-25"},
        {"key": "girls_day", "title": "Ngày Quốc tế trẻ em gái", "rule": "yearly 10-11",
         "roles": ["officer"]}]}
    cfg = parse_commune(raw)
    cfg = dataclasses.replace(cfg, calendar=tuple(
        e for e in cfg.calendar if e.key != "collaborators_meeting"))
    app = await new_engine(db_url, clock, cfg)
    try:
        events = {r.key: r for r in await rows(app, "calendar_events")}
        assert events["report_q1"].paused and events["report_q1"].rule == "yearly 03-25"
        assert "collaborators_meeting" not in events
        assert events["chat_1"].origin == "chat"
        assert events["girls_day"].title == "Ngày Quốc tế trẻ em gái"
        assert len(events) == 12
        # A paused event is silent: 20 March 2026 passes without the Q1 report.
        clock.set(datetime(2026, 3, 25, 8, 0, tzinfo=LOCAL_TZ))
        assert await rem(app).send_due(clock.now()) == 1  # special list
        assert "report_q1:2026-03-25:0" not in await sent_reminders(app)
    finally:
        await app.close()


async def test_only_the_latest_overdue_reminder_per_day_goes_out(app: App,
                                                                 clock: FakeClock) -> None:
    # Never run before 19 March 10:00: the Q1 report's 7-day and 1-day reminders are both
    # overdue; only the 1-day one goes out.
    clock.set(datetime(2026, 3, 19, 10, 0, tzinfo=LOCAL_TZ))
    assert await rem(app).send_due(clock.now()) == 2  # + special list (18th)
    sent = await sent_reminders(app)
    assert set(sent) == {"report_q1:2026-03-20:1", "special_circumstances_list:2026-03-25:7"}
    assert sent["report_q1:2026-03-20:1"].texts["officer"][0]["id"] == \
        "calendar.reminder.tomorrow"
    by_status: dict[str, set[str]] = defaultdict(set)
    for r in await read(app, calendar.reminders_of, app.directory.commune_id):
        by_status[r.status].add(r.key)
    assert by_status["superseded"] == {"report_q1:2026-03-20:7"}
    # Running again changes nothing.
    assert await rem(app).send_due(clock.now()) == 0


async def test_failing_numbers_do_not_stop_the_reminder(app: App, clock: FakeClock) -> None:
    async def broken(s: Any, directory: Any, period: Any, language: str,
                     now: datetime) -> list[Any]:
        # Writes, then fails: the write must be undone, the reminder still sent.
        await simulator.add_inbound(s, "nobody", {}, now)
        raise RuntimeError("chart library broke")

    rem(app).period_report = broken
    clock.set(datetime(2026, 3, 20, 8, 0, tzinfo=LOCAL_TZ))
    assert await rem(app).send_due(clock.now()) == 2  # + the special list's 7-day one
    sent = await sent_reminders(app)
    got = sent["report_q1:2026-03-20:0"]
    assert set(got.people) == OFFICERS and got.files == {}
    assert [t["id"] for t in got.texts["officer"]] == ["calendar.reminder.today"]
    assert await count(app, "sim_messages", address="nobody") == 0


async def test_stopping_the_calendar_lets_a_look_in_progress_finish(
        app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopping must not cancel a look that is running (APScheduler did, at shutdown): a
    look cut off in the middle of a query would leave its connection broken (on SQLite,
    with the write lock taken)."""
    assert app.reminders is not None
    reminders, scheduler = app.reminders, app.scheduler
    assert worker_of(app, CalendarWorker).reminders == [reminders]
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[int] = []
    real = reminders.look

    async def slow(now: datetime) -> tuple[int, datetime | None]:
        started.set()
        await release.wait()
        looked = await real(now)
        finished.append(1)
        return looked

    monkeypatch.setattr(reminders, "look", slow)
    scheduler.start()
    await asyncio.wait_for(started.wait(), 5)
    stopping = asyncio.create_task(scheduler.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()  # it waits for the look
    release.set()
    await asyncio.wait_for(stopping, 5)
    assert finished == [1]
    # The database is free for the next transaction at once.
    async def next_transaction() -> int:
        async with app.database.transaction() as s:
            return await outbox.pending_count(s)

    await asyncio.wait_for(next_transaction(), 2)


async def test_closing_the_engine_lets_each_worker_finish_its_sweep(
        db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    app = await new_engine(db_url, clock)
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[int] = []
    delivery = worker_of(app, DeliveryWorker)
    real = delivery.deliver_due

    async def slow(hold: float | None = None) -> int:
        if not finished:
            started.set()
            await release.wait()
            finished.append(await real(hold))
        return 0

    monkeypatch.setattr(delivery, "deliver_due", slow)
    await app.start()
    await asyncio.wait_for(started.wait(), 5)
    closing = asyncio.create_task(app.close())
    await asyncio.sleep(0.05)
    assert not closing.done()
    release.set()
    await asyncio.wait_for(closing, 5)
    assert finished == [0]
