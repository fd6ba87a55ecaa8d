"""Calendar events as configuration, and when their reminders fall due.

A commune's calendar is data (TOML), not code, so every commune can move a deadline without a
release. Event days are local (Asia/Ho_Chi_Minh) dates; reminders are instants in UTC so the
scheduler and the database never have to think about time zones. Nothing here touches the
database, the network or gettext: the scheduler asks "what is due between A and B", sends,
and records `DueReminder.key` as sent.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

from lunar_vn import SUPPORTED_YEAR_RANGE, LunarDate, lunar_to_solar, solar_to_lunar

from bot.domain.local_time import LOCAL_TZ
from bot.domain.names import unknown, unknown_fields
from bot.domain.roles import REMINDED

# "M" is the previous calendar month; the others are periods of the current year.
COVERS: Final[tuple[str, ...]] = ("Q1", "H1", "9M", "Y", "M")
# A reminder more than a year ahead is noise, and the bound keeps every look-ahead finite.
MAX_DAYS_BEFORE: Final[int] = 366
# How far next_reminder_after looks: a yearly event's first reminder is at most a year away.
SEARCH_DAYS: Final[int] = 400
# Longest event title, typed in chat or written in the commune file.
MAX_TITLE: Final[int] = 200

WEEKDAYS: Final[tuple[str, ...]] = (
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
)
# -1 stands for "last", which every month has; "fifth" is left out because most months lack it.
ORDINALS: Final[dict[str, int]] = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
_ORDINAL_NAMES: Final[dict[int, str]] = {v: k for k, v in ORDINALS.items()}

def _last_day(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _clamped(year: int, month: int, day: int) -> date:
    # "Day 31" in a 30-day month means the month's last day: a deadline never silently vanishes.
    return date(year, month, min(day, _last_day(year, month)))


def _months(start: date, end: date) -> Iterable[tuple[int, int]]:
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        yield year, month
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _within(days: Iterable[date], start: date, end: date) -> list[date]:
    return sorted({d for d in days if start <= d <= end})


def day_text(day: date) -> str:
    """15/06/2026: the date as officers write it."""
    return day.strftime("%d/%m/%Y")


@dataclass(frozen=True)
class YearlyRule:
    """The same day every year; 29 February falls on the 28th in common years."""

    month: int
    day: int

    def occurrences(self, start: date, end: date) -> list[date]:
        return _within((_clamped(y, self.month, self.day) for y in range(start.year, end.year + 1)),
                       start, end)

    def __str__(self) -> str:
        return f"yearly {self.month:02d}-{self.day:02d}"


@dataclass(frozen=True)
class QuarterlyRule:
    """Day `day` of the `month`-th month (1..3) of every quarter, clamped to that month's end."""

    month: int
    day: int

    def occurrences(self, start: date, end: date) -> list[date]:
        return _within((_clamped(y, m, self.day) for y, m in _months(start, end)
                        if (m - 1) % 3 + 1 == self.month), start, end)

    def __str__(self) -> str:
        return f"quarterly {self.month}/{self.day:02d}"


@dataclass(frozen=True)
class LunarRule:
    """A day of the Vietnamese lunar calendar (computed at UTC+7), regular months only.

    Leap months are skipped: Tết Trung thu is kept on the regular 8th month even in a year with
    a leap 8th month. Day 30 in a 29-day month means the month's last day (as with New Year's
    Eve, which is the 29th in some years).
    """

    month: int
    day: int

    def _solar(self, lunar_year: int) -> date:
        solar = lunar_to_solar(LunarDate(self.day, self.month, lunar_year))
        if self.day == 30:
            # The library rolls a missing 30th over into the next month; check by converting back.
            back = solar_to_lunar(solar)
            if (back.day, back.month, back.leap) != (30, self.month, False):
                solar = lunar_to_solar(LunarDate(29, self.month, lunar_year))
        return solar

    def occurrences(self, start: date, end: date) -> list[date]:
        # Lunar year Y runs from late January/February of Y into early next year, so the dates
        # in [start, end] belong to lunar years start.year - 1 .. end.year.
        low, high = SUPPORTED_YEAR_RANGE
        years = range(max(start.year - 1, low), min(end.year, high) + 1)
        days = []
        for lunar_year in years:
            try:
                days.append(self._solar(lunar_year))
            except ValueError:
                # Only at the edges of the library's 1900..2100 range; nothing to remind there.
                continue
        return _within(days, start, end)

    def __str__(self) -> str:
        return f"lunar {self.month:02d}-{self.day:02d}"


@dataclass(frozen=True)
class MonthlyWeekdayRule:
    """The n-th (1..4) or last (-1) given weekday (0 = Monday) of every month."""

    nth: int
    weekday: int

    def _in_month(self, year: int, month: int) -> date:
        if self.nth == -1:
            last = date(year, month, _last_day(year, month))
            return last - timedelta(days=(last.weekday() - self.weekday) % 7)
        first = date(year, month, 1)
        first_match = first + timedelta(days=(self.weekday - first.weekday()) % 7)
        return first_match + timedelta(weeks=self.nth - 1)

    def occurrences(self, start: date, end: date) -> list[date]:
        return _within((self._in_month(y, m) for y, m in _months(start, end)), start, end)

    def __str__(self) -> str:
        return f"monthly {_ORDINAL_NAMES[self.nth]} {WEEKDAYS[self.weekday]}"


@dataclass(frozen=True)
class MonthlyDayRule:
    """Day `day` of every month, or the month's last day when it is shorter."""

    day: int

    def occurrences(self, start: date, end: date) -> list[date]:
        return _within((_clamped(y, m, self.day) for y, m in _months(start, end)), start, end)

    def __str__(self) -> str:
        return f"monthly {self.day:02d}"


@dataclass(frozen=True)
class OnceRule:
    """A single date."""

    day: date

    def occurrences(self, start: date, end: date) -> list[date]:
        return [self.day] if start <= self.day <= end else []

    def __str__(self) -> str:
        return f"once {self.day.isoformat()}"


Rule = YearlyRule | QuarterlyRule | LunarRule | MonthlyWeekdayRule | MonthlyDayRule | OnceRule

_MM_DD = re.compile(r"(\d{1,2})-(\d{1,2})")
_M_DD = re.compile(r"(\d)/(\d{1,2})")
_DD = re.compile(r"\d{1,2}")
_YYYY_MM_DD = re.compile(r"\d{4}-\d{2}-\d{2}")
_HH_MM = re.compile(r"(\d{1,2}):(\d{2})")

_RULE_HELP: Final[str] = (
    'expected "yearly MM-DD", "quarterly M/DD", "lunar MM-DD", "monthly DD", '
    '"monthly first|second|third|fourth|last WEEKDAY" or "once YYYY-MM-DD"'
)


def _month_day(kind: str, arg: str, text: str) -> tuple[int, int]:
    match = _MM_DD.fullmatch(arg)
    if match is None:
        raise ValueError(f"rule {text!r}: {kind} needs MM-DD, got {arg!r}")
    month, day = int(match[1]), int(match[2])
    if not 1 <= month <= 12:
        raise ValueError(f"rule {text!r}: month {month} is not 1..12")
    # Lunar months have at most 30 days; a leap year is the most permissive solar check.
    top = 30 if kind == "lunar" else _last_day(2000, month)
    if not 1 <= day <= top:
        raise ValueError(f"rule {text!r}: day {day} is not 1..{top} for month {month}")
    return month, day


def parse_rule(text: str) -> Rule:
    """Parse a rule string; ValueError says what is wrong and what is expected."""
    if not isinstance(text, str):
        raise ValueError(f"rule must be a string, got {type(text).__name__}")
    words = text.strip().lower().split()
    if not words:
        raise ValueError(f"empty rule ({_RULE_HELP})")
    kind, args = words[0], words[1:]
    if kind in ("yearly", "lunar", "quarterly", "once") and len(args) != 1:
        raise ValueError(f"rule {text!r}: {kind} takes exactly one argument ({_RULE_HELP})")
    if kind == "yearly":
        return YearlyRule(*_month_day(kind, args[0], text))
    if kind == "lunar":
        return LunarRule(*_month_day(kind, args[0], text))
    if kind == "quarterly":
        match = _M_DD.fullmatch(args[0])
        if match is None:
            raise ValueError(f"rule {text!r}: quarterly needs M/DD (M = month of the quarter, "
                             f"1..3), got {args[0]!r}")
        month, day = int(match[1]), int(match[2])
        if not 1 <= month <= 3:
            raise ValueError(f"rule {text!r}: month of the quarter {month} is not 1..3")
        if not 1 <= day <= 31:
            raise ValueError(f"rule {text!r}: day {day} is not 1..31")
        return QuarterlyRule(month, day)
    if kind == "once":
        if _YYYY_MM_DD.fullmatch(args[0]) is None:
            raise ValueError(f"rule {text!r}: once needs YYYY-MM-DD, got {args[0]!r}")
        try:
            return OnceRule(date.fromisoformat(args[0]))
        except ValueError as exc:
            raise ValueError(f"rule {text!r}: {exc}") from None
    if kind == "monthly":
        if len(args) == 1 and _DD.fullmatch(args[0]):
            day = int(args[0])
            if not 1 <= day <= 31:
                raise ValueError(f"rule {text!r}: day {day} is not 1..31")
            return MonthlyDayRule(day)
        if len(args) == 2:
            ordinal, weekday = args
            if ordinal not in ORDINALS:
                raise ValueError(f"rule {text!r}: {ordinal!r} is not one of "
                                 f"{', '.join(ORDINALS)}")
            if weekday not in WEEKDAYS:
                raise ValueError(f"rule {text!r}: {weekday!r} is not a weekday "
                                 f"({', '.join(WEEKDAYS)})")
            return MonthlyWeekdayRule(ORDINALS[ordinal], WEEKDAYS.index(weekday))
        raise ValueError(f"rule {text!r}: monthly needs DD or an ordinal and a weekday, "
                         f'e.g. "monthly 15" or "monthly first monday"')
    raise ValueError(f"rule {text!r}: unknown kind {kind!r} ({_RULE_HELP})")


@dataclass(frozen=True)
class CalendarEvent:
    key: str
    rule: Rule
    roles: tuple[str, ...]
    days_before: tuple[int, ...]
    hour: int
    minute: int
    covers: str | None
    paused: bool = False

    def __post_init__(self) -> None:
        # Checked here too, not only in parse_calendar, so events built in code are as safe.
        where = f"event {self.key!r}"
        if not self.key or not isinstance(self.key, str) or ":" in self.key:
            # ":" separates the parts of DueReminder.key, which must stay unambiguous.
            raise ValueError(f"{where}: key must be a non-empty string without ':'")
        if not self.roles:
            raise ValueError(f"{where}: roles must name at least one role")
        wrong = [r for r in self.roles if r not in REMINDED]
        if wrong:
            raise ValueError(f"{where}: {unknown('role', wrong[0], map(str, REMINDED))}")
        if not self.days_before:
            raise ValueError(f"{where}: days_before must not be empty (0 means on the day)")
        for days in self.days_before:
            if isinstance(days, bool) or not isinstance(days, int) \
                    or not 0 <= days <= MAX_DAYS_BEFORE:
                raise ValueError(f"{where}: days_before value {days!r} is not an integer "
                                 f"0..{MAX_DAYS_BEFORE}")
        if len(set(self.days_before)) != len(self.days_before):
            raise ValueError(f"{where}: days_before {list(self.days_before)} repeats a value")
        if not 0 <= self.hour <= 23 or not 0 <= self.minute <= 59:
            raise ValueError(f"{where}: time {self.hour}:{self.minute:02d} is not a valid "
                             f"HH:MM")
        if self.covers is not None and self.covers not in COVERS:
            raise ValueError(f"{where}: covers {self.covers!r} is not one of "
                             f"{', '.join(COVERS)}")

    def event_at(self, event_date: date) -> datetime:
        """The event itself, as a UTC instant: its local date at its configured time."""
        return _local_instant(event_date, self.hour, self.minute)


_EVENT_FIELDS: Final[frozenset[str]] = frozenset(
    {"key", "rule", "roles", "days_before", "at", "covers", "paused"})


def _parse_event(raw: Mapping[str, Any], index: int) -> CalendarEvent:
    key = raw.get("key")
    where = f"event {key!r}" if isinstance(key, str) and key else f"event #{index + 1}"
    if not isinstance(key, str) or not key:
        raise ValueError(f"{where}: missing or empty 'key'")
    # A typo such as "day_before" would otherwise silently fall back to the default.
    wrong = sorted(set(raw) - _EVENT_FIELDS)
    if wrong:
        raise ValueError(f"{where}: {unknown_fields(wrong, _EVENT_FIELDS)}")
    try:
        rule = parse_rule(raw["rule"]) if "rule" in raw else None
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    if rule is None:
        raise ValueError(f"{where}: missing 'rule'")
    roles = raw.get("roles")
    if isinstance(roles, str):
        roles = [roles]
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise ValueError(f"{where}: 'roles' must be a list of role names")
    days_before = raw.get("days_before", [0])
    if not isinstance(days_before, list):
        raise ValueError(f"{where}: 'days_before' must be a list of integers")
    at = raw.get("at", "08:00")
    match = _HH_MM.fullmatch(at) if isinstance(at, str) else None
    if match is None:
        raise ValueError(f"{where}: 'at' must be \"HH:MM\", got {at!r}")
    hour, minute = int(match[1]), int(match[2])
    if hour > 23 or minute > 59:
        raise ValueError(f"{where}: 'at' {at!r} is not a time of day (00:00..23:59)")
    covers = raw.get("covers")
    if covers is not None and not isinstance(covers, str):
        raise ValueError(f"{where}: 'covers' must be a string")
    paused = raw.get("paused", False)
    if not isinstance(paused, bool):
        raise ValueError(f"{where}: 'paused' must be true or false")
    return CalendarEvent(key=key, rule=rule, roles=tuple(roles),
                         days_before=tuple(days_before), hour=hour, minute=minute,
                         covers=covers, paused=paused)


def parse_calendar(data: Sequence[Mapping[str, Any]]) -> list[CalendarEvent]:
    """Build events from TOML-like tables; any mistake is a ValueError naming the event."""
    events: list[CalendarEvent] = []
    seen: set[str] = set()
    for index, raw in enumerate(data):
        if not isinstance(raw, Mapping):
            raise ValueError(f"event #{index + 1}: expected a table, got {type(raw).__name__}")
        event = _parse_event(raw, index)
        if event.key in seen:
            raise ValueError(f"event {event.key!r}: duplicate key")
        seen.add(event.key)
        events.append(event)
    return events


def occurrences(rule: Rule, start: date, end: date) -> list[date]:
    """Event dates in [start, end], both inclusive, sorted."""
    if start > end:
        return []
    return rule.occurrences(start, end)


def _local_instant(day: date, hour: int, minute: int) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=LOCAL_TZ).astimezone(UTC)


def _require_aware(name: str, moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime")


@dataclass(frozen=True)
class DueReminder:
    event: CalendarEvent
    event_date: date
    days_before: int
    due_at: datetime

    @property
    def key(self) -> str:
        # Stored as "sent": depends only on configuration and the date, never on when we ran.
        return f"{self.event.key}:{self.event_date.isoformat()}:{self.days_before}"

    @property
    def event_at(self) -> datetime:
        return self.event.event_at(self.event_date)


def reminders_between(events: Iterable[CalendarEvent], start: datetime,
                      end: datetime) -> list[DueReminder]:
    """Reminders of non-paused events with start <= due_at < end, by due_at then key."""
    _require_aware("start", start)
    _require_aware("end", end)
    if start >= end:
        return []
    first_day = start.astimezone(LOCAL_TZ).date()
    last_day = end.astimezone(LOCAL_TZ).date()
    found: list[DueReminder] = []
    for event in events:
        if event.paused:
            continue
        # A reminder due on local day D belongs to the event on D + days_before, so events up
        # to the largest lead past the window still have reminders inside it.
        horizon = last_day + timedelta(days=max(event.days_before))
        for event_date in occurrences(event.rule, first_day, horizon):
            for days in event.days_before:
                due_at = _local_instant(event_date - timedelta(days=days), event.hour,
                                        event.minute)
                if start <= due_at < end:
                    found.append(DueReminder(event, event_date, days, due_at))
    found.sort(key=lambda r: (r.due_at, r.key))
    return found


def next_reminder_after(events: Iterable[CalendarEvent],
                        moment: datetime) -> DueReminder | None:
    """The earliest reminder due strictly after `moment`, within SEARCH_DAYS; None if none."""
    _require_aware("moment", moment)
    events = list(events)
    # The nearest reminder is usually within weeks; try a short window before the full one.
    for days in (35, SEARCH_DAYS):
        later = [r for r in reminders_between(events, moment, moment + timedelta(days=days))
                 if r.due_at > moment]
        if later:
            return later[0]
    return None


def still_useful(reminder: DueReminder, now: datetime) -> bool:
    """Whether a reminder (possibly missed while the bot was down) is still worth sending.

    A lead reminder ("in 7 days") is useful only before the event's local date and time. An
    on-the-day reminder is due exactly at that moment, so it stays useful for the rest of the
    event's local day instead: otherwise it could never be sent.
    """
    _require_aware("now", now)
    if reminder.days_before == 0:
        day_end = datetime.combine(reminder.event_date + timedelta(days=1), time(),
                                   tzinfo=LOCAL_TZ)
        return now < day_end
    return now < reminder.event_at
