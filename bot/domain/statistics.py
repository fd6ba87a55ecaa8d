"""Period statistics for report-deadline reminders, computed from plain case facts.

Storage hands over one `CaseFacts` per case created in the period; this module only counts, so
it can be tested without a database and stays fast on large communes (one pass, then a sort of
the response times).

Definitions, so the numbers in a report can be explained to whoever reads it:
- Times are wall-clock minutes from `created_at` to `acknowledged_at` / `assessed_at` (not
  working minutes); a negative difference (clock skew between writers) counts as 0.
- Median: `statistics.median` of the times (mean of the two middle values for an even count).
- p90: nearest rank, the value at 1-based rank ceil(0.9 * n) of the times sorted ascending
  (a value that really occurred, never interpolated): with 10 times the 9th, with 5 the 5th.
- Both are None when no case in the period has that time.
- `assessed_within_12h`: cases assessed at most 12 hours (720 minutes) after creation.
"""

from __future__ import annotations

import statistics
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from bot.domain.cases import AGE_BANDS, CASE_TYPES, OUTCOMES, SEXES, STATUSES, URGENCIES
from bot.domain.periods import Period

# Known keys in display order (tables list these first so reports from different periods
# line up): the case vocabulary's own. A form is a case type as the officer confirmed it.
# routing.triage stores upper-case urgencies; lower-case spellings are folded onto them.
FORMS: Final[tuple[str, ...]] = CASE_TYPES
OPEN: Final[str] = "open"

BREAKDOWNS: Final[tuple[str, ...]] = ("form", "sex", "age_band", "village", "urgency", "status",
                                      "outcome")

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

    def breakdown(self, name: str) -> Counts:
        if name not in BREAKDOWNS:
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
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    return max(0.0, (end - start).total_seconds() / 60)


def village_sort_key(name: str) -> tuple[str, str]:
    """Alphabetical as a Vietnamese reader expects: "Đông" next to "Dưới", not after "Z"."""
    folded = unicodedata.normalize("NFD", name.replace("đ", "d").replace("Đ", "D"))
    base = "".join(ch for ch in folded if not unicodedata.combining(ch)).casefold()
    return base, name


def _ordered(counts: dict[str, int], known: tuple[str, ...], keep_zeros: bool) -> Counts:
    head = [(key, counts.get(key, 0)) for key in known if keep_zeros or counts.get(key, 0)]
    rest = sorted((key, n) for key, n in counts.items() if key not in known)
    return (*head, *rest)


class Tally:
    """Counts cases one at a time, so a period's cases can stream in without being held."""

    def __init__(self, period: Period) -> None:
        self.period = period
        self.by_form: dict[str, int] = {}
        self.by_sex: dict[str, int] = {}
        self.by_age: dict[str, int] = {}
        self.by_village: dict[str, int] = {}
        self.by_urgency: dict[str, int] = {}
        self.by_status: dict[str, int] = {}
        self.by_outcome: dict[str, int] = {}
        self.ack_times: list[float] = []
        self.assess_times: list[float] = []
        self.total = self.within_12h = self.escalated = 0

    def add(self, fact: CaseFacts) -> None:
        self.total += 1
        self.by_form[fact.form] = self.by_form.get(fact.form, 0) + 1
        self.by_sex[fact.sex] = self.by_sex.get(fact.sex, 0) + 1
        self.by_age[fact.age_band] = self.by_age.get(fact.age_band, 0) + 1
        self.by_village[fact.village] = self.by_village.get(fact.village, 0) + 1
        urgency = normalize_urgency(fact.urgency)
        self.by_urgency[urgency] = self.by_urgency.get(urgency, 0) + 1
        self.by_status[fact.status] = self.by_status.get(fact.status, 0) + 1
        outcome = fact.outcome or OPEN
        self.by_outcome[outcome] = self.by_outcome.get(outcome, 0) + 1
        if fact.acknowledged_at is not None:
            self.ack_times.append(_minutes(fact.created_at, fact.acknowledged_at))
        if fact.assessed_at is not None:
            minutes = _minutes(fact.created_at, fact.assessed_at)
            self.assess_times.append(minutes)
            if minutes <= ASSESS_TARGET_MIN:
                self.within_12h += 1
        if fact.escalated:
            self.escalated += 1

    def result(self) -> PeriodStats:
        return PeriodStats(
            period=self.period,
            total=self.total,
            by_form=_ordered(self.by_form, FORMS, keep_zeros=True),
            by_sex=_ordered(self.by_sex, SEXES, keep_zeros=True),
            by_age_band=_ordered(self.by_age, AGE_BANDS, keep_zeros=True),
            # Villages differ per commune, so no fixed rows: by name, "" (unknown) first.
            by_village=tuple(sorted(self.by_village.items(),
                                    key=lambda kv: village_sort_key(kv[0]))),
            by_urgency=_ordered(self.by_urgency, URGENCIES, keep_zeros=True),
            by_status=_ordered(self.by_status, STATUSES, keep_zeros=False),
            by_outcome=_ordered(self.by_outcome, (*OUTCOMES, OPEN), keep_zeros=False),
            ack_median_min=median(self.ack_times),
            ack_p90_min=p90(self.ack_times),
            assess_median_min=median(self.assess_times),
            assess_p90_min=p90(self.assess_times),
            acknowledged=len(self.ack_times),
            assessed=len(self.assess_times),
            assessed_within_12h=self.within_12h,
            escalated=self.escalated,
        )


def compute(period: Period, facts: Iterable[CaseFacts]) -> PeriodStats:
    """Count `facts` (already limited by storage to cases created in `period`)."""
    tally = Tally(period)
    for fact in facts:
        tally.add(fact)
    return tally.result()
