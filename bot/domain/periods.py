"""Reporting periods (month, quarter, half, nine months, year) in commune local time.

Reports are due for calendar periods as the commune sees them, so bounds are local midnights
in Asia/Ho_Chi_Minh turned into UTC instants for querying timestamps stored in UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from bot.domain.local_time import LOCAL_TZ

KINDS: Final[tuple[str, ...]] = ("month", "quarter", "half", "nine_months", "year")

# Highest valid index per kind; half / nine_months / year only ever start in January.
_MAX_INDEX: Final[dict[str, int]] = {
    "month": 12, "quarter": 4, "half": 1, "nine_months": 1, "year": 1,
}

_PATTERNS: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (re.compile(r"(\d{4})-(\d{1,2})"), "month"),
    (re.compile(r"(\d{4})-Q(\d)", re.IGNORECASE), "quarter"),
    (re.compile(r"(\d{4})-H(1)", re.IGNORECASE), "half"),
    (re.compile(r"(\d{4})-9M", re.IGNORECASE), "nine_months"),
    (re.compile(r"(\d{4})"), "year"),
)


def _add_months(year: int, month: int, months: int) -> date:
    zero_based = month - 1 + months
    return date(year + zero_based // 12, zero_based % 12 + 1, 1)


@dataclass(frozen=True)
class Period:
    kind: str
    year: int
    index: int = 1

    def __post_init__(self) -> None:
        if self.kind not in _MAX_INDEX:
            raise ValueError(f"unknown period kind {self.kind!r}")
        if not 1 <= self.index <= _MAX_INDEX[self.kind]:
            raise ValueError(f"index {self.index} out of range for {self.kind}")
        # date() rejects years outside 1..9999; keep room for the exclusive end.
        if not 1 <= self.year <= 9998:
            raise ValueError(f"year {self.year} out of range")

    @property
    def first_month(self) -> int:
        if self.kind == "month":
            return self.index
        if self.kind == "quarter":
            return 3 * (self.index - 1) + 1
        return 1

    @property
    def months(self) -> int:
        return {"month": 1, "quarter": 3, "half": 6, "nine_months": 9, "year": 12}[self.kind]

    @property
    def start_local(self) -> date:
        return date(self.year, self.first_month, 1)

    @property
    def end_local(self) -> date:
        """First local day after the period (exclusive end)."""
        return _add_months(self.year, self.first_month, self.months)

    @property
    def last_local(self) -> date:
        """Last local day of the period, as reports write it ("to 31/12/2026")."""
        return self.end_local - timedelta(days=1)

    def bounds(self) -> tuple[datetime, datetime]:
        """Aware UTC instants of local midnight at start and at the exclusive end."""
        start = datetime.combine(self.start_local, time(0), tzinfo=LOCAL_TZ)
        end = datetime.combine(self.end_local, time(0), tzinfo=LOCAL_TZ)
        return start.astimezone(UTC), end.astimezone(UTC)

    def contains(self, moment: datetime) -> bool:
        start, end = self.bounds()
        return start <= moment < end

    @property
    def label(self) -> str:
        if self.kind == "month":
            return f"{self.year:04d}-{self.index:02d}"
        if self.kind == "quarter":
            return f"{self.year:04d}-Q{self.index}"
        if self.kind == "half":
            return f"{self.year:04d}-H1"
        if self.kind == "nine_months":
            return f"{self.year:04d}-9M"
        return f"{self.year:04d}"

    def __str__(self) -> str:
        return self.label


def parse_period(text: str) -> Period:
    """Parse "2026-06", "2026-Q2", "2026-H1", "2026-9M" or "2026"; ValueError otherwise."""
    cleaned = text.strip()
    for pattern, kind in _PATTERNS:
        match = pattern.fullmatch(cleaned)
        if match is None:
            continue
        groups = match.groups()
        index = int(groups[1]) if len(groups) > 1 else 1
        return Period(kind, int(groups[0]), index)
    raise ValueError(f"not a period: {text!r}")


_COVERS: Final[dict[str, tuple[str, int]]] = {
    "Q1": ("quarter", 1), "Q2": ("quarter", 2), "Q3": ("quarter", 3), "Q4": ("quarter", 4),
    "H1": ("half", 1), "9M": ("nine_months", 1), "Y": ("year", 1),
}


def covering(covers: str, year: int, month: int | None = None) -> Period:
    """Period a report deadline covers: "Q1".."Q4", "H1", "9M", "Y", or "M" with `month`."""
    key = covers.strip().upper()
    if key == "M":
        if month is None:
            raise ValueError("covers 'M' needs a month")
        return Period("month", year, month)
    if key not in _COVERS:
        raise ValueError(f"unknown coverage {covers!r}")
    kind, index = _COVERS[key]
    return Period(kind, year, index)
