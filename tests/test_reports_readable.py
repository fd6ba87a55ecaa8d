"""Statistics people can read (issue 13, item 10), through the simulator's HTTP API: waits in
minutes or hours as a person says them, the "9 in 10" line with its unit, every village,
status and outcome with its zeros, the summary sheet's dates, and a chart for a phone."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta
from typing import Any

from bot import i18n
from tests.support import START
from tests.support.reports import add_case, add_cases, workbook_values
from tests.support.simulator import Simulator

t = i18n.t


async def files_of(sim: Simulator, messages: list[dict[str, Any]]) -> dict[str, bytes]:
    """The downloaded workbook and chart of one /stats answer, by kind."""
    found = {}
    for message in messages:
        if message["media"]:
            async with sim.http.get(sim.base + message["media"]["url"]) as r:
                assert r.status == 200
                found[message["media"]["kind"]] = await r.read()
    return found


async def stats(sim: Simulator, period: str) -> tuple[str, dict[str, list[tuple[Any, ...]]],
                                                      bytes]:
    """The officer asks for a period: the table's text, the workbook's sheets, the chart."""
    officer = sim["officer"]
    await officer.text(f"/stats {period}")
    messages = await officer.inbox()
    assert [m["ids"][0] for m in messages] == [
        "stats.chat.title", "stats.file.workbook", "stats.file.chart"]
    files = await files_of(sim, messages)
    return messages[0]["text"], workbook_values(files["document"]), files["photo"]


def summary_of(sheets: dict[str, list[tuple[Any, ...]]]) -> dict[str, tuple[Any, ...]]:
    """Label -> the cells after it, empty ones at the end left out."""
    summary = {}
    for row in sheets[t("stats.sheet.summary")]:
        if row and row[0]:
            cells = list(row[1:])
            while cells and cells[-1] is None:
                cells.pop()
            summary[row[0]] = tuple(cells)
    return summary


async def test_a_wait_of_a_minute_reads_in_minutes_never_zero_hours(sim: Simulator) -> None:
    # This month: taken 40 seconds after the report, assessed after 12 minutes.
    await add_case(sim.app, START - timedelta(hours=2), ack=timedelta(seconds=40),
                   assess=timedelta(minutes=12))
    table, sheets, _ = await stats(sim, "2026-11")
    assert ("Tiếp nhận: một nửa số vụ trong vòng 1 phút, 9 trên 10 vụ trong vòng 1 phút."
            in table), table
    assert ("Đánh giá ban đầu: một nửa số vụ trong vòng 12 phút, 9 trên 10 vụ trong vòng"
            " 12 phút.") in table, table
    assert " 0 giờ" not in table and "trong vòng 0" not in table
    # The workbook: whole minutes to count with, and the same words beside them.
    summary = summary_of(sheets)
    assert summary[t("stats.summary.ack_median")] == (1, "1 phút")
    assert summary[t("stats.summary.ack_p90")] == (1, "1 phút")
    assert summary[t("stats.summary.assess_median")] == (12, "12 phút")
    assert "(phút)" in t("stats.summary.ack_p90") and "(giờ)" not in t("stats.summary.ack_p90")


async def test_the_nine_in_ten_line_says_what_its_number_is(sim: Simulator) -> None:
    # Taken after 30, 60, 120 and 15 minutes; assessed after 6, 12 and 13 hours.
    await add_cases(sim.app)
    table, sheets, _ = await stats(sim, "2026-Q4")
    assert "⏱ Thời gian tính từ lúc báo:" in table
    assert ("Tiếp nhận: một nửa số vụ trong vòng 45 phút, 9 trên 10 vụ trong vòng 2 giờ."
            in table), table
    assert ("Đánh giá ban đầu: một nửa số vụ trong vòng 12 giờ, 9 trên 10 vụ trong vòng"
            " 13 giờ.") in table, table
    summary = summary_of(sheets)
    assert summary[t("stats.summary.ack_median")] == (45, "45 phút")
    assert summary[t("stats.summary.ack_p90")] == (120, "2 giờ")
    assert summary[t("stats.summary.assess_p90")] == (780, "13 giờ")


async def test_every_village_status_and_outcome_is_listed_with_its_zeros(
        sim: Simulator) -> None:
    # 2026-Q3 has one case only: Thôn Đông, closed, the child supported.
    await add_cases(sim.app)
    table, sheets, _ = await stats(sim, "2026-Q3")
    villages = [("Chưa rõ thôn", 0), ("Bản Bắc", 0), ("Thôn Đông", 1), ("Thôn Nam", 0),
                ("Thôn Tây", 0)]
    statuses = [(t("stats.status.new"), 0), (t("stats.status.acknowledged"), 0),
                (t("stats.status.assessed"), 0), (t("stats.status.closed"), 1)]
    outcomes = [(t("outcome.supported"), 1), (t("outcome.referred"), 0),
                (t("outcome.not_confirmed"), 0), (t("outcome.duplicate"), 0),
                (t("stats.outcome.open"), 0)]
    for sheet, rows in (("stats.sheet.village", villages), ("stats.sheet.status", statuses),
                        ("stats.sheet.outcome", outcomes)):
        line = t(sheet) + ": " + ", ".join(f"{label} ({n})" for label, n in rows)
        assert line in table, (line, table)
        assert [row[:2] for row in sheets[t(sheet)][1:-1]] == rows
        assert sheets[t(sheet)][-1][:2] == (t("stats.summary.total"), 1)
    # The other breakdowns keep their zeros in the table too.
    assert f"{t('case_type.trafficking')} (0)" in table


async def test_the_summary_sheet_says_the_period_and_as_of_when(sim: Simulator) -> None:
    await add_cases(sim.app)
    _, sheets, _ = await stats(sim, "2026-Q4")
    summary = summary_of(sheets)
    assert summary[t("stats.summary.period")] == ("2026-Q4",)
    assert summary["Từ ngày"] == (datetime(2026, 10, 1),)
    assert summary["Đến hết ngày"] == (datetime(2026, 12, 31),)
    # The simulator's clock: Monday 23 November 2026, 09:00 in Vietnam.
    assert summary["Số liệu tính đến"] == (datetime(2026, 11, 23, 9, 0),)


def png_size(content: bytes) -> tuple[int, int]:
    assert content[12:16] == b"IHDR"
    width, height = struct.unpack(">II", content[16:24])
    return width, height


async def test_the_chart_is_a_tall_column_for_a_phone(sim: Simulator) -> None:
    await add_cases(sim.app)
    _, _, chart = await stats(sim, "2026-Q4")
    width, height = png_size(chart)
    # One breakdown under the other, as narrow as a phone holds it upright (its texts'
    # sizes: tests/test_statistics.py).
    assert width == 720 and 2 * width < height < 4 * width, (width, height)


async def test_a_typed_place_is_counted_by_its_name_not_as_unknown(sim: Simulator) -> None:
    """Issue 13, item 5: a reporter who typed where (no village in the list) is counted
    under what they typed, with the same words spaced otherwise counted together."""
    citizen = sim["citizen"]
    for place in ("Gần chợ  Vĩnh Thủy", " Gần chợ Vĩnh Thủy", "bến đò"):
        for choice in ("menu:report", "danger:no", "type:violence", "types:done"):
            await citizen.tap(choice)
        await citizen.text(place)
        for choice in ("age:6-10", "sex:boy", "skip", "count:1"):
            await citizen.tap(choice)
        await citizen.text("Hàng xóm thấy cháu bị đánh nhiều lần.")
        for choice in ("photos:done", "contact:anonymous", "confirm"):
            await citizen.tap(choice)
    await sim["officer"].inbox()  # the alerts
    table, sheets, _ = await stats(sim, "2026-11")
    assert "Chưa rõ thôn (0)" in table, table
    assert "Gần chợ Vĩnh Thủy (2)" in table and "bến đò (1)" in table, table
    rows = {row[0]: row[1] for row in sheets[t("stats.sheet.village")][1:-1]}
    assert rows["Chưa rõ thôn"] == 0 and rows["Gần chợ Vĩnh Thủy"] == 2
