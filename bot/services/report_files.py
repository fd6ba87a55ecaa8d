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

A province's report (`province_xlsx`, `province_png`) has the same summary of the whole
province, then a sheet per breakdown of `PROVINCE_BREAKDOWNS` with a row per commune, a
column per value and a total row (the province's own figures); its chart is the cases of
each commune, then the province's form, sex, age group and setting (indicator 0101).
"""

from __future__ import annotations

import csv
import io
import re
import textwrap
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Final

# matplotlib, openpyxl and Pillow are imported by the functions that draw and write: they
# cost a process some 70 MB and 0.6 s at start, and only a report needs them.
if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from openpyxl import Workbook
    from openpyxl.worksheet.worksheet import Worksheet

from bot.domain.local_time import LOCAL_TZ
from bot.domain.statistics import (
    AGE_BANDS,
    BREAKDOWNS,
    FORMS,
    OPEN,
    OUTCOMES,
    PROVINCE_BREAKDOWNS,
    SETTING_KEYS,
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
    "status": "status", "outcome": "outcome", "setting": "setting",
}
# The values each labelled breakdown knows.
KNOWN_VALUES: Final[dict[str, tuple[str, ...]]] = {
    "form": FORMS, "sex": SEXES, "age_band": AGE_BANDS, "urgency": URGENCIES,
    "status": STATUSES, "outcome": (*OUTCOMES, OPEN), "setting": SETTING_KEYS,
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
    # A province's report: its breakdowns by setting and by commune.
    "sheet.setting", "sheet.commune", "col.commune",
    "summary.period", "summary.start", "summary.end", "summary.as_of",
    *(key for key, _, _ in SUMMARY_ROWS),
    "col.count", "col.share", "col.breakdown", "col.key", "col.item",
    "chart.no_data",
    "village.unknown",
    *(value_key(name, value) for name, values in KNOWN_VALUES.items() for value in values),
)

# The charted breakdowns, in panel order (top to bottom).
CHART_PANELS: Final[tuple[str, ...]] = ("form", "age_band", "village", "outcome")
# A province's, under its cases per commune: indicator 0101's breakdowns.
PROVINCE_CHART_PANELS: Final[tuple[str, ...]] = ("form", "sex", "age_band", "setting")

# A phone shows a photo about 360 px wide; its smallest text should still be this tall there.
PHONE_WIDTH_PX: Final[int] = 360
PHONE_MIN_TEXT_PX: Final[float] = 10.5
CHART_DPI: Final[int] = 100
CHART_WIDTH_IN: Final[float] = 7.2  # 720 px: 16 pt is 11 px on a 360 px screen
_ROW_IN: Final[float] = 0.62  # a value's name and its bar
_COMMUNE_ROW_IN: Final[float] = 0.42  # a commune's name and its bar
_PANEL_FOOT_IN: Final[float] = 0.25  # a province chart's space under a panel's last bar
_SIDE_IN: Final[float] = 0.08  # and at its left and right
_PANEL_HEAD_IN: Final[float] = 0.9  # a breakdown's title
_TITLE_IN: Final[float] = 1.5  # the chart's title, its period and dates
_TEXT_PT: Final[float] = 16
_PANEL_TITLE_PT: Final[float] = 17
_TITLE_PT: Final[float] = 18
_TITLE_WRAP: Final[int] = 36  # characters per line of the title at _TITLE_PT on 720 px
_BAR_COLOR: Final[str] = "#3b7dd8"
_BAR_HEIGHT: Final[float] = 0.36  # of a row's 1
# zlib's level 3 rather than Pillow's 6: a province's chart (720 x 6,000 px) is written
# in a third of the time, and is no larger than matplotlib's RGBA at level 6.
_PNG_COMPRESSION: Final[int] = 3

_FONT_FAMILY: Final[str] = "DejaVu Sans"  # ships with matplotlib and covers Vietnamese
_SHEET_NAME_MAX: Final[int] = 31
_SHEET_NAME_BAD = re.compile(r"[\[\]:*?/\\]")
_MINUTES_FORMAT: Final[str] = "0"
_DATE_FORMAT: Final[str] = "dd/mm/yyyy"
_DATETIME_FORMAT: Final[str] = "dd/mm/yyyy hh:mm"
_SHARE_FORMAT: Final[str] = "0.0%"


def label_keys(stats: PeriodStats) -> tuple[str, ...]:
    """`LABEL_KEYS` plus keys for any value in `stats` outside the known lists."""
    extra = [value_key(name, key) for name in (*BREAKDOWNS, "setting") if name != "village"
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
    from openpyxl.utils import get_column_letter

    for column, width in widths.items():
        sheet.column_dimensions[get_column_letter(column)].width = min(60, max(10, width + 2))


def to_xlsx(stats: PeriodStats, labels: Labels, title: str, as_of: datetime,
            durations: Durations) -> bytes:
    """Summary sheet first (the period, its first and last day, when the figures were taken,
    then the counts and times), then one sheet per breakdown (label, count, share)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    names = _sheet_names([_text(labels, "sheet.summary"),
                          *(_text(labels, f"sheet.{name}") for name in BREAKDOWNS)])
    _summary_sheet(book, names[0], stats, labels, title, as_of, durations)
    bold = Font(bold=True)

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


def _summary_sheet(book: Workbook, name: str, stats: PeriodStats, labels: Labels, title: str,
                   as_of: datetime, durations: Durations) -> None:
    """The workbook's first sheet: the period, its first and last day, when the figures
    were taken, then the counts and times."""
    from openpyxl.styles import Font

    summary = book.active
    assert summary is not None  # a new Workbook always has one sheet
    summary.title = name
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


def province_xlsx(province: PeriodStats, communes: Sequence[tuple[str, PeriodStats]],
                  labels: Labels, title: str, as_of: datetime, durations: Durations) -> bytes:
    """The province's summary sheet, then a sheet per breakdown of `PROVINCE_BREAKDOWNS`:
    a row per commune (in the order given) with its count of each value and its total,
    then the province's row (`province`: the communes' cases counted together)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    names = _sheet_names([_text(labels, "sheet.summary"),
                          *(_text(labels, f"sheet.{name}") for name in PROVINCE_BREAKDOWNS)])
    _summary_sheet(book, names[0], province, labels, title, as_of, durations)
    bold = Font(bold=True)
    total_text = _text(labels, "summary.total")
    for name, sheet_name in zip(PROVINCE_BREAKDOWNS, names[1:], strict=True):
        sheet = book.create_sheet(sheet_name)
        # The province's values: every known one, and any a commune's case carries.
        keys = [key for key, _ in province.breakdown(name)]
        header = [_text(labels, "col.commune"),
                  *(value_label(labels, name, key) for key in keys), total_text]
        sheet.append(header)
        for cell in sheet[1]:
            cell.font = bold
        widths = {n: len(text) for n, text in enumerate(header, start=1)}
        for commune, stats in communes:
            counts = dict(stats.breakdown(name))
            sheet.append([commune, *(counts.get(key, 0) for key in keys), stats.total])
            widths[1] = max(widths[1], len(commune))
        sheet.append([total_text, *(n for _, n in province.breakdown(name)), province.total])
        for cell in sheet[sheet.max_row]:
            cell.font = bold
        sheet.freeze_panes = "B2"
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
    rows = [(value_label(labels, name, key), count) for key, count in stats.breakdown(name)]
    _bars(ax, _text(labels, f"sheet.{name}"), rows, stats.total, labels)


def _bars(ax: Axes, heading: str, rows: Sequence[tuple[str, int]], total: int,
          labels: Labels) -> None:
    """A panel of named bars, the first on top (`_panel`)."""
    from matplotlib.collections import PolyCollection
    from matplotlib.font_manager import FontProperties
    from matplotlib.transforms import ScaledTranslation

    font = FontProperties(family=_FONT_FAMILY, size=_TEXT_PT)
    ax.set_title(heading, loc="left", pad=12,
                 fontproperties=FontProperties(family=_FONT_FAMILY, size=_PANEL_TITLE_PT,
                                               weight="bold"))
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if not rows or not total:
        ax.text(0, 0.5, _text(labels, "chart.no_data"), ha="left", va="center",
                transform=ax.transAxes, fontproperties=font)
        return
    counts = [count for _, count in rows]
    positions = list(range(len(rows)))
    # The bars `barh(positions, counts, height=0.36)` draws, as one collection: a bar a
    # patch costs a millisecond to add, and a province has 166 communes.
    half = _BAR_HEIGHT / 2
    ax.add_collection(PolyCollection(
        [((0, y - half), (n, y - half), (n, y + half), (0, y + half))
         for y, n in zip(positions, counts, strict=True)],
        facecolors=_BAR_COLOR, edgecolors="none", linewidths=0), autolim=False)
    ax.set_ylim(len(rows) - 0.5, -0.75)  # inverted: the first value on top
    top = max(counts)
    ax.set_xlim(0, top * 1.12 if top else 1)
    # Each count 4 points past its bar's end, as `bar_label` puts it, but as a plain text:
    # an annotation costs three times as much to draw, and a province has 166 communes.
    past_end = ax.transData + ScaledTranslation(4 / 72, 0, ax.figure.dpi_scale_trans)
    for position, (text, count) in zip(positions, rows, strict=True):
        ax.text(0, position - 0.22, text, ha="left", va="bottom", fontproperties=font)
        ax.text(count, position, f"{count:g}", ha="left", va="center", fontproperties=font,
                transform=past_end)


def chart(stats: PeriodStats, labels: Labels, title: str) -> Figure:
    """The figure `to_png` saves: a tall column of CHART_PANELS, sized by their rows."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Without a case each panel is one line: "no data".
    heights = [_PANEL_HEAD_IN + _ROW_IN * (max(1, len(stats.breakdown(name))) if stats.total
                                           else 1)
               for name in CHART_PANELS]
    # Figure + Agg canvas rather than pyplot: no global figure registry, safe off the main thread.
    figure = Figure(figsize=(CHART_WIDTH_IN, _TITLE_IN + sum(heights)), dpi=CHART_DPI,
                    layout="constrained")
    FigureCanvasAgg(figure)
    _suptitle(figure, stats, title)
    axes = figure.subplots(len(CHART_PANELS), 1, height_ratios=heights, squeeze=False)
    for ax, name in zip(axes[:, 0], CHART_PANELS, strict=True):
        _panel(ax, stats, labels, name)
    return figure


def _suptitle(figure: Figure, stats: PeriodStats, title: str, **where: float | str) -> None:
    from matplotlib.font_manager import FontProperties

    period = stats.period
    dates = (f"{period.start_local:%d/%m/%Y} – {period.last_local:%d/%m/%Y}")
    figure.suptitle(f"{textwrap.fill(title, _TITLE_WRAP)}\n{period.label}: {dates}",
                    fontproperties=FontProperties(family=_FONT_FAMILY, size=_TITLE_PT,
                                                  weight="bold"), **where)


def _png(figure: Figure) -> bytes:
    """The figure drawn by Agg, saved as RGB: the chart is opaque, and without the alpha
    channel there is a quarter less to compress."""
    from PIL import Image

    canvas = figure.canvas
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(),
                             canvas.buffer_rgba()).convert("RGB")  # type: ignore[attr-defined]
    out = io.BytesIO()
    image.save(out, format="png", compress_level=_PNG_COMPRESSION, dpi=(CHART_DPI, CHART_DPI))
    return out.getvalue()


def to_png(stats: PeriodStats, labels: Labels, title: str) -> bytes:
    """The chart as a PNG, 720 px wide and as tall as its rows need."""
    return _png(chart(stats, labels, title))


def province_chart(province: PeriodStats, communes: Sequence[tuple[str, PeriodStats]],
                   labels: Labels, title: str) -> Figure:
    """The figure `province_png` saves: the cases of each commune (in the order given),
    then the province's indicator 0101 breakdowns; tall, as `chart`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    per_commune = [(name, stats.total) for name, stats in communes]

    def rows(n: int) -> int:
        return max(1, n) if province.total else 1

    # A commune's row is a little lower than a value's: a province has up to 166, and the
    # photo stays under 10,000 px (Telegram's limit for its width and height together).
    heights = [_PANEL_HEAD_IN + _COMMUNE_ROW_IN * rows(len(per_commune)),
               *(_PANEL_HEAD_IN + _ROW_IN * rows(len(province.breakdown(name)))
                 for name in PROVINCE_CHART_PANELS)]
    height = _TITLE_IN + sum(heights)
    # Laid out by hand: the constrained layout measures every text first, and a province
    # has a few hundred (half a second more).
    figure = Figure(figsize=(CHART_WIDTH_IN, height), dpi=CHART_DPI)
    FigureCanvasAgg(figure)
    _suptitle(figure, province, title, y=1 - _SIDE_IN / height, va="top")
    top = height - _TITLE_IN
    axes: list[Axes] = []
    for panel in heights:
        # The panel's title above its axes, a little space under its last bar.
        low, high = top - panel + _PANEL_FOOT_IN, top - _PANEL_HEAD_IN + _PANEL_FOOT_IN
        axes.append(figure.add_axes((_SIDE_IN / CHART_WIDTH_IN, low / height,
                                     1 - 2 * _SIDE_IN / CHART_WIDTH_IN, (high - low) / height)))
        top -= panel
    _bars(axes[0], _text(labels, "sheet.commune"), per_commune, province.total, labels)
    for ax, name in zip(axes[1:], PROVINCE_CHART_PANELS, strict=True):
        _panel(ax, province, labels, name)
    return figure


def province_png(province: PeriodStats, communes: Sequence[tuple[str, PeriodStats]],
                 labels: Labels, title: str) -> bytes:
    """The province's chart as a PNG, 720 px wide."""
    return _png(province_chart(province, communes, labels, title))
