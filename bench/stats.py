"""Time and memory of period statistics on a large SQLite database.

    .venv/bin/python -m bench.stats [--cases 100000] [--runs 3] [--province N] [--postgres]

Writes N cases spread over 2026 (varied forms, sexes, ages, villages, urgencies, statuses,
outcomes, times) into a fresh SQLite file, then measures, for the year and for one quarter:
- the statistics alone (`period_reports.period_stats`: one statement, counted by breakdown),
- the whole `period_reports.period_report` a reminder or /stats runs (statistics, chat table,
  XLSX, PNG, both files stored),
best of `--runs`, and the peak Python memory of each (tracemalloc, a separate run since it
slows everything down) plus the process's peak RSS. Exits non-zero if the counts are wrong.

With `--province N` the cases are spread over the N communes of a test province (Thanh Hóa,
tests/support/province.py) and what is measured is the province's report a province person
gets from /stats (`province_figures`: each commune counted by breakdown in one statement for
the whole province, then added up;
`province_report`: that, the table, the per-commune list, the XLSX and the chart).
`--postgres` runs on a throwaway PostgreSQL server (tests/support/pg.py) instead of SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.config import DEMO_CONFIG, load_commune, load_province
from bot.domain.cases import SETTINGS
from bot.domain.local_time import LOCAL_TZ
from bot.domain.periods import Period
from bot.domain.statistics import AGE_BANDS, FORMS, OUTCOMES, SEXES, URGENCIES
from bot.services.directory import Communes, Directory, sync_commune, sync_province
from bot.services.period_reports import (
    period_report,
    period_stats,
    province_figures,
    province_report,
)
from storage.db import Database
from tests.support.database import insert_rows
from tests.support.pg import PostgresServer, use_test_keys
from tests.support.province import write_province

YEAR = Period("year", 2026)
QUARTER = Period("quarter", 2026, 2)
BATCH = 5_000


def fake_cases(n: int, commune_id: int, villages: list[int | None],
               seed: int = 7, prefix: str = "B") -> list[dict[str, Any]]:
    rng = random.Random(seed)
    start, _ = YEAR.bounds()
    seconds = 365 * 24 * 3600
    rows: list[dict[str, Any]] = []
    for i in range(n):
        created = start + timedelta(seconds=rng.randrange(seconds))
        status = rng.choice(("new", "acknowledged", "assessed", "closed"))
        ack = created + timedelta(minutes=rng.expovariate(1 / 90)) if status != "new" else None
        assessed = (created + timedelta(minutes=rng.expovariate(1 / 600))
                    if status in ("assessed", "closed") else None)
        types = ",".join(rng.sample(FORMS, rng.randint(1, 2)))
        rows.append(dict(
            commune_id=commune_id, code=f"{prefix}-{i:07d}", types=types,
            confirmed_form=rng.choice(FORMS) if assessed and rng.random() < 0.7 else None,
            sex=rng.choice(SEXES), age_band=rng.choice(AGE_BANDS),
            setting=rng.choice((*SETTINGS, None)) if assessed else None,
            village_id=rng.choice(villages), urgency=rng.choice(URGENCIES), status=status,
            outcome=rng.choice(OUTCOMES) if status == "closed" else None, created_at=created,
            acknowledged_at=ack, assessed_at=assessed,
            escalation_level=1 if rng.random() < 0.8 else 2, danger="unsure",
            police_case=False, child_count=1, reporter_anonymous=True, version=1))
    return rows


async def best_of(runs: int, work: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(runs):
        gc.collect()
        began = time.perf_counter()
        result = await work()
        best = min(best, time.perf_counter() - began)
    return best, result


async def peak_memory(work: Callable[[], Awaitable[Any]]) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        await work()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


async def main(cases: int, runs: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        db = await Database.open(f"sqlite+aiosqlite:///{Path(tmp) / 'stats.db'}")
        now = datetime(2027, 1, 5, 9, 0, tzinfo=LOCAL_TZ).astimezone(UTC)
        async with db.transaction() as s:
            directory: Directory = await sync_commune(s, load_commune(DEMO_CONFIG), now)
        villages: list[int | None] = [*directory.village_ids.values(), None]
        began = time.perf_counter()
        rows = fake_cases(cases, directory.commune_id, villages)
        await insert_rows(db, "cases", rows, BATCH)
        del rows
        print(f"wrote {cases:,} cases in {time.perf_counter() - began:.1f} s")

        async def stats_of(period: Period) -> Any:
            async with db.read() as s:
                return await period_stats(s, directory.commune_id, period)

        async def report_of(period: Period) -> Any:
            async with db.transaction() as s:
                return await period_report(s, directory, period, "vi", now)

        failed = False
        for period in (YEAR, QUARTER):
            seconds, stats = await best_of(runs, lambda p=period: stats_of(p))
            report_seconds, _ = await best_of(runs, lambda p=period: report_of(p))
            stats_mib = await peak_memory(lambda p=period: stats_of(p))
            report_mib = await peak_memory(lambda p=period: report_of(p))
            print(f"{period.label:>8}: {stats.total:>7,} cases | statistics {seconds:.2f} s, "
                  f"peak {stats_mib:.0f} MiB | whole report (table+XLSX+PNG) "
                  f"{report_seconds:.2f} s, peak {report_mib:.0f} MiB")
            if period == YEAR and stats.total != cases:
                print(f"FAIL: the year counted {stats.total} cases, not {cases}")
                failed = True
        await db.close()
    # ru_maxrss is in KiB on Linux.
    print(f"process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 1 if failed else 0


async def main_province(cases: int, runs: int, communes: int, postgres: bool) -> int:
    server = PostgresServer() if postgres else None
    if server is not None:
        use_test_keys()
    with tempfile.TemporaryDirectory() as tmp:
        url = (server.create_database() if server is not None
               else f"sqlite+aiosqlite:///{Path(tmp) / 'stats.db'}")
        db = await Database.open(url)
        now = datetime(2027, 1, 5, 9, 0, tzinfo=LOCAL_TZ).astimezone(UTC)
        province = load_province(write_province(Path(tmp), communes=communes))
        async with db.transaction() as s:
            served: Communes = await sync_province(s, province, now)
        began = time.perf_counter()
        each, extra = divmod(cases, communes)
        for n, directory in enumerate(served):
            villages: list[int | None] = [*directory.village_ids.values(), None]
            rows = fake_cases(each + (n < extra), directory.commune_id, villages, seed=n,
                              prefix=directory.config.code_prefix)
            await insert_rows(db, "cases", rows, BATCH)
        print(f"wrote {cases:,} cases in {communes} communes in "
              f"{time.perf_counter() - began:.1f} s "
              f"({'PostgreSQL' if postgres else 'SQLite'}, {os.cpu_count()} cores)")

        async def stats_of(period: Period) -> Any:
            async with db.read() as s:
                return (await province_figures(s, served, period))[0]

        async def report_of(period: Period) -> Any:
            async with db.transaction() as s:
                return await province_report(s, served, period, "vi", now)

        failed = False
        for period in (YEAR, QUARTER):
            seconds, stats = await best_of(runs, lambda p=period: stats_of(p))
            report_seconds, _ = await best_of(runs, lambda p=period: report_of(p))
            print(f"{period.label:>8}: {stats.total:>7,} cases | province statistics "
                  f"{seconds:.2f} s | whole province report (table+list+XLSX+PNG) "
                  f"{report_seconds:.2f} s")
            if period == YEAR and stats.total != cases:
                print(f"FAIL: the year counted {stats.total} cases, not {cases}")
                failed = True
        await db.close()
    if server is not None:
        server.close()
    print(f"process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--province", type=int, default=0, metavar="N",
                        help="spread the cases over a province of N communes")
    parser.add_argument("--postgres", action="store_true",
                        help="with --province: on a throwaway PostgreSQL server")
    args = parser.parse_args()
    if args.province:
        sys.exit(asyncio.run(main_province(args.cases, args.runs, args.province,
                                           args.postgres)))
    sys.exit(asyncio.run(main(args.cases, args.runs)))
