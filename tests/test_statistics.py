"""Report periods, period statistics and the files attached to report reminders."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, date, datetime, timedelta

import matplotlib.image
import matplotlib.text
import pytest
from openpyxl import load_workbook

from bot.domain.periods import Period, covering, parse_period
from bot.domain.statistics import (
    BREAKDOWNS,
    CaseFacts,
    PeriodStats,
    compute,
    duration_parts,
    p90,
    whole_minutes,
)
from bot.services.report_files import (
    CHART_DPI,
    LABEL_KEYS,
    PHONE_MIN_TEXT_PX,
    PHONE_WIDTH_PX,
    chart,
    label_keys,
    to_csv,
    to_png,
    to_xlsx,
)

# --- periods ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "kind", "year", "index", "label"), [
    ("2026-06", "month", 2026, 6, "2026-06"),
    ("2026-6", "month", 2026, 6, "2026-06"),
    ("2026-12", "month", 2026, 12, "2026-12"),
    ("2026-Q2", "quarter", 2026, 2, "2026-Q2"),
    ("2026-q4", "quarter", 2026, 4, "2026-Q4"),
    ("2026", "year", 2026, 1, "2026"),
    ("2026-H1", "half", 2026, 1, "2026-H1"),
    ("2026-h1", "half", 2026, 1, "2026-H1"),
    ("2026-9M", "nine_months", 2026, 1, "2026-9M"),
    ("2026-9m", "nine_months", 2026, 1, "2026-9M"),
    (" 2026-Q1 ", "quarter", 2026, 1, "2026-Q1"),
])
def test_parse_period_accepts_every_form(text: str, kind: str, year: int, index: int,
                                         label: str) -> None:
    period = parse_period(text)
    assert period == Period(kind, year, index)
    assert period.label == label
    assert parse_period(period.label) == period


@pytest.mark.parametrize("text", [
    "", "abc", "26", "202", "20266", "2026-13", "2026-00", "2026-Q0", "2026-Q5", "2026-H2",
    "2026-H0", "2026-6M", "2026-06-01", "2026/06", "Q2-2026", "2026-Q", "2026-M6",
    "0000",
])
def test_parse_period_rejects_bad_input(text: str) -> None:
    with pytest.raises(ValueError):
        parse_period(text)


def test_period_rejects_bad_fields() -> None:
    with pytest.raises(ValueError):
        Period("week", 2026, 1)
    with pytest.raises(ValueError):
        Period("month", 2026, 13)


@pytest.mark.parametrize(("text", "start", "end"), [
    ("2026-06", date(2026, 6, 1), date(2026, 7, 1)),
    ("2026-12", date(2026, 12, 1), date(2027, 1, 1)),
    ("2026-Q1", date(2026, 1, 1), date(2026, 4, 1)),
    ("2026-Q2", date(2026, 4, 1), date(2026, 7, 1)),
    ("2026-Q4", date(2026, 10, 1), date(2027, 1, 1)),
    ("2026-H1", date(2026, 1, 1), date(2026, 7, 1)),
    ("2026-9M", date(2026, 1, 1), date(2026, 10, 1)),
    ("2026", date(2026, 1, 1), date(2027, 1, 1)),
])
def test_local_start_and_exclusive_end(text: str, start: date, end: date) -> None:
    period = parse_period(text)
    assert (period.start_local, period.end_local) == (start, end)


def test_bounds_are_local_midnight_in_utc() -> None:
    # Vietnam is UTC+7 all year, so local midnight is 17:00 UTC the day before.
    start, end = parse_period("2026-Q2").bounds()
    assert start == datetime(2026, 3, 31, 17, 0, tzinfo=UTC)
    assert end == datetime(2026, 6, 30, 17, 0, tzinfo=UTC)
    assert start.utcoffset() == timedelta(0)
    year_start, year_end = parse_period("2026").bounds()
    assert year_start == datetime(2025, 12, 31, 17, 0, tzinfo=UTC)
    assert year_end == datetime(2026, 12, 31, 17, 0, tzinfo=UTC)


def test_contains_uses_exclusive_end() -> None:
    period = parse_period("2026-06")
    start, end = period.bounds()
    assert period.contains(start)
    assert period.contains(end - timedelta(microseconds=1))
    assert not period.contains(end)
    assert not period.contains(start - timedelta(microseconds=1))


def test_covering_maps_deadline_coverage_to_periods() -> None:
    assert covering("Q1", 2026) == parse_period("2026-Q1")
    assert covering("q3", 2026) == parse_period("2026-Q3")
    assert covering("H1", 2026) == parse_period("2026-H1")
    assert covering("9M", 2026) == parse_period("2026-9M")
    assert covering("Y", 2026) == parse_period("2026")
    assert covering("M", 2026, 6) == parse_period("2026-06")
    assert covering("H1", 2026).end_local == date(2026, 7, 1)
    with pytest.raises(ValueError):
        covering("M", 2026)
    with pytest.raises(ValueError):
        covering("W", 2026)


# --- statistics ------------------------------------------------------------------------------

Q2 = parse_period("2026-Q2")
BASE = datetime(2026, 4, 10, 2, 0, tzinfo=UTC)
DONG = "Đồng Xa"
GO = "Gò Nổi"


def fact(code: str, form: str, sex: str, age: str, village: str, urgency: str, status: str,
         outcome: str | None, ack_min: float | None, assess_min: float | None,
         escalated: bool = False, naive: bool = False) -> CaseFacts:
    created = BASE + timedelta(days=int(code[1:]))
    if naive:
        created = created.replace(tzinfo=None)
    return CaseFacts(
        code=code, form=form, sex=sex, age_band=age, village=village, urgency=urgency,
        status=status, outcome=outcome, created_at=created,
        acknowledged_at=None if ack_min is None else created + timedelta(minutes=ack_min),
        assessed_at=None if assess_min is None else created + timedelta(minutes=assess_min),
        escalated=escalated,
    )


# Twelve cases; C11 has a form outside the known list, no village and a lower-case urgency
# spelling, C12 has naive (UTC by convention, as SQLite returns them) timestamps.
FACTS = [
    fact("C01", "violence", "girl", "6-10", DONG, "EMERGENCY", "closed", "supported", 5, 60),
    fact("C02", "violence", "boy", "11-15", DONG, "URGENT", "closed", "referred", 10, 300),
    fact("C03", "sexual_abuse", "girl", "11-15", GO, "URGENT", "assessed", None, 20, 720,
         escalated=True),
    fact("C04", "abandonment", "unknown", "0-5", GO, "URGENT", "acknowledged", None, 30, None),
    fact("C05", "injury", "boy", "0-5", DONG, "STANDARD", "closed", "not_confirmed", 45, 900,
         escalated=True),
    fact("C06", "other", "girl", "16-17", GO, "STANDARD", "closed", "duplicate", 60, 100),
    fact("C07", "violence", "girl", "unknown", DONG, "STANDARD", "new", None, None, None,
         escalated=True),
    fact("C08", "child_marriage", "girl", "16-17", GO, "STANDARD", "new", None, None, None),
    fact("C09", "exploitation", "boy", "11-15", DONG, "URGENT", "acknowledged", None, 90, None),
    fact("C10", "violence", "girl", "6-10", GO, "EMERGENCY", "closed", "supported", 2, 30),
    fact("C11", "neglect", "girl", "6-10", "", "normal", "assessed", None, 240, 1500,
         escalated=True),
    fact("C12", "violence", "boy", "6-10", DONG, "EMERGENCY", "closed", "supported", 1, 721,
         naive=True),
]


def test_counts_per_breakdown() -> None:
    stats = compute(Q2, FACTS)
    assert stats.period == Q2
    assert stats.total == 12
    # Known keys first in fixed order (zeros kept), then unknown keys sorted.
    assert stats.by_form == (("violence", 5), ("sexual_abuse", 1), ("abandonment", 1),
                             ("injury", 1), ("exploitation", 1), ("trafficking", 0),
                             ("child_marriage", 1), ("other", 1), ("neglect", 1))
    assert stats.by_sex == (("girl", 7), ("boy", 4), ("unknown", 1))
    assert stats.by_age_band == (("0-5", 2), ("6-10", 4), ("11-15", 3), ("16-17", 2),
                                 ("unknown", 1))
    # "Đồng" sorts as "Dong", before "Gò" (plain code-point order would put Đ after G).
    assert stats.by_village == (("", 1), (DONG, 6), (GO, 5))
    assert stats.by_urgency == (("EMERGENCY", 3), ("URGENT", 4), ("STANDARD", 5))
    assert stats.by_status == (("new", 2), ("acknowledged", 2), ("assessed", 2), ("closed", 6))
    assert stats.by_outcome == (("supported", 3), ("referred", 1), ("not_confirmed", 1),
                                ("duplicate", 1), ("open", 6))
    for name in BREAKDOWNS:
        assert stats.breakdown(name) == getattr(stats, f"by_{name}")
        assert sum(count for _, count in stats.breakdown(name)) == stats.total
    with pytest.raises(KeyError):
        stats.breakdown("colour")


def test_times_and_counters() -> None:
    stats = compute(Q2, FACTS)
    # Acknowledged (10 cases), sorted minutes: 1, 2, 5, 10, 20, 30, 45, 60, 90, 240.
    # Median = (20 + 30) / 2 = 25; p90 rank = ceil(0.9 * 10) = 9 -> 90.
    assert stats.acknowledged == 10
    assert stats.ack_median_min == 25.0
    assert stats.ack_p90_min == 90.0
    # Assessed (8 cases), sorted minutes: 30, 60, 100, 300, 720, 721, 900, 1500.
    # Median = (300 + 720) / 2 = 510; p90 rank = ceil(0.9 * 8) = ceil(7.2) = 8 -> 1500.
    assert stats.assessed == 8
    assert stats.assess_median_min == 510.0
    assert stats.assess_p90_min == 1500.0
    # Within 12 h = at most 720 minutes: 30, 60, 100, 300, 720 -> 5 (721 is just over).
    assert stats.assessed_within_12h == 5
    # Escalated: C03, C05, C07, C11.
    assert stats.escalated == 4


def test_p90_nearest_rank() -> None:
    assert p90([]) is None
    assert p90([7.0]) == 7.0
    # n = 20: rank ceil(18.0) = 18 exactly, no float rounding up to 19.
    assert p90([float(i) for i in range(1, 21)]) == 18.0
    # n = 11: rank ceil(9.9) = 10.
    assert p90([float(i) for i in range(11, 0, -1)]) == 10.0


def test_empty_period() -> None:
    stats = compute(Q2, [])
    assert stats.total == 0
    assert (stats.ack_median_min, stats.ack_p90_min) == (None, None)
    assert (stats.assess_median_min, stats.assess_p90_min) == (None, None)
    assert (stats.acknowledged, stats.assessed, stats.assessed_within_12h,
            stats.escalated) == (0, 0, 0, 0)
    assert [key for key, _ in stats.by_form][:3] == ["violence", "sexual_abuse", "abandonment"]
    assert all(count == 0 for _, count in stats.by_sex)
    # Every row is there, with its zero: the unknown village, each status and outcome.
    assert stats.by_village == (("", 0),)
    assert stats.by_status == (("new", 0), ("acknowledged", 0), ("assessed", 0), ("closed", 0))
    assert stats.by_outcome == (("supported", 0), ("referred", 0), ("not_confirmed", 0),
                                ("duplicate", 0), ("open", 0))
    assert to_xlsx(stats, labels, "Báo cáo", AS_OF, words).startswith(b"PK")
    assert to_png(stats, labels, "Báo cáo").startswith(PNG_SIGNATURE)
    rows = list(csv.reader(io.StringIO(to_csv(stats, labels).decode("utf-8-sig"))))
    # header, form, sex, age, village, urgency, status, outcome
    assert len(rows) == 1 + len(stats.by_form) + 3 + 5 + 1 + 3 + 4 + 5


def test_the_communes_villages_are_listed_even_without_cases() -> None:
    stats = compute(Q2, FACTS, villages=["Bản Mới", GO, DONG, "Ấp Cũ"])
    # By name as a Vietnamese reader sorts them, the unknown village first.
    assert stats.by_village == (("", 1), ("Ấp Cũ", 0), ("Bản Mới", 0), (DONG, 6), (GO, 5))
    # A name no longer in the commune file still shows, where its name puts it.
    assert compute(Q2, FACTS, villages=["Bản Mới"]).by_village == (
        ("", 1), ("Bản Mới", 0), (DONG, 6), (GO, 5))


@pytest.mark.parametrize(("minutes", "parts"), [
    (0, (0, 0, 1)),  # taken the same second: within a minute
    (0.3, (0, 0, 1)),
    (1, (0, 0, 1)),
    (12, (0, 0, 12)),
    (45.0000000001, (0, 0, 45)),  # float noise does not round 45 up to 46
    (45.2, (0, 0, 46)),  # "within": always rounded up
    (59.5, (0, 1, 0)),
    (60, (0, 1, 0)),
    (125, (0, 2, 5)),
    (780, (0, 13, 0)),
    (24 * 60 - 1, (0, 23, 59)),
    (24 * 60, (1, 0, 0)),
    (1500, (1, 1, 0)),
    (1441, (1, 1, 0)),
    (3 * 24 * 60, (3, 0, 0)),
])
def test_durations_are_read_in_minutes_hours_or_days(minutes: float,
                                                     parts: tuple[int, int, int]) -> None:
    assert duration_parts(minutes) == parts
    assert whole_minutes(minutes) >= 1


def test_hundred_thousand_facts_are_fast() -> None:
    template = FACTS * (100_000 // len(FACTS) + 1)
    facts = template[:100_000]
    started = time.perf_counter()
    stats = compute(Q2, iter(facts))  # a generator works: storage may stream rows
    elapsed = time.perf_counter() - started
    assert stats.total == 100_000
    assert elapsed < 3.0, elapsed


# --- files -----------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SHEETS = {
    "sheet.summary": "Tổng hợp", "sheet.form": "Hình thức", "sheet.sex": "Giới tính",
    "sheet.age_band": "Độ tuổi", "sheet.village": "Thôn", "sheet.urgency": "Mức khẩn cấp",
    "sheet.status": "Trạng thái", "sheet.outcome": "Kết quả",
}
LABEL_TEXT = {key: SHEETS.get(key, f"~{key}") for key in LABEL_KEYS}
LABEL_TEXT["form.violence"] = "Bạo lực"


def labels(key: str) -> str:
    return LABEL_TEXT[key]  # KeyError for "form.neglect": the module shows the key instead


def words(minutes: float) -> str:
    return f"~{minutes:g} min"


AS_OF = datetime(2026, 7, 2, 3, 30, tzinfo=UTC)  # 10:30 in Vietnam


def test_label_keys_cover_what_the_files_ask_for() -> None:
    stats = compute(Q2, FACTS)
    asked: list[str] = []

    def recording(key: str) -> str:
        asked.append(key)
        return key

    to_xlsx(stats, recording, "t", AS_OF, words)
    to_csv(stats, recording)
    to_png(stats, recording, "t")
    needed = label_keys(stats)
    assert set(asked) <= set(needed)
    assert "form.neglect" in needed and "form.neglect" not in LABEL_KEYS
    assert len(set(LABEL_KEYS)) == len(LABEL_KEYS)
    assert {"outcome.open", "urgency.EMERGENCY", "age.0-5", "sex.girl", "status.new",
            "village.unknown", "col.count", "col.share", "summary.ack_median"} <= set(LABEL_KEYS)


def test_xlsx_holds_the_numbers() -> None:
    stats = compute(Q2, FACTS)
    book = load_workbook(io.BytesIO(to_xlsx(stats, labels, "Báo cáo quý", AS_OF, words)))
    assert book.sheetnames == list(SHEETS.values())
    summary = book["Tổng hợp"]
    assert summary["A1"].value == "Báo cáo quý"
    # The period, its first and last day, and when the figures were taken, local time.
    assert [(row[0], row[1]) for row in summary.iter_rows(min_row=2, max_row=5,
                                                          values_only=True)] == [
        ("~summary.period", "2026-Q2"), ("~summary.start", datetime(2026, 4, 1)),
        ("~summary.end", datetime(2026, 6, 30)), ("~summary.as_of", datetime(2026, 7, 2, 10, 30))]
    assert summary["B3"].number_format == "dd/mm/yyyy"
    assert summary["B5"].number_format == "dd/mm/yyyy hh:mm"
    values = {row[0]: row[1:] for row in summary.iter_rows(min_row=7, values_only=True)}
    assert values["~summary.total"][0] == 12
    assert values["~summary.acknowledged"][0] == 10
    assert values["~summary.assessed"][0] == 8
    # Times in whole minutes, and in words beside them.
    assert values["~summary.ack_median"] == (25, "~25 min")
    assert values["~summary.ack_p90"] == (90, "~90 min")
    assert values["~summary.assess_median"] == (510, "~510 min")
    assert values["~summary.assess_p90"] == (1500, "~1500 min")
    assert values["~summary.assessed_within_12h"][0] == 5
    assert values["~summary.escalated"][0] == 4

    form = list(book["Hình thức"].iter_rows(values_only=True))
    assert form[0] == ("Hình thức", "~col.count", "~col.share")
    assert form[1] == ("Bạo lực", 5, pytest.approx(5 / 12))
    assert form[-2] == ("form.neglect", 1, pytest.approx(1 / 12))
    assert form[-1] == ("~summary.total", 12, 1.0)
    for name, title in zip(BREAKDOWNS, list(SHEETS.values())[1:], strict=True):
        rows = list(book[title].iter_rows(min_row=2, values_only=True))[:-1]
        assert [row[1] for row in rows] == [count for _, count in stats.breakdown(name)]
        # openpyxl reads a stored 0.0 back as int 0, so only "a number, not text" is checked.
        assert all(isinstance(row[1], int) and isinstance(row[2], int | float) for row in rows)
        # openpyxl writes floats with 16 significant digits, hence approx.
        assert [row[2] for row in rows] == pytest.approx([n / 12 for _, n in stats.breakdown(name)])
    village = list(book["Thôn"].iter_rows(min_row=2, values_only=True))
    assert [row[0] for row in village[:-1]] == ["~village.unknown", DONG, GO]


def test_xlsx_empty_times_are_blank_cells() -> None:
    book = load_workbook(io.BytesIO(to_xlsx(compute(Q2, []), labels, "t", AS_OF, words)))
    values = {row[0]: row[1:] for row in book["Tổng hợp"].iter_rows(min_row=7, values_only=True)}
    assert values["~summary.total"][0] == 0
    assert set(values["~summary.ack_median"]) == {None}  # no minutes, no words


def test_xlsx_sheet_names_are_truncated_and_unique() -> None:
    def same(key: str) -> str:
        return "Thống kê theo từng tiêu chí: rất dài?" if key.startswith("sheet.") else key

    book = load_workbook(io.BytesIO(to_xlsx(compute(Q2, FACTS), same, "t", AS_OF, words)))
    names = book.sheetnames
    assert len(names) == 1 + len(BREAKDOWNS)
    assert len({name.casefold() for name in names}) == len(names)
    assert all(len(name) <= 31 and ":" not in name and "?" not in name for name in names)


def test_png_is_a_plausible_chart() -> None:
    png = to_png(compute(Q2, FACTS), labels, "Thống kê quý — Xã Đồng Tâm")
    assert png.startswith(PNG_SIGNATURE)
    assert png[12:16] == b"IHDR"
    width = int.from_bytes(png[16:20], "big")
    height = int.from_bytes(png[20:24], "big")
    # One column of four breakdowns: 9 forms, 5 ages, 3 villages, 5 outcomes.
    assert width == 720 and height > 2 * width
    image = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert image.shape[:2] == (height, width)
    assert image.min() < image.max()  # not a blank canvas


def test_the_chart_reads_on_a_phone() -> None:
    """Shown 360 px wide, every text is big enough to read, inside the picture, and clear
    of every other text; the breakdowns stand one under the other across the whole width."""
    stats = compute(Q2, FACTS, villages=["Thôn Đồng Xa Thượng", "Bản Mới"])
    vi = {"form.trafficking": "Mua bán, mất tích", "form.injury": "Tai nạn, thương tích, đuối nước"}
    figure = chart(stats, lambda key: vi.get(key) or labels(key),
                   "Thống kê bảo vệ trẻ em xã Vĩnh Thủy, huyện Hoằng Hóa")
    figure.canvas.draw()
    width, height = figure.canvas.get_width_height()
    scale = PHONE_WIDTH_PX / width
    texts = [text for text in figure.findobj(matplotlib.text.Text)
             if text.get_visible() and text.get_text().strip()]
    assert len(texts) > 2 * 22  # the title, 4 headings, a name and a count for each value
    boxes = []
    for text in texts:
        pixels = text.get_fontsize() * CHART_DPI / 72
        assert pixels * scale >= PHONE_MIN_TEXT_PX, (text.get_text(), pixels * scale)
        box = text.get_window_extent()
        assert box.x0 >= 0 and box.x1 <= width and box.y0 >= 0 and box.y1 <= height, (
            text.get_text(), box)
        boxes.append((text.get_text(), box))
    crowded = [(a, b) for i, (a, one) in enumerate(boxes) for b, other in boxes[i + 1:]
               if one.overlaps(other)]
    assert crowded == []
    for ax in figure.axes:
        assert ax.get_position().width > 0.9


def test_csv_round_trips() -> None:
    stats = compute(Q2, FACTS)
    data = to_csv(stats, labels)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["~col.breakdown", "~col.key", "~col.item", "~col.count"]
    expected = [[SHEETS[f"sheet.{name}"], key, count]
                for name in BREAKDOWNS for key, count in stats.breakdown(name)]
    assert [[row[0], row[1], int(row[3])] for row in rows[1:]] == expected
    assert ["Hình thức", "violence", "Bạo lực", "5"] in rows
    assert ["Thôn", DONG, DONG, "6"] in rows
    assert ["Thôn", "", "~village.unknown", "1"] in rows


def test_stats_are_immutable() -> None:
    stats: PeriodStats = compute(Q2, FACTS)
    with pytest.raises(AttributeError):
        stats.total = 0  # type: ignore[misc]
