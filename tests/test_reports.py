"""Period statistics from a real database, their files, and /report over the simulator."""

from __future__ import annotations

from bot import i18n
from bot.app import App
from bot.domain.delivery import FileToSend
from bot.domain.messages import Reply, Text
from bot.domain.periods import Period
from bot.services.period_reports import XLSX_MIME, duration_text, period_report, period_stats
from storage import files
from tests.support.database import count
from tests.support.reports import (
    EXPECTED_FORMS,
    EXPECTED_VILLAGES,
    Q4,
    add_cases,
    check_png,
    check_workbook,
    workbook_values,
)
from tests.support.simulator import Simulator


async def test_statistics_of_a_quarter_from_the_database(app: App) -> None:
    await add_cases(app)
    async with app.database.read() as s:
        stats = await period_stats(s, app.directory.commune_id, Q4)
    assert stats.total == 6
    assert stats.by_form == EXPECTED_FORMS
    assert stats.by_sex == (("girl", 4), ("boy", 1), ("unknown", 1))
    assert stats.by_age_band == (("0-5", 1), ("6-10", 1), ("11-15", 1), ("16-17", 2),
                                 ("unknown", 1))
    assert stats.by_village == EXPECTED_VILLAGES
    assert stats.by_urgency == (("EMERGENCY", 1), ("URGENT", 3), ("STANDARD", 2))
    assert stats.by_status == (("new", 2), ("acknowledged", 1), ("assessed", 1), ("closed", 2))
    assert stats.by_outcome == (("supported", 1), ("referred", 1), ("not_confirmed", 0),
                                ("duplicate", 0), ("open", 4))
    # Acknowledged after 30, 60, 120, 15 minutes; assessed after 360, 720, 780.
    assert (stats.acknowledged, stats.ack_median_min, stats.ack_p90_min) == (4, 45.0, 120.0)
    assert (stats.assessed, stats.assess_median_min, stats.assess_p90_min) == (3, 720.0, 780.0)
    assert stats.assessed_within_12h == 2  # exactly 12 hours still counts
    assert stats.escalated == 3


async def test_the_quarter_before_sees_only_its_own_case(app: App) -> None:
    await add_cases(app)
    async with app.database.read() as s:
        q3 = await period_stats(s, app.directory.commune_id, Period("quarter", 2026, 3))
        y2027 = await period_stats(s, app.directory.commune_id, Period("year", 2027))
    assert (q3.total, q3.escalated, q3.ack_median_min) == (1, 1, 10.0)
    assert y2027.total == 1


def rendered(text: Text, language: str) -> str:
    out = i18n.render(text, language)
    assert "{" not in out and "}" not in out and out != text.id, (text, out)
    return out


async def stored(app: App, reply: Reply) -> FileToSend:
    assert reply.media is not None and reply.media.channel == "stored"
    async with app.database.read() as s:
        row = await files.stored_file(s, int(reply.media.ref))
    assert row is not None and row.name == reply.media.name and len(row.token) >= 32
    return row


async def test_period_report_replies_and_files(app: App) -> None:
    await add_cases(app)
    now = app.clock.now()
    async with app.database.transaction() as s:
        replies = await period_report(s, app.directory, Q4, "vi", now)
    table, workbook, chart = replies
    assert table.media is None
    assert workbook.media is not None and workbook.media.kind == "document"
    assert workbook.media.name == "safechild-vinh-thuy-2026-Q4.xlsx"
    assert chart.media is not None and chart.media.kind == "photo"
    check_workbook((await stored(app, workbook)).content)
    check_png((await stored(app, chart)).content)

    ids = [text.id for text in table.texts]
    # The quarter is not over on 23 November: the table says the figures are so far.
    assert ids[:4] == ["stats.chat.title", "stats.chat.so_far", "stats.chat.summary",
                       "stats.chat.times"]
    vi = "\n\n".join(rendered(text, "vi") for text in table.texts)
    assert "01/10/2026" in vi and "31/12/2026" in vi and "Vĩnh Thủy" in vi
    assert "Tổng số vụ: 6" in vi and "trong vòng 12 giờ: 2" in vi
    # Waits with their units: 45 minutes, not 0,8 hours.
    assert "một nửa số vụ trong vòng 45 phút, 9 trên 10 vụ trong vòng 2 giờ." in vi
    assert "một nửa số vụ trong vòng 12 giờ, 9 trên 10 vụ trong vòng 13 giờ." in vi
    assert "Bạo lực (2)" in vi and "Tảo hôn (1)" in vi
    assert "Bóc lột, lao động trẻ em (0)" in vi  # zero rows are listed too
    assert "Thôn Đông (2)" in vi and "Chưa rõ thôn (1)" in vi
    assert "Đang xử lý (4)" in vi and "🟠 Gấp (3)" in vi
    assert "không bao giờ" not in vi
    assert len(vi) < 4096
    for reply in replies:
        for text in reply.texts:
            rendered(text, "en")


async def test_english_report_says_waits_the_english_way(app: App) -> None:
    await add_cases(app)
    async with app.database.transaction() as s:
        table, workbook, _ = await period_report(s, app.directory, Q4, "en",
                                                 app.clock.now())
    en = "\n\n".join(rendered(text, "en") for text in table.texts)
    assert "Acknowledged: half the cases within 45 min, 9 in 10 within 2 h." in en
    assert "Initial assessment: half the cases within 12 h, 9 in 10 within 13 h." in en
    check_workbook((await stored(app, workbook)).content, "en")


def test_waits_read_as_people_say_them() -> None:
    said = {0.3: ("1 phút", "1 min"), 12: ("12 phút", "12 min"), 60: ("1 giờ", "1 h"),
            125: ("2 giờ 5 phút", "2 h 5 min"), 1440: ("1 ngày", "1 day"),
            1500: ("1 ngày 1 giờ", "1 day 1 h"), 2880: ("2 ngày", "2 days"),
            3000: ("2 ngày 2 giờ", "2 days 2 h"), 100 * 1440: ("100 ngày", "100 days")}
    for minutes, (vi, en) in said.items():
        assert rendered(duration_text(minutes, "vi"), "vi") == vi
        assert rendered(duration_text(minutes, "en"), "en") == en


async def test_a_period_without_cases(app: App) -> None:
    async with app.database.transaction() as s:
        table, workbook, chart = await period_report(s, app.directory,
                                                     Period("month", 2025, 2), "vi",
                                                     app.clock.now())
    assert [t.id for t in table.texts] == ["stats.chat.title", "stats.chat.no_cases"]
    summary = workbook_values((await stored(app, workbook)).content)["Tóm tắt"]
    assert ("Tổng số vụ", 0) in summary
    check_png((await stored(app, chart)).content, cases=False)


async def download(sim: Simulator, url: str) -> tuple[int, str, bytes]:
    async with sim.http.get(f"{sim.base}{url}") as r:
        return r.status, r.headers.get("Content-Type", ""), await r.read()


async def test_report_command_over_the_simulator(sim: Simulator) -> None:
    await add_cases(sim.app)
    officer = sim["officer"]
    await officer.text("/report 2026-Q4")
    table, workbook, chart = await officer.inbox()
    assert table["ids"][0] == "stats.chat.title" and table["media"] is None
    assert "Tổng số vụ: 6" in table["text"] and "Bạo lực (2)" in table["text"]
    assert workbook["ids"] == ["stats.file.workbook"] and "2026-Q4" in workbook["text"]
    assert workbook["media"]["kind"] == "document"
    assert workbook["media"]["name"] == "safechild-vinh-thuy-2026-Q4.xlsx"
    status, mime, content = await download(sim, workbook["media"]["url"])
    assert status == 200 and mime == XLSX_MIME
    check_workbook(content)
    assert chart["ids"] == ["stats.file.chart"] and chart["media"]["kind"] == "photo"
    status, mime, content = await download(sim, chart["media"]["url"])
    assert status == 200 and mime == "image/png"
    check_png(content)

    # The link only works whole: a changed token, or another file's id, finds nothing.
    url = workbook["media"]["url"]
    file_id, token = url.rsplit("/", 2)[1:]
    other_id = chart["media"]["url"].rsplit("/", 2)[1]
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (f"/api/files/{file_id}/{flipped}", f"/api/files/{other_id}/{token}",
                f"/api/files/{file_id}/", f"/api/files/x{file_id}/{token}",
                f"/api/files/99999/{token}"):
        assert (await download(sim, bad))[0] == 404, bad


async def test_report_command_asks_kindly_for_a_good_period(sim: Simulator) -> None:
    officer = sim["officer"]
    for bad in ("/report abc", "/report 2026-13", "/report 2026-Q5", "/report Q2 2026",
                "/report 0001", "/report 0000", "/report " + "9" * 5000):
        await officer.text(bad)
        answer = await officer.last()
        assert answer["ids"] == ["stats.usage"], bad
        for example in ("2026-Q2", "2026-06", "2026-H1", "2026-9M", "/stats 2026 "):
            assert example in answer["text"]
    # The clock says 23 November 2026: next year has no figures yet.
    await officer.text("/report 2027-Q1")
    assert (await officer.last())["ids"] == ["stats.future"]
    # The current month has, so far (none yet: an empty table, and both files).
    await officer.text("/report 2026-11")
    table, workbook, chart = await officer.inbox()
    assert [t for t in table["ids"]] == ["stats.chat.title", "stats.chat.so_far",
                                          "stats.chat.no_cases"]
    assert workbook["media"]["url"] and chart["media"]["url"]


async def test_report_without_a_period_or_from_others_starts_a_case_report(
        sim: Simulator) -> None:
    """No figures for who may not read them, nor without a period; staff are asked which
    report they mean (a new case, or their cases) rather than put in the questionnaire."""
    await add_cases(sim.app)
    for key, text, answer in (
            ("citizen", "/report 2026-Q4", "report.danger.prompt"),
            ("collaborator", "/report 2026-Q4", "report.danger.prompt"),
            ("police", "/report 2026-Q4", "report.which"),
            ("police_chief", "/report", "report.which"), ("officer", "/report", "report.which")):
        phone = sim[key]
        await phone.text(text)
        messages = await phone.inbox()
        assert [m["ids"] for m in messages] == [[answer]], (key, text)
        assert all(m["media"] is None for m in messages)
    assert await count(sim.app, "stored_files") == 0


async def test_leader_and_admin_get_figures_too(sim: Simulator) -> None:
    for key in ("leader", "admin"):
        await sim[key].text("/report 2026")
        assert [m["ids"][0] for m in await sim[key].inbox()] == [
            "stats.chat.title", "stats.file.workbook", "stats.file.chart"]
