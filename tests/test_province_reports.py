"""A province's statistics (issue 14 item 6): three communes of Thanh Hóa on one process,
random cases in each, and the province's /stats over the simulator. Its table, its list of
communes, its workbook (a row per commune in each breakdown) and its chart; every figure
is the sum of the communes' own, as each commune's officer reads them in their /stats."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import i18n
from bot.clock import FakeClock
from bot.config import load_province
from bot.domain.cases import AGE_BANDS, CASE_TYPES, OUTCOMES, SETTINGS, SEXES, URGENCIES
from bot.domain.province import ProvinceConfig
from bot.domain.statistics import PROVINCE_BREAKDOWNS, SETTING_KEYS, village_sort_key
from bot.services.period_reports import XLSX_MIME, period_stats, province_report, value_text
from tests.support.province import write_province
from tests.support.reports import (
    Q4,
    add_case_rows,
    check_png,
    local,
    minutes,
    workbook_values,
)
from tests.support.simulator import Simulator, simulator

COMMUNES = 3


@pytest.fixture
def province(tmp_path: Path) -> ProvinceConfig:
    return load_province(write_province(tmp_path, communes=COMMUNES))


@pytest.fixture
async def three(db_url: str, clock: FakeClock,
                province: ProvinceConfig) -> AsyncIterator[Simulator]:
    async with simulator(db_url, clock, province) as sim:
        yield sim


def phone(province: ProvinceConfig, n: int, key: str) -> str:
    return f"{province.communes[n].key}.{key}"


# What each case counts as, by breakdown of the province's report.
Expected = dict[str, dict[str, Counter[str]]]


async def add_random_cases(sim: Simulator, seed: int = 14) -> Expected:
    """Random cases in each commune in 2026-Q4 (and a few just outside it); returns what
    each commune's Q4 cases count as, by breakdown."""
    rng = random.Random(seed)
    expected: Expected = {}
    statuses = ("new", "acknowledged", "assessed", "closed")
    n = 0
    rows: list[dict[str, Any]] = []
    for directory in sim.app.communes:
        counts: dict[str, Counter[str]] = {b: Counter() for b in PROVINCE_BREAKDOWNS}
        expected[directory.config.name] = counts
        villages = [*directory.village_ids.values(), None]
        for _ in range(rng.randint(8, 25)):
            n += 1
            inside = rng.random() < 0.9
            created = (local(2026, 10, 1) + minutes(rng.randrange(80 * 24 * 60))
                       if inside else local(2026, 9, 30, 23) + minutes(rng.randrange(59)))
            status = rng.choice(statuses)
            types = ",".join(rng.sample(CASE_TYPES, rng.randint(1, 2)))
            form = rng.choice(CASE_TYPES) if rng.random() < 0.5 else None
            fields: dict[str, Any] = dict(
                sex=rng.choice(SEXES), age_band=rng.choice(AGE_BANDS),
                setting=rng.choice((*SETTINGS, None)), urgency=rng.choice(URGENCIES),
                status=status,
                outcome=rng.choice(OUTCOMES) if status == "closed" else None)
            rows.append(dict(
                commune_id=directory.commune_id, code=f"R-{n:04d}", types=types,
                confirmed_form=form, village_id=rng.choice(villages), created_at=created,
                acknowledged_at=(created + minutes(rng.randrange(1, 600))
                                 if status != "new" else None),
                assessed_at=(created + minutes(rng.randrange(60, 2000))
                             if status in ("assessed", "closed") else None),
                escalation_level=rng.choice((1, 1, 2)),
                description="không bao giờ vào thống kê", **fields))
            if not inside:
                continue
            fields["form"] = form or types.split(",")[0]
            fields["setting"] = fields["setting"] or "unknown"
            fields["outcome"] = fields["outcome"] or "open"
            for name in PROVINCE_BREAKDOWNS:
                counts[name][fields[name]] += 1
    await add_case_rows(sim.app, rows)
    return expected


async def download(sim: Simulator, url: str) -> tuple[int, str, bytes]:
    async with sim.http.get(f"{sim.base}{url}") as r:
        return r.status, r.headers.get("Content-Type", ""), await r.read()


def label(name: str, key: str, language: str = "vi") -> str:
    return i18n.render(value_text(name, key), language)


async def test_the_province_report_is_the_sum_of_its_communes(
        three: Simulator, province: ProvinceConfig) -> None:
    sim = three
    expected = await add_random_cases(sim)
    names = sorted(expected, key=village_sort_key)  # "Hạc Thành" before "Hàm Rồng"
    totals = {name: sum(expected[name]["sex"].values()) for name in names}
    assert all(totals.values())
    cpu = sim["province.cpu"]
    await cpu.text("/stats 2026-Q4")
    table, communes, workbook, chart = await cpu.inbox()

    # The table: the province's name, its total, its breakdowns (by setting, not village).
    assert table["ids"][0] == "stats.chat.province_title" and table["media"] is None
    assert province.name in table["text"]
    assert f"Tổng số vụ: {sum(totals.values())}" in table["text"]
    assert i18n.t("stats.sheet.setting", "vi") in table["text"]
    assert i18n.t("stats.sheet.village", "vi") not in table["text"]
    # Each commune's count of cases, a line each, by name.
    assert communes["ids"] == ["stats.chat.communes"]
    lines = communes["text"].splitlines()[1:]
    assert lines == [f"{name}: {totals[name]}" for name in names]
    assert "không bao giờ" not in table["text"] + communes["text"]

    # The workbook: the summary, then a sheet per breakdown, a row per commune.
    assert workbook["ids"] == ["stats.file.province_workbook"]
    assert workbook["media"]["name"] == "safechild-thanh-hoa-2026-Q4.xlsx"
    status, mime, content = await download(sim, workbook["media"]["url"])
    assert status == 200 and mime == XLSX_MIME
    sheets = workbook_values(content)
    t = lambda msgid: i18n.t(msgid, "vi")  # noqa: E731
    assert list(sheets) == [t("stats.sheet.summary"),
                            *(t(f"stats.sheet.{name}") for name in PROVINCE_BREAKDOWNS)]
    summary = {row[0]: row[1] for row in sheets[t("stats.sheet.summary")] if row and row[0]}
    assert summary[t("stats.summary.total")] == sum(totals.values())
    own: dict[str, Any] = {}
    async with sim.app.database.read() as tx:
        for directory in sim.app.communes:
            own[directory.config.name] = await period_stats(tx, directory.commune_id, Q4)
    for name in ("acknowledged", "assessed", "assessed_within_12h", "escalated"):
        assert summary[t(f"stats.summary.{name}")] == sum(
            getattr(stats, name) for stats in own.values()), name
    for breakdown in PROVINCE_BREAKDOWNS:
        header, *rows, total = sheets[t(f"stats.sheet.{breakdown}")]
        assert header[0] == t("stats.col.commune") and header[-1] == t("stats.summary.total")
        assert [row[0] for row in rows] == names
        assert total[0] == t("stats.summary.total")
        keys = [key for key, _ in own[names[0]].breakdown(breakdown)]
        assert list(header[1:-1]) == [label(breakdown, key) for key in keys]
        for row in rows:
            counts = dict(zip(keys, row[1:-1], strict=True))
            # As the cases were written, and as the commune's own statistics count them.
            assert counts == {key: expected[row[0]][breakdown][key] for key in keys}, row
            assert counts == dict(own[row[0]].breakdown(breakdown)), row
            assert row[-1] == totals[row[0]]
        # The province's row is the communes' rows added up, column by column.
        assert list(total[1:]) == [sum(row[n] for row in rows)
                                   for n in range(1, len(header))], breakdown
    setting = sheets[t("stats.sheet.setting")]
    assert list(setting[0][1:-1]) == [label("setting", key) for key in SETTING_KEYS]

    assert chart["ids"] == ["stats.file.province_chart"]
    status, mime, content = await download(sim, chart["media"]["url"])
    assert status == 200 and mime == "image/png"
    check_png(content)

    # Each commune's officer reads the same numbers in their own /stats (indicator 0101:
    # form, sex and age group in their workbook; the setting in their statistics above).
    for n, name in enumerate(province.communes):
        officer = sim[phone(province, n, "officer")]
        await officer.text("/stats 2026-Q4")
        mine, book, _ = await officer.inbox()
        assert mine["ids"][0] == "stats.chat.title" and name.name in mine["text"]
        assert f"Tổng số vụ: {totals[name.name]}" in mine["text"]
        status, _, content = await download(sim, book["media"]["url"])
        theirs = workbook_values(content)
        for breakdown in ("form", "sex", "age_band"):
            counted = {row[0]: row[1] for row in theirs[t(f"stats.sheet.{breakdown}")][1:-1]}
            province_row = next(r for r in sheets[t(f"stats.sheet.{breakdown}")]
                                if r[0] == name.name)
            header = sheets[t(f"stats.sheet.{breakdown}")][0]
            assert counted == dict(zip(header[1:-1], province_row[1:-1], strict=True))


async def test_the_menu_buttons_and_who_gets_which_report(
        three: Simulator, province: ProvinceConfig) -> None:
    sim = three
    await add_random_cases(sim)
    admin = sim["province.province_admin"]
    await admin.tap("menu:stats")
    (choices,) = await admin.inbox()
    assert choices["ids"] == ["stats.usage"]
    await admin.tap("stats:2026-Q4")
    assert [m["ids"][0] for m in await admin.inbox()] == [
        "stats.chat.province_title", "stats.chat.communes", "stats.file.province_workbook",
        "stats.file.province_chart"]
    # A month without a case: the table says so, no list of communes, both files.
    await admin.text("/stats 2025-02")
    assert [m["ids"][0] for m in await admin.inbox()] == [
        "stats.chat.province_title", "stats.file.province_workbook",
        "stats.file.province_chart"]
    # A commune's leader keeps their commune's report.
    leader = sim[phone(province, 1, "leader")]
    await leader.text("/stats 2026-Q4")
    assert [m["ids"][0] for m in await leader.inbox()] == [
        "stats.chat.title", "stats.file.workbook", "stats.file.chart"]


async def test_a_province_report_in_english(three: Simulator, province: ProvinceConfig) -> None:
    sim = three
    await add_random_cases(sim)
    async with sim.app.database.transaction() as tx:
        replies = await province_report(tx, sim.app.communes, Q4, "en",
                                        sim.app.clock.now() + timedelta(days=60))
    texts = ["\n\n".join(i18n.render(t, "en") for t in r.texts) for r in replies]
    assert texts[0].startswith(f"📊 Case figures: {province.name}, all communes")
    assert "so far" not in texts[0]
    assert texts[1].startswith(f"🏘 Cases per commune ({COMMUNES} communes):")
    for text in texts:
        assert "{" not in text and "}" not in text
