"""Triage, routing rules and working-time deadlines as data (no database needed)."""

from __future__ import annotations

import tomllib
from datetime import datetime

import pytest

from bot.config import DEMO_CONFIG, ConfigError, load_commune, parse_commune
from bot.domain.local_time import LOCAL_TZ
from bot.domain.people import Person
from bot.domain.routing import first_recipients, is_police_case, level_recipients, triage
from bot.domain.work_hours import Duration, WorkHours

CFG = load_commune(DEMO_CONFIG)


def people() -> list[Person]:
    return [Person(id=n, commune_id=1, key=p.key, role=p.role, name=p.name, phone=None,
                   language="vi", village_id=None, on_duty=p.on_duty, tags=p.tags,
                   preferred_channel=None) for n, p in enumerate(CFG.people, start=1)]


@pytest.mark.parametrize(("danger", "types", "age", "expected"), [
    ("yes", ["other"], "unknown", "EMERGENCY"),
    ("no", ["sexual_abuse"], "11-15", "URGENT"),
    ("no", ["abandonment"], "0-5", "URGENT"),
    ("no", ["abandonment"], "11-15", "STANDARD"),
    ("unsure", ["injury"], "6-10", "URGENT"),
    ("no", ["child_marriage"], "16-17", "STANDARD"),
])
def test_triage(danger: str, types: list[str], age: str, expected: str) -> None:
    assert triage(danger, types, age) == expected


def keys(found: list[Person]) -> list[str]:
    return sorted(p.key or "" for p in found)


def test_rules_send_police_only_police_cases() -> None:
    assert keys(first_recipients(CFG, people(), ["child_marriage"], "STANDARD")) == ["officer"]
    assert keys(first_recipients(CFG, people(), ["violence"], "URGENT")) == ["officer", "police"]
    assert keys(first_recipients(CFG, people(), ["other"], "EMERGENCY")) == ["officer", "police"]
    assert is_police_case(CFG, ["exploitation"], "STANDARD")
    assert not is_police_case(CFG, ["child_marriage"], "URGENT")


def test_escalation_chain_levels() -> None:
    assert keys(level_recipients(CFG, people(), 2, True)) == ["officer", "officer2",
                                                               "police_chief"]
    assert keys(level_recipients(CFG, people(), 2, False)) == ["officer", "officer2"]
    assert keys(level_recipients(CFG, people(), 3, True)) == ["leader"]
    assert keys(level_recipients(CFG, people(), 4, True)) == ["chairman", "province"]
    # Past the top, the top level keeps being alerted.
    assert keys(level_recipients(CFG, people(), 9, True)) == ["chairman", "province"]


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=LOCAL_TZ)


def test_working_time_skips_nights_weekends_and_holidays() -> None:
    cal = WorkHours(*CFG.working_hours)
    # Calendar hours: the 12-hour clock runs through the night.
    assert cal.add(at(2026, 11, 23, 20, 0), Duration.parse("12h")) == at(2026, 11, 24, 8, 0)
    # Two working hours from Friday 16:00: one on Friday, one on Monday.
    assert cal.add(at(2026, 11, 27, 16, 0), Duration.parse("2wh")) == at(2026, 11, 30, 8, 30)
    # Reported on a Monday night: the clock starts at 07:30 on the next working day, which
    # is Wednesday, since Tuesday 24 Nov 2026 is Vietnam Cultural Day (a public holiday).
    assert cal.add(at(2026, 11, 23, 22, 0), Duration.parse("2wh")) == at(2026, 11, 25, 9, 30)
    # 3 working days from Friday 28 Aug 2026 10:00 skip the weekend and the National Day
    # holidays (Mon 31 Aug, Tue 1 Sep, Wed 2 Sep): Thu, Fri, Mon -> Mon 7 Sep 10:00.
    assert cal.add(at(2026, 8, 28, 10, 0), Duration.parse("3wd")) == at(2026, 9, 7, 10, 0)


def test_prefers_must_name_a_channel() -> None:
    raw = tomllib.loads(DEMO_CONFIG.read_text(encoding="utf-8"))
    raw["people"][2]["prefers"] = "zalo"
    assert parse_commune(raw).people[2].prefers == "zalo"
    raw["people"][2]["prefers"] = "viber"
    with pytest.raises(ConfigError, match="prefers must be one of telegram, zalo, web"):
        parse_commune(raw)
