"""Period statistics from a real database, their files, and /report over the simulator."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any

import matplotlib.image
from bot.services.reports import XLSX_MIME, period_report, period_stats
from openpyxl import load_workbook
from sqlalchemy import func, select

from bot import i18n
from bot.app import Engine
from bot.domain.local_time import LOCAL_TZ
from bot.domain.messages import Reply, Text
from bot.domain.periods import Period
from storage import files
from storage.models import Case, Commune, StoredFile
from tests.support.simulator import Simulator

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
Q4 = Period("quarter", 2026, 4)


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=LOCAL_TZ)  # type: ignore[misc]


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


# (created, types, confirmed form, sex, age, village key, urgency, status, outcome,
#  minutes to acknowledge, minutes to assess, escalation level)
INSIDE: list[tuple[Any, ...]] = [
    # Local midnight opening the quarter counts (it is 30 Sep 17:00 UTC).
    (local(2026, 10, 1, 0, 0), "abandonment,violence", "violence", "girl", "6-10", "dong",
     "URGENT", "closed", "supported", 30, 360, 1),
    (local(2026, 10, 5, 10, 0), "sexual_abuse,violence", None, "boy", "11-15", "tay",
     "EMERGENCY", "assessed", None, 60, 720, 2),
    (local(2026, 10, 20, 8, 0), "violence", None, "girl", "0-5", None,
     "STANDARD", "acknowledged", None, 120, None, 1),
    (local(2026, 11, 2, 14, 0), "injury", "abandonment", "unknown", "16-17", "dong",
     "URGENT", "closed", "referred", 15, 780, 3),
    (local(2026, 11, 10, 9, 0), "other", None, "girl", "unknown", "bac",
     "URGENT", "new", None, None, None, 2),
    # The last second of the quarter, local time.
    (local(2026, 12, 31, 23, 59, 59), "child_marriage", None, "girl", "16-17", "nam",
     "STANDARD", "new", None, None, None, 1),
]
OUTSIDE: list[tuple[Any, ...]] = [
    (local(2026, 9, 30, 23, 59, 59), "violence", None, "boy", "6-10", "dong",
     "URGENT", "closed", "supported", 10, 20, 2),
    (local(2027, 1, 1, 0, 0), "violence", None, "boy", "6-10", "dong",
     "URGENT", "closed", "supported", 10, 20, 2),
]

EXPECTED_FORMS = (("violence", 2), ("sexual_abuse", 1), ("abandonment", 1), ("injury", 0),
                  ("exploitation", 0), ("trafficking", 0), ("child_marriage", 1), ("other", 1))
EXPECTED_VILLAGES = (("", 1), ("Bản Bắc", 1), ("Thôn Đông", 2), ("Thôn Nam", 1),
                     ("Thôn Tây", 1))


async def add_cases(engine: Engine) -> None:
    """The fixed cases, plus cases just outside Q4 and one of another commune in Q4."""
    villages = engine.directory.village_ids
    async with engine.database.transaction() as s:
        other = Commune(key="other", name="Xã khác", code_prefix="XK")
        s.add(other)
        await s.flush()
        rows = [(engine.directory.commune_id, spec) for spec in (*INSIDE, *OUTSIDE)]
        rows.append((other.id, INSIDE[1]))
        for n, (commune_id, spec) in enumerate(rows, start=1):
            (created, types, form, sex, age, village, urgency, status, outcome, ack, assess,
             level) = spec
            s.add(Case(
                commune_id=commune_id, code=f"T-{n:04d}", types=types, confirmed_form=form,
                sex=sex, age_band=age, village_id=villages[village] if village else None,
                urgency=urgency, status=status, outcome=outcome, created_at=created,
                acknowledged_at=created + minutes(ack) if ack is not None else None,
                assessed_at=created + minutes(assess) if assess is not None else None,
                escalation_level=level, description="không bao giờ vào thống kê"))


async def test_statistics_of_a_quarter_from_the_database(engine: Engine) -> None:
    await add_cases(engine)
    async with engine.database.read() as s:
        stats = await period_stats(s, engine.directory.commune_id, Q4)
    assert stats.total == 6
    assert stats.by_form == EXPECTED_FORMS
    assert stats.by_sex == (("girl", 4), ("boy", 1), ("unknown", 1))
    assert stats.by_age_band == (("0-5", 1), ("6-10", 1), ("11-15", 1), ("16-17", 2),
                                 ("unknown", 1))
    assert stats.by_village == EXPECTED_VILLAGES
    assert stats.by_urgency == (("EMERGENCY", 1), ("URGENT", 3), ("STANDARD", 2))
    assert stats.by_status == (("new", 2), ("acknowledged", 1), ("assessed", 1), ("closed", 2))
    assert stats.by_outcome == (("supported", 1), ("referred", 1), ("open", 4))
    # Acknowledged after 30, 60, 120, 15 minutes; assessed after 360, 720, 780.
    assert (stats.acknowledged, stats.ack_median_min, stats.ack_p90_min) == (4, 45.0, 120.0)
    assert (stats.assessed, stats.assess_median_min, stats.assess_p90_min) == (3, 720.0, 780.0)
    assert stats.assessed_within_12h == 2  # exactly 12 hours still counts
    assert stats.escalated == 3


async def test_the_quarter_before_sees_only_its_own_case(engine: Engine) -> None:
    await add_cases(engine)
    async with engine.database.read() as s:
        q3 = await period_stats(s, engine.directory.commune_id, Period("quarter", 2026, 3))
        y2027 = await period_stats(s, engine.directory.commune_id, Period("year", 2027))
    assert (q3.total, q3.escalated, q3.ack_median_min) == (1, 1, 10.0)
    assert y2027.total == 1


def rendered(text: Text, language: str) -> str:
    out = i18n.render(text, language)
    assert "{" not in out and "}" not in out and out != text.id, (text, out)
    return out


async def stored(engine: Engine, reply: Reply) -> StoredFile:
    assert reply.media is not None and reply.media.channel == "stored"
    async with engine.database.read() as s:
        row = await files.stored_file(s, int(reply.media.ref))
    assert row is not None and row.name == reply.media.name and len(row.token) >= 32
    return row


def workbook_values(content: bytes) -> dict[str, list[tuple[Any, ...]]]:
    book = load_workbook(io.BytesIO(content))
    return {sheet.title: [tuple(row) for row in sheet.iter_rows(values_only=True)]
            for sheet in book.worksheets}


def check_workbook(content: bytes, language: str = "vi") -> None:
    """The workbook holds exactly the numbers of the fixed quarter."""
    sheets = workbook_values(content)
    t = lambda msgid: i18n.t(msgid, language)  # noqa: E731
    assert list(sheets) == [t("stats.sheet.summary"), t("stats.sheet.form"),
                            t("stats.sheet.sex"), t("stats.sheet.age_band"),
                            t("stats.sheet.village"), t("stats.sheet.urgency"),
                            t("stats.sheet.status"), t("stats.sheet.outcome")]
    summary = {row[0]: row[1] for row in sheets[t("stats.sheet.summary")] if row and row[0]}
    assert summary[t("stats.summary.period")] == "2026-Q4"
    assert summary[t("stats.summary.total")] == 6
    assert summary[t("stats.summary.acknowledged")] == 4
    assert summary[t("stats.summary.assessed")] == 3
    assert summary[t("stats.summary.ack_median")] == 0.8  # 45 minutes
    assert summary[t("stats.summary.ack_p90")] == 2.0
    assert summary[t("stats.summary.assess_median")] == 12.0
    assert summary[t("stats.summary.assess_p90")] == 13.0
    assert summary[t("stats.summary.assessed_within_12h")] == 2
    assert summary[t("stats.summary.escalated")] == 3
    forms = sheets[t("stats.sheet.form")]
    assert [(label, count) for label, count, _ in forms[1:-1]] == [
        (t(f"case_type.{key}"), n) for key, n in EXPECTED_FORMS]
    assert forms[-1][:2] == (t("stats.summary.total"), 6)
    villages = sheets[t("stats.sheet.village")]
    assert [(label, count) for label, count, _ in villages[1:-1]] == [
        (name or t("stats.village.unknown"), n) for name, n in EXPECTED_VILLAGES]
    outcomes = sheets[t("stats.sheet.outcome")]
    assert [(label, count) for label, count, _ in outcomes[1:-1]] == [
        (t("outcome.supported"), 1), (t("outcome.referred"), 1), (t("stats.outcome.open"), 4)]
    share = {label: share for label, _, share in sheets[t("stats.sheet.sex")][1:-1]}
    assert abs(share[t("sex.girl")] - 4 / 6) < 1e-9


def check_png(content: bytes) -> None:
    assert content.startswith(PNG_SIGNATURE)
    image = matplotlib.image.imread(io.BytesIO(content), format="png")
    assert image.shape[:2] == (700, 1000)


async def test_period_report_replies_and_files(engine: Engine) -> None:
    await add_cases(engine)
    now = engine.clock.now()
    async with engine.database.transaction() as s:
        replies = await period_report(s, engine.directory, Q4, "vi", now)
    table, workbook, chart = replies
    assert table.media is None
    assert workbook.media is not None and workbook.media.kind == "document"
    assert workbook.media.name == "safechild-vinh-thuy-2026-Q4.xlsx"
    assert chart.media is not None and chart.media.kind == "photo"
    check_workbook((await stored(engine, workbook)).content)
    check_png((await stored(engine, chart)).content)

    ids = [text.id for text in table.texts]
    # The quarter is not over on 23 November: the table says the figures are so far.
    assert ids[:4] == ["stats.chat.title", "stats.chat.so_far", "stats.chat.summary",
                       "stats.chat.times"]
    vi = "\n\n".join(rendered(text, "vi") for text in table.texts)
    assert "01/10/2026" in vi and "31/12/2026" in vi and "Vĩnh Thủy" in vi
    assert "Tổng số vụ: 6" in vi and "trong vòng 12 giờ: 2" in vi
    # Hours with Vietnamese decimals: 45 minutes is 0,8 hours.
    assert "trung vị 0,8, 9/10 vụ trong vòng 2" in vi
    assert "trung vị 12, 9/10 vụ trong vòng 13" in vi
    assert "Bạo lực (2)" in vi and "Tảo hôn (1)" in vi
    assert "Bóc lột" not in vi  # zero rows are left out of the chat table
    assert "Thôn Đông (2)" in vi and "Chưa rõ thôn (1)" in vi
    assert "Đang xử lý (4)" in vi and "🟠 Gấp (3)" in vi
    assert "không bao giờ" not in vi
    assert len(vi) < 4096
    for reply in replies:
        for text in reply.texts:
            rendered(text, "en")


async def test_english_report_formats_hours_the_english_way(engine: Engine) -> None:
    await add_cases(engine)
    async with engine.database.transaction() as s:
        table, workbook, _ = await period_report(s, engine.directory, Q4, "en",
                                                 engine.clock.now())
    en = "\n\n".join(rendered(text, "en") for text in table.texts)
    assert "median 0.8, 9 in 10 within 2" in en
    check_workbook((await stored(engine, workbook)).content, "en")


async def test_a_period_without_cases(engine: Engine) -> None:
    async with engine.database.transaction() as s:
        table, workbook, chart = await period_report(s, engine.directory,
                                                     Period("month", 2025, 2), "vi",
                                                     engine.clock.now())
    assert [t.id for t in table.texts] == ["stats.chat.title", "stats.chat.no_cases"]
    summary = workbook_values((await stored(engine, workbook)).content)["Tóm tắt"]
    assert ("Tổng số vụ", 0) in summary
    check_png((await stored(engine, chart)).content)



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
    await add_cases(sim.app)
    for key, text in (("citizen", "/report 2026-Q4"), ("collaborator", "/report 2026-Q4"),
                      ("police", "/report 2026-Q4"), ("police_chief", "/report"),
                      ("officer", "/report")):
        phone = sim[key]
        await phone.text(text)
        messages = await phone.inbox()
        assert [m["ids"] for m in messages] == [["report.danger.prompt"]], (key, text)
        assert all(m["media"] is None for m in messages)
    async with sim.app.database.read() as s:
        files = (await s.execute(select(func.count()).select_from(StoredFile))).scalar_one()
    assert files == 0


async def test_leader_and_admin_get_figures_too(sim: Simulator) -> None:
    for key in ("leader", "admin"):
        await sim[key].text("/report 2026")
        assert [m["ids"][0] for m in await sim[key].inbox()] == [
            "stats.chat.title", "stats.file.workbook", "stats.file.chart"]
