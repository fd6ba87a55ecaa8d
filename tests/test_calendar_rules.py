"""Calendar rules: event dates, reminder instants, and the default calendar's shape."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.config import load_default_calendar
from bot.domain.commune_calendar import (
    CalendarEvent,
    DueReminder,
    LunarRule,
    MonthlyDayRule,
    MonthlyWeekdayRule,
    OnceRule,
    QuarterlyRule,
    YearlyRule,
    next_reminder_after,
    occurrences,
    parse_calendar,
    parse_rule,
    reminders_between,
    still_useful,
)

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=VN)


def dates(rule: str, start: str, end: str) -> list[date]:
    return occurrences(parse_rule(rule), date.fromisoformat(start), date.fromisoformat(end))


def event(key: str = "e", rule: str = "yearly 01-05", **fields: Any) -> CalendarEvent:
    return parse_calendar([{"key": key, "rule": rule, "roles": ["officer"], **fields}])[0]


# --- rules -------------------------------------------------------------------------------


def test_mid_autumn_matches_published_vietnamese_calendars() -> None:
    # Literals from published Vietnamese calendars (lịch vạn niên), not from the library.
    assert dates("lunar 08-15", "2025-01-01", "2027-12-31") == [
        date(2025, 10, 6), date(2026, 9, 25), date(2027, 9, 15)]


def test_lunar_skips_the_leap_month() -> None:
    # 1995 had a leap 8th month; Mid-Autumn that year was 9 September, once.
    assert dates("lunar 08-15", "1995-01-01", "1995-12-31") == [date(1995, 9, 9)]


def test_lunar_new_year_and_missing_30th() -> None:
    # Tết: 29 Jan 2025, 17 Feb 2026 (published). The 12th month of Ất Tỵ has 29 days, so
    # "lunar 12-30" (New Year's Eve) is its last day, 16 Feb 2026.
    assert dates("lunar 01-01", "2025-01-01", "2026-12-31") == [
        date(2025, 1, 29), date(2026, 2, 17)]
    assert dates("lunar 12-30", "2026-01-01", "2026-12-31") == [date(2026, 2, 16)]


def test_yearly() -> None:
    assert dates("yearly 06-01", "2025-06-01", "2027-05-31") == [
        date(2025, 6, 1), date(2026, 6, 1)]
    assert dates("yearly 02-29", "2027-01-01", "2028-12-31") == [
        date(2027, 2, 28), date(2028, 2, 29)]


def test_quarterly() -> None:
    assert dates("quarterly 3/20", "2026-01-01", "2026-12-31") == [
        date(2026, 3, 20), date(2026, 6, 20), date(2026, 9, 20), date(2026, 12, 20)]
    assert dates("quarterly 1/05", "2026-01-01", "2026-06-30") == [
        date(2026, 1, 5), date(2026, 4, 5)]
    # The 31st of a quarter's last month: June and September have 30 days.
    assert dates("quarterly 3/31", "2026-01-01", "2026-12-31") == [
        date(2026, 3, 31), date(2026, 6, 30), date(2026, 9, 30), date(2026, 12, 31)]


def test_monthly_weekday() -> None:
    assert dates("monthly first monday", "2026-11-01", "2026-11-30") == [date(2026, 11, 2)]
    assert dates("monthly second tuesday", "2026-01-01", "2026-03-31") == [
        date(2026, 1, 13), date(2026, 2, 10), date(2026, 3, 10)]
    assert dates("monthly last friday", "2026-01-01", "2026-03-31") == [
        date(2026, 1, 30), date(2026, 2, 27), date(2026, 3, 27)]
    assert len(dates("Monthly  First MONDAY", "2026-01-01", "2026-12-31")) == 12


def test_monthly_day() -> None:
    assert dates("monthly 31", "2026-02-01", "2026-02-28") == [date(2026, 2, 28)]
    assert dates("monthly 31", "2024-01-01", "2024-04-30") == [
        date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30)]


def test_once() -> None:
    assert dates("once 2026-10-11", "2026-01-01", "2026-12-31") == [date(2026, 10, 11)]
    assert dates("once 2026-10-11", "2027-01-01", "2027-12-31") == []


def test_range_is_inclusive_and_empty_when_reversed() -> None:
    assert dates("monthly 15", "2026-01-15", "2026-02-15") == [
        date(2026, 1, 15), date(2026, 2, 15)]
    assert dates("monthly 15", "2026-02-15", "2026-01-15") == []


def test_rules_round_trip_as_text() -> None:
    assert parse_rule("yearly 6-1") == YearlyRule(6, 1)
    assert parse_rule("quarterly 3/20") == QuarterlyRule(3, 20)
    assert parse_rule("lunar 08-15") == LunarRule(8, 15)
    assert parse_rule("monthly last friday") == MonthlyWeekdayRule(-1, 4)
    assert parse_rule("monthly 5") == MonthlyDayRule(5)
    assert parse_rule("once 2026-10-11") == OnceRule(date(2026, 10, 11))
    for text in ("yearly 06-01", "quarterly 3/20", "lunar 08-15", "monthly last friday",
                 "monthly 05", "once 2026-10-11"):
        assert str(parse_rule(text)) == text


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty rule"),
    ("weekly monday", "unknown kind 'weekly'"),
    ("yearly 13-01", "month 13"),
    ("yearly 02-30", "day 30"),
    ("yearly 0601", "MM-DD"),
    ("yearly", "exactly one argument"),
    ("quarterly 4/20", "month of the quarter 4"),
    ("quarterly 3-20", "M/DD"),
    ("lunar 08-31", "day 31"),
    ("monthly fifth monday", "'fifth'"),
    ("monthly first funday", "'funday'"),
    ("monthly 32", "day 32"),
    ("monthly", "monthly needs"),
    ("once 2026-02-30", "once 2026-02-30"),
    ("once tomorrow", "YYYY-MM-DD"),
])
def test_bad_rules(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rule(text)


# --- calendar configuration -----------------------------------------------------------------


def test_parse_calendar_defaults_and_fields() -> None:
    [e] = parse_calendar([{"key": "k", "rule": "monthly 1", "roles": ["officer"]}])
    assert e == CalendarEvent(key="k", rule=MonthlyDayRule(1), roles=("officer",),
                              days_before=(0,), hour=8, minute=0, covers=None, paused=False)
    [e] = parse_calendar([{"key": "k", "rule": "yearly 03-20", "roles": ["officer", "leader"],
                           "days_before": [7, 0], "at": "17:45", "covers": "Q1",
                           "paused": True}])
    assert (e.roles, e.days_before, e.hour, e.minute, e.covers, e.paused) == (
        ("officer", "leader"), (7, 0), 17, 45, "Q1", True)


@pytest.mark.parametrize(("fields", "message"), [
    ({"rule": "weekly monday"}, "unknown kind"),
    ({"roles": ["officer", "mayor"]}, "unknown role.*'mayor'"),
    ({"roles": []}, "at least one role"),
    ({"at": "24:00"}, "not a time of day"),
    ({"at": "8am"}, "HH:MM"),
    ({"days_before": [-1]}, "days_before value -1"),
    ({"days_before": [7, 7]}, "repeats"),
    ({"days_before": 7}, "list of integers"),
    ({"covers": "Q5"}, "covers 'Q5'"),
    ({"paused": "yes"}, "'paused'"),
    ({"day_before": [1]}, "unknown field.*day_before"),
])
def test_bad_events_name_the_event(fields: dict[str, Any], message: str) -> None:
    raw = {"key": "report_q1", "rule": "yearly 03-20", "roles": ["officer"], **fields}
    with pytest.raises(ValueError, match=f"event 'report_q1'.*{message}"):
        parse_calendar([raw])


def test_duplicate_and_missing_keys() -> None:
    raw = {"key": "meeting", "rule": "monthly 1", "roles": ["collaborator"]}
    with pytest.raises(ValueError, match="event 'meeting': duplicate key"):
        parse_calendar([raw, dict(raw)])
    with pytest.raises(ValueError, match="event #2: missing or empty 'key'"):
        parse_calendar([raw, {"rule": "monthly 1", "roles": ["officer"]}])
    with pytest.raises(ValueError, match="event 'x': missing 'rule'"):
        parse_calendar([{"key": "x", "roles": ["officer"]}])


def test_default_calendar_has_every_product_default() -> None:
    events = {e.key: e for e in load_default_calendar()}
    assert set(events) == {
        "action_month_prepare", "action_month_launch", "action_month_report", "mid_autumn",
        "school_opening", "report_q1", "report_h1", "report_9m", "report_year",
        "collaborators_meeting", "special_circumstances_list"}
    assert events["mid_autumn"].rule == LunarRule(8, 15)
    assert {k: e.covers for k, e in events.items() if e.covers} == {
        "action_month_report": "M", "report_q1": "Q1", "report_h1": "H1", "report_9m": "9M",
        "report_year": "Y"}
    assert [str(events[k].rule) for k in ("report_q1", "report_h1", "report_9m",
                                          "report_year")] == [
        "yearly 03-20", "yearly 06-15", "yearly 09-15", "yearly 12-10"]
    assert not any(e.paused for e in events.values())


# --- reminders -------------------------------------------------------------------------------


def test_default_calendar_over_2026() -> None:
    events = load_default_calendar()
    reminders = reminders_between(events, local(2026, 1, 1), local(2027, 1, 1))
    counts = Counter(r.event.key for r in reminders)
    assert counts == {
        "action_month_prepare": 1,      # 5 May
        "action_month_launch": 2,       # 25 May, 1 June
        "action_month_report": 1,       # 1 July
        "mid_autumn": 2,                # 11 and 22 Sep (festival 25 Sep 2026)
        "school_opening": 2,            # 29 Aug, 4 Sep
        "report_q1": 3,
        "report_h1": 3,
        "report_9m": 3,
        "report_year": 3,
        # 12 first Mondays x (eve, day); Jan 2027's eve is 3 Jan 2027, outside.
        "collaborators_meeting": 24,
        "special_circumstances_list": 8,  # 4 quarters x (7 days before, on the day)
    }
    keys = [r.key for r in reminders]
    assert len(keys) == len(set(keys))
    assert reminders == sorted(reminders, key=lambda r: (r.due_at, r.key))
    for r in reminders:
        assert r.due_at.tzinfo is not None and r.due_at.utcoffset() == timedelta(0)
        at_home = r.due_at.astimezone(VN)
        assert (at_home.hour, at_home.minute) == (r.event.hour, r.event.minute)
        assert at_home.date() == r.event_date - timedelta(days=r.days_before)
    mid_autumn = [(r.event_date, r.days_before) for r in reminders
                  if r.event.key == "mid_autumn"]
    assert mid_autumn == [(date(2026, 9, 25), 14), (date(2026, 9, 25), 3)]


def test_windows_split_anywhere_give_the_same_reminders() -> None:
    # The scheduler asks window after window; nothing may be lost or repeated at the seams.
    events = load_default_calendar()
    start, end = local(2026, 1, 1), local(2027, 1, 1)
    whole = reminders_between(events, start, end)
    pieces: list[DueReminder] = []
    cut = start
    while cut < end:
        nxt = min(cut + timedelta(days=9, hours=7, minutes=30), end)
        pieces.extend(reminders_between(events, cut, nxt))
        cut = nxt
    assert pieces == whole


def test_due_at_is_utc_of_local_time() -> None:
    e = event(rule="once 2026-06-01", days_before=[0], at="08:00")
    [r] = reminders_between([e], local(2026, 1, 1), local(2027, 1, 1))
    assert r.due_at == datetime(2026, 6, 1, 1, 0, tzinfo=UTC)
    assert r.key == "e:2026-06-01:0"
    # The window is half-open: a reminder due exactly at `end` belongs to the next window.
    assert reminders_between([e], local(2026, 1, 1), r.due_at) == []
    assert reminders_between([e], r.due_at, r.due_at + timedelta(seconds=1)) == [r]


def test_early_morning_reminder_is_previous_utc_day() -> None:
    e = event(rule="once 2026-06-01", at="00:30")
    [r] = reminders_between([e], local(2026, 5, 31), local(2026, 6, 2))
    assert r.due_at == datetime(2026, 5, 31, 17, 30, tzinfo=UTC)


def test_year_boundary_reminder_falls_in_previous_december() -> None:
    e = event(key="new_year_thing", rule="yearly 01-05", days_before=[30, 0])
    december = reminders_between([e], local(2025, 12, 1), local(2026, 1, 1))
    assert [(r.key, r.due_at.astimezone(VN)) for r in december] == [
        ("new_year_thing:2026-01-05:30", local(2025, 12, 6, 8, 0))]
    january = reminders_between([e], local(2026, 1, 1), local(2026, 2, 1))
    assert [r.key for r in january] == ["new_year_thing:2026-01-05:0"]


def test_paused_events_are_silent() -> None:
    e = event(rule="monthly 1", paused=True)
    assert reminders_between([e], local(2026, 1, 1), local(2027, 1, 1)) == []
    assert next_reminder_after([e], local(2026, 1, 1)) is None


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        reminders_between([], datetime(2026, 1, 1), local(2026, 2, 1))
    with pytest.raises(ValueError, match="aware"):
        next_reminder_after([], datetime(2026, 1, 1))


def test_next_reminder_after() -> None:
    events = load_default_calendar()
    nxt = next_reminder_after(events, local(2026, 3, 13, 8, 0))
    # 13 March 08:00 is report_q1's 7-day reminder itself; "after" is strict.
    assert nxt is not None
    assert nxt.key == "special_circumstances_list:2026-03-25:7"
    assert nxt.due_at == local(2026, 3, 18, 8, 0)
    first = next_reminder_after(events, local(2026, 3, 13, 7, 59))
    assert first is not None and first.key == "report_q1:2026-03-20:7"
    # A lone yearly event far away is still found (up to 400 days ahead).
    far = event(rule="yearly 03-01", days_before=[0])
    found = next_reminder_after([far], local(2026, 3, 2))
    assert found is not None and found.event_date == date(2027, 3, 1)
    assert next_reminder_after([event(rule="once 2020-01-01")], local(2026, 1, 1)) is None


def test_still_useful() -> None:
    e = event(rule="once 2026-06-01", days_before=[7, 1, 0], at="08:00")
    by_lead = {r.days_before: r for r in reminders_between([e], local(2026, 5, 1),
                                                           local(2026, 7, 1))}
    week, eve, day = by_lead[7], by_lead[1], by_lead[0]
    assert still_useful(week, week.due_at)
    # Missed while the bot was down, sent late: fine until the event starts, not after.
    assert still_useful(week, local(2026, 5, 31, 23, 0))
    assert still_useful(eve, local(2026, 6, 1, 7, 59))
    assert not still_useful(eve, local(2026, 6, 1, 8, 0))
    assert not still_useful(week, local(2026, 6, 2, 9, 0))
    # The on-the-day reminder is due at the event's own time, so it lasts the local day.
    assert still_useful(day, day.due_at)
    assert still_useful(day, local(2026, 6, 1, 23, 59))
    assert not still_useful(day, local(2026, 6, 2, 0, 0))
