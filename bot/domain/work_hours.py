"""Deadline arithmetic: durations in calendar time or in working time, the commune office's
hours (07:30-17:00 Monday to Friday by default), Vietnamese public holidays excluded (from
the maintained `holidays` library)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache

import holidays

from bot.domain.local_time import LOCAL_TZ


@dataclass(frozen=True)
class Duration:
    """An amount of time in calendar minutes or in working minutes/days."""

    amount: int
    unit: str  # "m" calendar minutes, "wm" working minutes, "wd" working days

    @classmethod
    def parse(cls, raw: str) -> Duration:
        """ "30m", "12h", "3d" (calendar), "2wh" (working hours), "3wd" (working days)."""
        raw = raw.strip().lower()
        for suffix, unit, factor in (("wd", "wd", 1), ("wh", "wm", 60), ("m", "m", 1),
                                     ("h", "m", 60), ("d", "m", 24 * 60)):
            if raw.endswith(suffix) and raw[: -len(suffix)].isdigit():
                return cls(int(raw[: -len(suffix)]) * factor, unit)
        raise ValueError(f"bad duration {raw!r}")


@lru_cache(maxsize=64)
def _vn_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("VN", years=year).keys())


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _vn_holidays(day.year)


class WorkHours:
    """The commune office's opening hours on working days."""

    def __init__(self, start: time = time(7, 30), end: time = time(17, 0)) -> None:
        self.start = start
        self.end = end
        self.day_minutes = (datetime.combine(date.min, end)
                            - datetime.combine(date.min, start)).seconds // 60

    def add(self, when: datetime, duration: Duration) -> datetime:
        """`when` plus `duration`; working time skips nights, weekends and holidays."""
        if duration.unit == "m":
            return when + timedelta(minutes=duration.amount)
        minutes = duration.amount * (self.day_minutes if duration.unit == "wd" else 1)
        return self._add_working_minutes(when, minutes)

    def _add_working_minutes(self, when: datetime, minutes: int) -> datetime:
        local = when.astimezone(LOCAL_TZ)
        day = local.date()
        remaining = timedelta(minutes=minutes)
        cursor = local
        for _ in range(3660):  # ten years of days: far beyond any configured deadline
            if is_working_day(day):
                opens = datetime.combine(day, self.start, LOCAL_TZ)
                closes = datetime.combine(day, self.end, LOCAL_TZ)
                begin = max(cursor, opens)
                if begin < closes:
                    available = closes - begin
                    if remaining <= available:
                        return (begin + remaining).astimezone(when.tzinfo)
                    remaining -= available
            day += timedelta(days=1)
            cursor = datetime.combine(day, time(0, 0), LOCAL_TZ)
        raise ValueError("working-time deadline too far away")
