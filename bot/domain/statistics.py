"""Period statistics for report-deadline reminders, computed from plain case facts.

The database counts a period's cases by breakdown and hands over the times of each case that
has one (`Tally.add_counted`, `add_cases`, `add_times`); `compute` counts `CaseFacts`, one per
case, the same way. This module only counts, so it can be tested without a database.

Definitions, so the numbers in a report can be explained to whoever reads it:
- Times are wall-clock minutes from `created_at` to `acknowledged_at` / `assessed_at` (not
  working minutes); a negative difference (clock skew between writers) counts as 0.
- Median: `statistics.median` of the times (mean of the two middle values for an even count).
- p90: nearest rank, the value at 1-based rank ceil(0.9 * n) of the times sorted ascending
  (a value that really occurred, never interpolated): with 10 times the 9th, with 5 the 5th.
- Both are None when no case in the period has that time.
- `assessed_within_12h`: cases assessed at most 12 hours (720 minutes) after creation.
- Every breakdown lists all its known values, zeros included, so tables of different periods
  line up: the case vocabulary's forms, sexes, age bands, urgencies, statuses and outcomes,
  and the commune's villages (given to `compute`/`Tally`) with "" (village unknown).
- Durations are shown rounded up to whole minutes (`duration_parts`): the figures are read as
  "within", and a wait of a few seconds is "1 minute", never "0 hours".
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from bot.domain.cases import (
    AGE_BANDS,
    CASE_TYPES,
    OUTCOMES,
    SETTINGS,
    SEXES,
    STATUSES,
    URGENCIES,
)
from bot.domain.folding import without_marks
from bot.domain.periods import Period

# Known keys in display order (tables list these first so reports from different periods
# line up): the case vocabulary's own. A form is a case type as the officer confirmed it.
# routing.triage stores upper-case urgencies; lower-case spellings are folded onto them.
FORMS: Final[tuple[str, ...]] = CASE_TYPES
OPEN: Final[str] = "open"

BREAKDOWNS: Final[tuple[str, ...]] = ("form", "sex", "age_band", "village", "urgency", "status",
                                      "outcome")
# Where the abuse happened, as the officer's assessment records it ("unknown" until then):
# one of indicator 0101's breakdowns (with sex, age group and form). Counted for every
# commune; shown in the province's report, whose breakdowns are these (a village is a
# commune's own, so the province's report breaks down by commune instead).
UNKNOWN_SETTING: Final[str] = "unknown"
SETTING_KEYS: Final[tuple[str, ...]] = (*SETTINGS, UNKNOWN_SETTING)
PROVINCE_BREAKDOWNS: Final[tuple[str, ...]] = ("form", "sex", "age_band", "setting", "urgency",
                                               "status", "outcome")
_ALL_BREAKDOWNS: Final[frozenset[str]] = frozenset((*BREAKDOWNS, *PROVINCE_BREAKDOWNS))

ASSESS_TARGET_MIN: Final[float] = 12 * 60

_URGENCY_ALIASES: Final[dict[str, str]] = {"NORMAL": "STANDARD"}

Counts = tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class CaseFacts:
    code: str
    form: str
    sex: str
    age_band: str
    village: str
    urgency: str
    status: str
    outcome: str | None
    created_at: datetime
    acknowledged_at: datetime | None
    assessed_at: datetime | None
    escalated: bool
    setting: str | None = None


@dataclass(frozen=True)
class PeriodStats:
    period: Period
    total: int
    by_form: Counts
    by_sex: Counts
    by_age_band: Counts
    by_village: Counts
    by_urgency: Counts
    by_status: Counts
    by_outcome: Counts
    ack_median_min: float | None
    ack_p90_min: float | None
    assess_median_min: float | None
    assess_p90_min: float | None
    acknowledged: int
    assessed: int
    assessed_within_12h: int
    escalated: int
    by_setting: Counts = ()

    def breakdown(self, name: str) -> Counts:
        if name not in _ALL_BREAKDOWNS:
            raise KeyError(name)
        result: Counts = getattr(self, f"by_{name}")
        return result


def normalize_urgency(urgency: str) -> str:
    key = urgency.strip().upper()
    return _URGENCY_ALIASES.get(key, key)


def median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def p90(values: list[float]) -> float | None:
    """Nearest-rank 90th percentile: the value at 1-based rank ceil(0.9 * n) of sorted values."""
    if not values:
        return None
    ordered = sorted(values)
    # Integer ceil(9n/10) avoids float rounding (0.9 * n is inexact for many n).
    rank = (9 * len(ordered) + 9) // 10
    return float(ordered[rank - 1])


def _minutes(start: datetime, end: datetime) -> float:
    # SQLite hands back naive datetimes that are UTC by convention; mixing would raise.
    if (start.tzinfo is None) != (end.tzinfo is None):
        start = start.replace(tzinfo=start.tzinfo or UTC)
        end = end.replace(tzinfo=end.tzinfo or UTC)
    return max(0.0, (end - start).total_seconds() / 60)


def _minutes_after(start: datetime, end: datetime) -> float:
    """`_minutes`, checking naive against aware times only when subtracting them fails: a
    province's year is 75,000 cases with a time."""
    try:
        minutes = (end - start).total_seconds() / 60
    except TypeError:
        return _minutes(start, end)
    return minutes if minutes > 0 else 0.0


def village_sort_key(name: str) -> tuple[str, str]:
    """Alphabetical as a Vietnamese reader expects: "Đông" next to "Dưới", not after "Z"."""
    return without_marks(name), name


def whole_minutes(minutes: float) -> int:
    """Minutes rounded up, at least 1: "within 1 minute" is true of a 20-second wait."""
    # A hair of float error (2700 s / 60) must not turn 45 minutes into 46.
    return max(1, math.ceil(round(minutes, 6)))


def duration_parts(minutes: float) -> tuple[int, int, int]:
    """(days, hours, minutes) a reader is shown for a duration, rounded up: under an hour in
    minutes (12 min), under a day in hours and minutes (2 h 5 min), else days and hours
    (1 day 3 h)."""
    total = whole_minutes(minutes)
    if total < 60:
        return 0, 0, total
    if total < 24 * 60:
        return 0, total // 60, total % 60
    hours = math.ceil(total / 60)
    return hours // 24, hours % 24, 0


def _ordered(counts: dict[str, int], known: tuple[str, ...]) -> Counts:
    head = [(key, counts.get(key, 0)) for key in known]
    rest = sorted((key, n) for key, n in counts.items() if key not in known)
    return (*head, *rest)


def _villages(counts: dict[str, int], known: Iterable[str]) -> Counts:
    """Every village of the commune and "" (unknown), zeros too, then any other name a case
    still carries, all by name ("" first)."""
    merged = dict.fromkeys(("", *known), 0) | counts
    return tuple(sorted(merged.items(), key=lambda kv: village_sort_key(kv[0])))


# The Tally dictionary behind each breakdown.
_TALLY_OF: Final[dict[str, str]] = {
    "form": "by_form", "sex": "by_sex", "age_band": "by_age", "village": "by_village",
    "urgency": "by_urgency", "status": "by_status", "outcome": "by_outcome",
    "setting": "by_setting",
}


class Tally:
    """Counts cases one at a time (`add`, `count`) or as the database counted them
    (`add_counted`, `add_cases`, `add_times`), so a period's cases are never all held."""

    def __init__(self, period: Period, villages: Iterable[str] = ()) -> None:
        self.period = period
        self.villages = tuple(villages)
        self.by_form: dict[str, int] = {}
        self.by_sex: dict[str, int] = {}
        self.by_age: dict[str, int] = {}
        self.by_village: dict[str, int] = {}
        self.by_urgency: dict[str, int] = {}
        self.by_status: dict[str, int] = {}
        self.by_outcome: dict[str, int] = {}
        self.by_setting: dict[str, int] = {}
        self.ack_times: list[float] = []
        self.assess_times: list[float] = []
        self.total = self.within_12h = self.escalated = 0

    def add(self, fact: CaseFacts) -> None:
        self.count(fact.form, fact.sex, fact.age_band, fact.village, fact.urgency, fact.status,
                   fact.outcome, fact.setting, fact.created_at, fact.acknowledged_at,
                   fact.assessed_at, fact.escalated)

    def count(self, form: str, sex: str, age_band: str, village: str, urgency: str,
              status: str, outcome: str | None, setting: str | None, created_at: datetime,
              acknowledged_at: datetime | None, assessed_at: datetime | None,
              escalated: bool) -> None:
        """`add` without a CaseFacts: a province's year is a hundred thousand cases, and
        building each one's costs as much as counting it."""
        self.total += 1
        by = self.by_form
        by[form] = by.get(form, 0) + 1
        by = self.by_sex
        by[sex] = by.get(sex, 0) + 1
        by = self.by_age
        by[age_band] = by.get(age_band, 0) + 1
        by = self.by_village
        by[village] = by.get(village, 0) + 1
        # Folded onto their spelling in `result`.
        by = self.by_urgency
        by[urgency] = by.get(urgency, 0) + 1
        by = self.by_status
        by[status] = by.get(status, 0) + 1
        outcome = outcome or OPEN
        by = self.by_outcome
        by[outcome] = by.get(outcome, 0) + 1
        setting = setting or UNKNOWN_SETTING
        by = self.by_setting
        by[setting] = by.get(setting, 0) + 1
        self.add_times(created_at, acknowledged_at, assessed_at)
        if escalated:
            self.escalated += 1

    def add_counted(self, breakdown: str, value: str | None, n: int) -> None:
        """`n` cases with this value of one breakdown, as the database counted them (with
        `add_cases` for their total and `add_times` for each one's times): no outcome is
        OPEN, no setting UNKNOWN_SETTING, as `count` has them."""
        if breakdown == "outcome":
            value = value or OPEN
        elif breakdown == "setting":
            value = value or UNKNOWN_SETTING
        elif value is None:
            raise ValueError(f"no {breakdown}")
        by: dict[str, int] = getattr(self, _TALLY_OF[breakdown])
        by[value] = by.get(value, 0) + n

    def add_cases(self, n: int, escalated: bool) -> None:
        """`n` more cases in the total, all escalated or none."""
        self.total += n
        if escalated:
            self.escalated += n

    def add_times(self, created_at: datetime, acknowledged_at: datetime | None,
                  assessed_at: datetime | None) -> None:
        """One case's times (of every case that has one, so the medians are exact)."""
        if acknowledged_at is not None:
            self.ack_times.append(_minutes_after(created_at, acknowledged_at))
        if assessed_at is not None:
            minutes = _minutes_after(created_at, assessed_at)
            self.assess_times.append(minutes)
            if minutes <= ASSESS_TARGET_MIN:
                self.within_12h += 1

    def result(self) -> PeriodStats:
        urgencies: dict[str, int] = {}
        for urgency, n in self.by_urgency.items():
            key = normalize_urgency(urgency)
            urgencies[key] = urgencies.get(key, 0) + n
        return PeriodStats(
            period=self.period,
            total=self.total,
            by_form=_ordered(self.by_form, FORMS),
            by_sex=_ordered(self.by_sex, SEXES),
            by_age_band=_ordered(self.by_age, AGE_BANDS),
            by_village=_villages(self.by_village, self.villages),
            by_urgency=_ordered(urgencies, URGENCIES),
            by_status=_ordered(self.by_status, STATUSES),
            by_outcome=_ordered(self.by_outcome, (*OUTCOMES, OPEN)),
            ack_median_min=median(self.ack_times),
            ack_p90_min=p90(self.ack_times),
            assess_median_min=median(self.assess_times),
            assess_p90_min=p90(self.assess_times),
            acknowledged=len(self.ack_times),
            assessed=len(self.assess_times),
            assessed_within_12h=self.within_12h,
            escalated=self.escalated,
            by_setting=_ordered(self.by_setting, SETTING_KEYS),
        )

    @classmethod
    def combined(cls, period: Period, parts: Iterable[Tally]) -> Tally:
        """One tally of all the parts' cases (a province's, from its communes' tallies):
        every count the sum of the parts' counts, every time of every part kept, so the
        medians and p90s are those of all the cases, not an average of the parts'."""
        whole = cls(period)
        for part in parts:
            for name in _TALLY_OF.values():
                into: dict[str, int] = getattr(whole, name)
                for key, n in getattr(part, name).items():
                    into[key] = into.get(key, 0) + n
            whole.ack_times += part.ack_times
            whole.assess_times += part.assess_times
            whole.total += part.total
            whole.within_12h += part.within_12h
            whole.escalated += part.escalated
        return whole


def compute(period: Period, facts: Iterable[CaseFacts],
            villages: Iterable[str] = ()) -> PeriodStats:
    """Count `facts` (already limited by storage to cases created in `period`); `villages`
    are the commune's village names, listed even when no case came from them."""
    tally = Tally(period, villages)
    for fact in facts:
        tally.add(fact)
    return tally.result()
