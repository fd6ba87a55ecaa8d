"""Period statistics as files to attach to a report reminder: XLSX, CSV and a PNG chart.

All display text comes from a `Labels` callable so this module needs no catalogs and can render
in any language. `LABEL_KEYS` is the fixed set of keys every caller should provide;
`label_keys(stats)` adds keys for values outside the known lists (say a new case form) that a
given `PeriodStats` contains. A key the callable does not know (KeyError) is shown as the key
itself, so a new form can never stop a report from being built. Village names are shown as they
are; the unknown village ("") uses "village.unknown". Durations come as texts from a
`Durations` callable ("45 phút"), beside their whole minutes.

The chart is drawn for a phone: one breakdown under the other, each value's name above its
bar across the whole width, and every text at least `PHONE_MIN_TEXT_PX` tall when the image
is shown `PHONE_WIDTH_PX` wide (tests/test_statistics.py measures it).
"""

from __future__ import annotations

import csv
import io
import re
import textwrap
from collections.abc import Callable
from datetime import datetime
from typing import Final

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from bot.domain.local_time import LOCAL_TZ
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
    whole_minutes,
)

Labels = Callable[[str], str]
# A duration in minutes as a reader's text, with its units: 45 -> "45 phút".
Durations = Callable[[float], str]

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


# Summary rows in order: (label key, PeriodStats attribute, value is a duration in minutes).
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
    "summary.period", "summary.start", "summary.end", "summary.as_of",
    *(key for key, _, _ in SUMMARY_ROWS),
    "col.count", "col.share", "col.breakdown", "col.key", "col.item",
    "chart.no_data",
    "village.unknown",
    *(value_key(name, value) for name, values in KNOWN_VALUES.items() for value in values),
)

# The charted breakdowns, in panel order (top to bottom).
CHART_PANELS: Final[tuple[str, ...]] = ("form", "age_band", "village", "outcome")

# A phone shows a photo about 360 px wide; its smallest text should still be this tall there.
PHONE_WIDTH_PX: Final[int] = 360
PHONE_MIN_TEXT_PX: Final[float] = 10.5
CHART_DPI: Final[int] = 100
CHART_WIDTH_IN: Final[float] = 7.2  # 720 px: 16 pt is 11 px on a 360 px screen
_ROW_IN: Final[float] = 0.62  # a value's name and its bar
_PANEL_HEAD_IN: Final[float] = 0.9  # a breakdown's title
_TITLE_IN: Final[float] = 1.5  # the chart's title, its period and dates
_TEXT_PT: Final[float] = 16
_PANEL_TITLE_PT: Final[float] = 17
_TITLE_PT: Final[float] = 18
_TITLE_WRAP: Final[int] = 36  # characters per line of the title at _TITLE_PT on 720 px
_BAR_COLOR: Final[str] = "#3b7dd8"

_FONT_FAMILY: Final[str] = "DejaVu Sans"  # ships with matplotlib and covers Vietnamese
_SHEET_NAME_MAX: Final[int] = 31
_SHEET_NAME_BAD = re.compile(r"[\[\]:*?/\\]")
_MINUTES_FORMAT: Final[str] = "0"
_DATE_FORMAT: Final[str] = "dd/mm/yyyy"
_DATETIME_FORMAT: Final[str] = "dd/mm/yyyy hh:mm"
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


def minutes_cell(minutes: float | None) -> int | None:
    """A duration as the workbook's number: whole minutes, rounded up (None stays blank)."""
    return None if minutes is None else whole_minutes(minutes)


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


def to_xlsx(stats: PeriodStats, labels: Labels, title: str, as_of: datetime,
            durations: Durations) -> bytes:
    """Summary sheet first (the period, its first and last day, when the figures were taken,
    then the counts and times), then one sheet per breakdown (label, count, share)."""
    book = Workbook()
    summary = book.active
    assert summary is not None  # a new Workbook always has one sheet
    names = _sheet_names([_text(labels, "sheet.summary"),
                          *(_text(labels, f"sheet.{name}") for name in BREAKDOWNS)])
    summary.title = names[0]
    bold = Font(bold=True)
    period = stats.period

    summary.append([title])
    summary["A1"].font = Font(bold=True, size=14)
    # Excel has no time zones: the commune's local time, as the officers read it.
    taken = as_of.astimezone(LOCAL_TZ).replace(tzinfo=None)
    heads = [(_text(labels, "summary.period"), period.label, None),
             (_text(labels, "summary.start"), period.start_local, _DATE_FORMAT),
             (_text(labels, "summary.end"), period.last_local, _DATE_FORMAT),
             (_text(labels, "summary.as_of"), taken, _DATETIME_FORMAT)]
    for text, value, number_format in heads:
        summary.append([text, value])
        if number_format is not None:
            summary.cell(row=summary.max_row, column=2).number_format = number_format
    summary.append([])
    first_width = max(len(text) for text, _, _ in heads)
    third_width = 0
    for key, attribute, is_duration in SUMMARY_ROWS:
        value = getattr(stats, attribute)
        text = _text(labels, key)
        first_width = max(first_width, len(text))
        if not is_duration:
            summary.append([text, value])
            continue
        words = None if value is None else durations(value)
        third_width = max(third_width, len(words or ""))
        summary.append([text, minutes_cell(value), words])
        summary.cell(row=summary.max_row, column=2).number_format = _MINUTES_FORMAT
    _fit_columns(summary, {1: first_width, 2: 16, 3: third_width})

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
    """One breakdown across the figure's width: each value's name, its bar below, the count
    at the bar's end; the first value on top, as in the tables."""
    font = FontProperties(family=_FONT_FAMILY, size=_TEXT_PT)
    rows = stats.breakdown(name)
    ax.set_title(_text(labels, f"sheet.{name}"), loc="left", pad=12,
                 fontproperties=FontProperties(family=_FONT_FAMILY, size=_PANEL_TITLE_PT,
                                               weight="bold"))
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if not rows or not stats.total:
        ax.text(0, 0.5, _text(labels, "chart.no_data"), ha="left", va="center",
                transform=ax.transAxes, fontproperties=font)
        return
    counts = [count for _, count in rows]
    positions = list(range(len(rows)))
    bars = ax.barh(positions, counts, height=0.36, color=_BAR_COLOR)
    ax.set_ylim(len(rows) - 0.5, -0.75)  # inverted: the first value on top
    top = max(counts)
    ax.set_xlim(0, top * 1.12 if top else 1)
    for position, (key, _) in zip(positions, rows, strict=True):
        ax.text(0, position - 0.22, value_label(labels, name, key), ha="left", va="bottom",
                fontproperties=font)
    ax.bar_label(bars, fontproperties=font, padding=4)


def chart(stats: PeriodStats, labels: Labels, title: str) -> Figure:
    """The figure `to_png` saves: a tall column of CHART_PANELS, sized by their rows."""
    # Without a case each panel is one line: "no data".
    heights = [_PANEL_HEAD_IN + _ROW_IN * (max(1, len(stats.breakdown(name))) if stats.total
                                           else 1)
               for name in CHART_PANELS]
    # Figure + Agg canvas rather than pyplot: no global figure registry, safe off the main thread.
    figure = Figure(figsize=(CHART_WIDTH_IN, _TITLE_IN + sum(heights)), dpi=CHART_DPI,
                    layout="constrained")
    FigureCanvasAgg(figure)
    period = stats.period
    dates = (f"{period.start_local:%d/%m/%Y} – {period.last_local:%d/%m/%Y}")
    figure.suptitle(f"{textwrap.fill(title, _TITLE_WRAP)}\n{period.label}: {dates}",
                    fontproperties=FontProperties(family=_FONT_FAMILY, size=_TITLE_PT,
                                                  weight="bold"))
    axes = figure.subplots(len(CHART_PANELS), 1, height_ratios=heights, squeeze=False)
    for ax, name in zip(axes[:, 0], CHART_PANELS, strict=True):
        _panel(ax, stats, labels, name)
    return figure


def to_png(stats: PeriodStats, labels: Labels, title: str) -> bytes:
    """The chart as a PNG, 720 px wide and as tall as its rows need."""
    out = io.BytesIO()
    chart(stats, labels, title).savefig(out, format="png", dpi=CHART_DPI,
                                        metadata={"Software": None})
    return out.getvalue()
