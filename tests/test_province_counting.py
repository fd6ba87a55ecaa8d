"""The database counts a province's statistics (storage.statistics.case_counts: GROUP BYs
on PostgreSQL, one read counted in C on SQLite) exactly as Python counted each case before
(bot.domain.statistics.compute over one CaseFacts a case): on varied and awkward cases
(odd values outside the vocabulary, typed places with stray spaces, times with
microseconds, a wait of exactly 12 hours, clock skew, periods' edges), each commune's
figures, and the province's, equal the counting of the cases one by one, medians and p90s
to the last bit."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.config import load_province
from bot.domain.cases import AGE_BANDS, CASE_TYPES, OUTCOMES, SETTINGS, SEXES, STATUSES
from bot.domain.local_time import LOCAL_TZ
from bot.domain.periods import Period
from bot.domain.statistics import (
    PROVINCE_BREAKDOWNS,
    CaseFacts,
    PeriodStats,
    compute,
)
from bot.services.directory import Communes, sync_province
from bot.services.period_reports import period_stats, place_name, province_figures
from storage.db import Database
from tests.support.database import insert_rows
from tests.support.province import write_province

YEAR = Period("year", 2026)
MONTH = Period("month", 2026, 6)  # short: read through the created_at index on SQLite
COMMUNES = 3


@pytest.fixture
async def province(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[Database, Communes]]:
    db = await Database.open(db_url)
    now = datetime(2027, 1, 5, 9, 0, tzinfo=LOCAL_TZ)
    async with db.transaction() as tx:
        communes = await sync_province(
            tx, load_province(write_province(tmp_path, communes=COMMUNES)), now)
    try:
        yield db, communes
    finally:
        await db.close()


def awkward_cases(communes: Communes, seed: int = 8) -> list[dict[str, Any]]:
    """Cases over 2026 and just outside it, in every commune, with the values a counting
    could get wrong."""
    rng = random.Random(seed)
    start, end = YEAR.bounds()
    rows: list[dict[str, Any]] = []
    for directory in communes:
        villages: list[int | None] = [*directory.village_ids.values(), None]
        for _ in range(rng.randint(150, 250)):
            n = len(rows)
            created = start + timedelta(seconds=rng.randrange(365 * 24 * 3600),
                                        microseconds=rng.choice((0, rng.randrange(10**6))))
            if n % 37 == 0:
                created = rng.choice((start, end - timedelta(microseconds=1),
                                      start - timedelta(microseconds=1), end))
            status = rng.choice((*STATUSES, "odd"))
            wait = rng.choice((
                timedelta(minutes=rng.expovariate(1 / 90), microseconds=rng.randrange(10**6)),
                timedelta(hours=12), timedelta(hours=12, microseconds=1),
                timedelta(seconds=-rng.randrange(1, 600)),  # another writer's clock
                timedelta(0), timedelta(minutes=45)))
            ack = created + wait if status != "new" else None
            assessed = (created + rng.choice((wait, timedelta(hours=rng.randrange(1, 40))))
                        if status in ("assessed", "closed", "odd") else None)
            village = rng.choice(villages)
            rows.append(dict(
                commune_id=directory.commune_id, code=f"{directory.config.code_prefix}-{n}",
                types=rng.choice((",".join(rng.sample(CASE_TYPES, rng.randint(1, 3))),
                                  ",violence", "", "a_new_form", "injury,")),
                confirmed_form=rng.choice((None, None, "", *CASE_TYPES, "unheard_of")),
                sex=rng.choice((*SEXES, "x")), age_band=rng.choice((*AGE_BANDS, "99+")),
                setting=rng.choice((None, "", *SETTINGS, "river")),
                village_id=village,
                location_text=None if village else rng.choice((
                    None, "", "Bến  Đò", " Bến Đò ", "bến đò", "x" * 50)),
                urgency=rng.choice(("EMERGENCY", "URGENT", "STANDARD", "urgent", "NORMAL",
                                    " standard ")),
                status=status,
                outcome=rng.choice((None, "", *OUTCOMES, "moved_away"))
                if status == "closed" else rng.choice((None, None, "")),
                created_at=created, acknowledged_at=ack, assessed_at=assessed,
                escalation_level=rng.choice((0, 1, 1, 2, 3)), danger="unsure",
                police_case=False, child_count=1, reporter_anonymous=True, version=1))
    return rows


def first_type(types: str) -> str:
    return next((t for t in types.split(",") if t), "other")


def one_by_one(period: Period, rows: list[dict[str, Any]], villages: dict[int, str],
               names: list[str] | tuple[()] = ()) -> PeriodStats:
    """What the cases count as, one CaseFacts a case, as period_tally counted before the
    database did."""
    start, end = period.bounds()
    facts = [CaseFacts(
        code=row["code"], form=row["confirmed_form"] or first_type(row["types"]),
        sex=row["sex"], age_band=row["age_band"],
        village=place_name(villages.get(row["village_id"]) or row["location_text"]),
        urgency=row["urgency"], status=row["status"], outcome=row["outcome"],
        created_at=row["created_at"], acknowledged_at=row["acknowledged_at"],
        assessed_at=row["assessed_at"], escalated=row["escalation_level"] > 1,
        setting=row["setting"]) for row in rows if start <= row["created_at"] < end]
    return compute(period, facts, names)


@pytest.mark.parametrize("period", [YEAR, MONTH], ids=["year", "month"])
async def test_the_database_counts_as_python_counted_each_case(
        province: tuple[Database, Communes], period: Period) -> None:
    db, communes = province
    rows = awkward_cases(communes)
    await insert_rows(db, "cases", rows)
    villages = {vid: name for d in communes for vid, name in d.village_names.items()}
    async with db.read() as tx:
        whole, per_commune = await province_figures(tx, communes, period)
        own = {d.config.name: await period_stats(tx, d.commune_id, period,
                                                 [name for _, name in d.config.villages])
               for d in communes}
    assert whole == one_by_one(period, rows, villages)
    for directory in communes:
        name = directory.config.name
        theirs = [row for row in rows if row["commune_id"] == directory.commune_id]
        expected = one_by_one(period, theirs, villages,
                              [n for _, n in directory.config.villages])
        assert own[name] == expected, name
        assert dict(per_commune)[name] == expected, name
    # Indicator 0101's breakdowns (and the rest) of the province: its communes' added up.
    for breakdown in PROVINCE_BREAKDOWNS:
        added: dict[str, int] = {}
        for _, stats in per_commune:
            for key, n in stats.breakdown(breakdown):
                added[key] = added.get(key, 0) + n
        assert dict(whole.breakdown(breakdown)) == added, breakdown
    if period == YEAR:
        # The awkward values are really there, or the test would prove little.
        assert dict(whole.by_sex)["x"] and dict(whole.by_setting)["river"]
        assert dict(whole.by_form)["unheard_of"] and dict(whole.by_form)["a_new_form"]
        assert dict(whole.by_urgency)["STANDARD"] and whole.escalated
        assert whole.ack_median_min is not None and whole.assess_p90_min is not None
