"""Period statistics in the tests: a fixed quarter of cases written straight into the
database, and checks of the workbook and chart made from them (whatever channel carried
the files)."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any

import matplotlib.image
from openpyxl import load_workbook

from bot import i18n
from bot.app import App
from bot.domain.local_time import LOCAL_TZ
from bot.domain.periods import Period
from storage.models import Case, Commune
from tests.support.database import orm

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


async def add_cases(app: App) -> None:
    """The fixed cases, plus cases just outside Q4 and one of another commune in Q4."""
    villages = app.directory.village_ids
    async with orm(app).begin() as s:
        other = Commune(key="other", name="Xã khác", code_prefix="XK")
        s.add(other)
        await s.flush()
        rows = [(app.directory.commune_id, spec) for spec in (*INSIDE, *OUTSIDE)]
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


async def add_case(app: App, created: datetime, ack: timedelta, assess: timedelta) -> None:
    """One more case of Thôn Tây, taken and assessed that long after it was reported."""
    async with orm(app).begin() as s:
        s.add(Case(commune_id=app.directory.commune_id, code="T-0100", types="violence",
                   sex="girl", age_band="6-10", village_id=app.directory.village_ids["tay"],
                   urgency="URGENT", status="assessed", created_at=created,
                   acknowledged_at=created + ack, assessed_at=created + assess,
                   escalation_level=1, description="không bao giờ vào thống kê"))


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
    # Times in whole minutes (the words beside them: tests/test_reports_readable.py).
    assert summary[t("stats.summary.ack_median")] == 45
    assert summary[t("stats.summary.ack_p90")] == 120
    assert summary[t("stats.summary.assess_median")] == 720
    assert summary[t("stats.summary.assess_p90")] == 780
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
        (t("outcome.supported"), 1), (t("outcome.referred"), 1), (t("outcome.not_confirmed"), 0),
        (t("outcome.duplicate"), 0), (t("stats.outcome.open"), 4)]
    share = {label: share for label, _, share in sheets[t("stats.sheet.sex")][1:-1]}
    assert abs(share[t("sex.girl")] - 4 / 6) < 1e-9


def check_png(content: bytes, cases: bool = True) -> None:
    """A chart 720 px wide; with cases, as tall as a phone held upright."""
    assert content.startswith(PNG_SIGNATURE)
    image = matplotlib.image.imread(io.BytesIO(content), format="png")
    height, width = image.shape[:2]
    assert width == 720 and height > (2 * width if cases else width // 2), (width, height)
    assert image.min() < image.max()  # not a blank canvas


async def add_case_rows(app: App, rows: list[dict[str, Any]]) -> None:
    """Cases written as they are given (each a Case's columns), in one transaction."""
    async with orm(app).begin() as s:
        s.add_all(Case(**row) for row in rows)
