"""Period statistics as files to attach to a report reminder: XLSX, CSV and a PNG chart.

All display text comes from a `Labels` callable so this module needs no catalogs and can render
in any language. `LABEL_KEYS` is the fixed set of keys every caller should provide;
`label_keys(stats)` adds keys for values outside the known lists (say a new case form) that a
given `PeriodStats` contains. A key the callable does not know (KeyError) is shown as the key
itself, so a new form can never stop a report from being built. Village names are shown as they
are; the unknown village ("") uses "village.unknown".
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from typing import Final

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import MaxNLocator
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from bot.domain.statistics import (
    AGE_BANDS,
    BREAKDOWNS,
    FORMS,
    OPEN,
    OUTCOMES,
    SEXES,
    STATUSES,
    URGENCIES,
    PeriodStats,
)

Labels = Callable[[str], str]

# The kind of label (its key's first part) for a value of each breakdown: an age band's is
# "age.<band>"; village names need no label.
VALUE_KIND: Final[dict[str, str]] = {
    "form": "form", "sex": "sex", "age_band": "age", "urgency": "urgency",
    "status": "status", "outcome": "outcome",
}
# The values each labelled breakdown knows.
KNOWN_VALUES: Final[dict[str, tuple[str, ...]]] = {
    "form": FORMS, "sex": SEXES, "age_band": AGE_BANDS, "urgency": URGENCIES,
    "status": STATUSES, "outcome": (*OUTCOMES, OPEN),
}


def value_key(breakdown: str, value: str) -> str:
    """The label key of a breakdown's value: ("age_band", "0-5") -> "age.0-5"."""
    return f"{VALUE_KIND[breakdown]}.{value}"


# Summary rows in order: (label key, PeriodStats attribute, value is minutes shown as hours).
SUMMARY_ROWS: Final[tuple[tuple[str, str, bool], ...]] = (
    ("summary.total", "total", False),
    ("summary.acknowledged", "acknowledged", False),
    ("summary.assessed", "assessed", False),
    ("summary.ack_median", "ack_median_min", True),
    ("summary.ack_p90", "ack_p90_min", True),
    ("summary.assess_median", "assess_median_min", True),
    ("summary.assess_p90", "assess_p90_min", True),
    ("summary.assessed_within_12h", "assessed_within_12h", False),
    ("summary.escalated", "escalated", False),
)

LABEL_KEYS: Final[tuple[str, ...]] = (
    "sheet.summary",
    *(f"sheet.{name}" for name in BREAKDOWNS),
    "summary.period",
    *(key for key, _, _ in SUMMARY_ROWS),
    "col.count", "col.share", "col.breakdown", "col.key", "col.item",
    "chart.no_data",
    "village.unknown",
    *(value_key(name, value) for name, values in KNOWN_VALUES.items() for value in values),
)

# The charted breakdowns, in panel order (left to right, top to bottom).
CHART_PANELS: Final[tuple[str, ...]] = ("form", "age_band", "village", "outcome")

_FONT_FAMILY: Final[str] = "DejaVu Sans"  # ships with matplotlib and covers Vietnamese
_SHEET_NAME_MAX: Final[int] = 31
_SHEET_NAME_BAD = re.compile(r"[\[\]:*?/\\]")
_HOURS_FORMAT: Final[str] = "0.0"
_SHARE_FORMAT: Final[str] = "0.0%"


def label_keys(stats: PeriodStats) -> tuple[str, ...]:
    """`LABEL_KEYS` plus keys for any value in `stats` outside the known lists."""
    extra = [value_key(name, key) for name in BREAKDOWNS if name != "village"
             for key, _ in stats.breakdown(name) if key not in KNOWN_VALUES[name]]
    return (*LABEL_KEYS, *dict.fromkeys(extra))


def _text(labels: Labels, key: str) -> str:
    try:
        return labels(key)
    except KeyError:
        return key


def value_label(labels: Labels, breakdown: str, value: str) -> str:
    if breakdown == "village":
        return value if value else _text(labels, "village.unknown")
    return _text(labels, value_key(breakdown, value))


def hours(minutes: float | None) -> float | None:
    return None if minutes is None else round(minutes / 60, 1)


def share(count: int, total: int) -> float:
    return count / total if total else 0.0


def _sheet_names(wanted: list[str]) -> list[str]:
    """Excel limits: at most 31 chars, none of []:*?/\\, unique ignoring case, not blank."""
    names: list[str] = []
    taken: set[str] = set()
    for raw in wanted:
        base = _SHEET_NAME_BAD.sub("_", raw).strip().strip("'") or "Sheet"
        name = base[:_SHEET_NAME_MAX]
        counter = 2
        while name.casefold() in taken:
            suffix = f" ({counter})"
            name = base[:_SHEET_NAME_MAX - len(suffix)] + suffix
            counter += 1
        taken.add(name.casefold())
        names.append(name)
    return names


def _fit_columns(sheet: Worksheet, widths: dict[int, int]) -> None:
    for column, width in widths.items():
        sheet.column_dimensions[get_column_letter(column)].width = min(60, max(10, width + 2))


def to_xlsx(stats: PeriodStats, labels: Labels, title: str) -> bytes:
    """Summary sheet first, then one sheet per breakdown (label, count, share)."""
    book = Workbook()
    summary = book.active
    assert summary is not None  # a new Workbook always has one sheet
    names = _sheet_names([_text(labels, "sheet.summary"),
                          *(_text(labels, f"sheet.{name}") for name in BREAKDOWNS)])
    summary.title = names[0]
    bold = Font(bold=True)

    summary.append([title])
    summary["A1"].font = Font(bold=True, size=14)
    summary.append([_text(labels, "summary.period"), stats.period.label])
    summary.append([])
    first_width = len(_text(labels, "summary.period"))
    for key, attribute, as_hours in SUMMARY_ROWS:
        value = getattr(stats, attribute)
        text = _text(labels, key)
        first_width = max(first_width, len(text))
        summary.append([text, hours(value) if as_hours else value])
        if as_hours:
            summary.cell(row=summary.max_row, column=2).number_format = _HOURS_FORMAT
    _fit_columns(summary, {1: first_width, 2: 12})

    for name, sheet_name in zip(BREAKDOWNS, names[1:], strict=True):
        sheet = book.create_sheet(sheet_name)
        header = [_text(labels, f"sheet.{name}"), _text(labels, "col.count"),
                  _text(labels, "col.share")]
        sheet.append(header)
        for cell in sheet[1]:
            cell.font = bold
        widths = {1: len(header[0]), 2: len(header[1]), 3: len(header[2])}
        for key, count in stats.breakdown(name):
            text = value_label(labels, name, key)
            widths[1] = max(widths[1], len(text))
            sheet.append([text, count, share(count, stats.total)])
            sheet.cell(row=sheet.max_row, column=3).number_format = _SHARE_FORMAT
        sheet.append([_text(labels, "summary.total"), stats.total,
                      1.0 if stats.total else 0.0])
        for cell in sheet[sheet.max_row]:
            cell.font = bold
        sheet.cell(row=sheet.max_row, column=3).number_format = _SHARE_FORMAT
        sheet.freeze_panes = "A2"
        _fit_columns(sheet, widths)

    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def to_csv(stats: PeriodStats, labels: Labels) -> bytes:
    """UTF-8 with BOM so Excel detects the encoding; one row per (breakdown, value).

    Columns: breakdown label, machine key of the value (stable across languages), value label,
    count. Rows follow `BREAKDOWNS` and each breakdown's order.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([_text(labels, "col.breakdown"), _text(labels, "col.key"),
                     _text(labels, "col.item"), _text(labels, "col.count")])
    for name in BREAKDOWNS:
        heading = _text(labels, f"sheet.{name}")
        for key, count in stats.breakdown(name):
            writer.writerow([heading, key, value_label(labels, name, key), count])
    return out.getvalue().encode("utf-8-sig")


def _panel(ax: Axes, stats: PeriodStats, labels: Labels, name: str) -> None:
    font = FontProperties(family=_FONT_FAMILY, size=9)
    rows = stats.breakdown(name)
    ax.set_title(_text(labels, f"sheet.{name}"), fontproperties=FontProperties(
        family=_FONT_FAMILY, size=11, weight="bold"))
    if not rows:
        ax.text(0.5, 0.5, _text(labels, "chart.no_data"), ha="center", va="center",
                transform=ax.transAxes, fontproperties=font)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        return
    names = [value_label(labels, name, key) for key, _ in rows]
    counts = [count for _, count in rows]
    positions = list(range(len(rows)))
    bars = ax.barh(positions, counts, color="#3b7dd8")
    ax.set_yticks(positions, names)
    # Long lists (villages) get a smaller font so labels do not overlap.
    size = 9 if len(rows) <= 10 else max(5.0, 9 - (len(rows) - 10) * 0.25)
    for tick in ax.get_yticklabels():
        tick.set_fontproperties(FontProperties(family=_FONT_FAMILY, size=size))
    for tick in ax.get_xticklabels():
        tick.set_fontproperties(font)
    ax.invert_yaxis()  # first key on top, as in the tables
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    top = max(counts)
    ax.set_xlim(0, top * 1.15 if top else 1)
    ax.bar_label(bars, fontproperties=font, padding=2)
    ax.spines[["top", "right"]].set_visible(False)


def to_png(stats: PeriodStats, labels: Labels, title: str) -> bytes:
    """A 1000x700 px 2x2 bar chart of form, age band, village and outcome."""
    # Figure + Agg canvas rather than pyplot: no global figure registry, safe off the main thread.
    figure = Figure(figsize=(10, 7), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(f"{title} — {stats.period.label}",
                    fontproperties=FontProperties(family=_FONT_FAMILY, size=14, weight="bold"))
    axes = figure.subplots(2, 2)
    for ax, name in zip(axes.flat, CHART_PANELS, strict=True):
        _panel(ax, stats, labels, name)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=100, metadata={"Software": None})
    return out.getvalue()
