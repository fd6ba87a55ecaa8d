"""Weeks of a commune's life on a fake clock, with pruning and without: table sizes.

    .venv/bin/python -m bench.month [--days 61] [--reports-per-day 3] [--delivered-days 30]
                                    [--files-days 7] [--postgres]

The demo commune's process (the simulator channel over loopback HTTP, every real worker, a
FakeClock from Monday 23 November 2026) lives through `--days` days, hour by hour (each hour
every worker settles, so timers fire on time and pruning runs hourly). Each day a citizen
reports `--reports-per-day` cases (the sexual-abuse story: officer and police alerted) at
office hours; within the hour the officer or the police takes the case (one case in five
waits a day, so its escalation climbs), assesses it the same day and closes it three days
later; on Mondays the officer asks for the month's statistics (a workbook and a chart);
the calendar's own reminders go out as they fall due.

The same life runs twice on fresh databases: once with the given retention, once with a
retention of a hundred years (nothing pruned). Printed: the rows each table holds at the
end, in all and per report made; and the time the pruning worker spent. The default
61 days live a month past the 30 days kept, so the first month's rows have aged out; a
month alone would prune only the statistics files.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from bot.app import App, Setup, build_app
from bot.clock import FakeClock
from bot.config import DEMO_CONFIG, load_commune
from bot.domain.commune import Retention
from bot.domain.local_time import LOCAL_TZ
from bot.handlers.simulator import SimulatorPlugin
from bot.workers.pruning import PruningWorker
from tests.support import START
from tests.support.database import count, rows
from tests.support.pg import PostgresServer, use_test_keys
from tests.support.simulator import Simulator
from tests.support.stories import REPORT_STEPS

TABLES = ("outbox", "sim_messages", "timers", "case_deadlines", "stored_files",
          "inbound_keys")
REPORT_HOURS = (8, 10, 14, 16, 9, 15)
HOUR = timedelta(hours=1)
NEVER = Retention(36_500, 36_500, 36_500, 36_500)


@dataclass
class Life:
    """What happened in one run, and the tables at its end."""

    retention: Retention
    reports: int = 0
    cases: int = 0
    taken: int = 0
    closed: int = 0
    statistics: int = 0
    sizes: dict[str, int] = field(default_factory=dict)
    prune_seconds: float = 0.0
    prune_runs: int = 0
    pruned: int = 0
    seconds: float = 0.0


class TimedPruning:
    """Times the app's own pruning worker when it is due (its next_due says when)."""

    def __init__(self, worker: PruningWorker, life: Life) -> None:
        self.worker, self.life = worker, life
        self.run_due: Callable[[datetime], Awaitable[int]] = worker.run_due
        worker.run_due = self._run_due  # type: ignore[method-assign]

    async def _run_due(self, now: datetime) -> int:
        due = await self.worker.next_due(now)
        if due is not None and now < due:
            return 0
        started = time.perf_counter()
        deleted = await self.run_due(now)
        self.life.prune_seconds += time.perf_counter() - started
        self.life.prune_runs += 1
        self.life.pruned += deleted
        return deleted


async def act(sim: Simulator, who: str, *choices: str, text: str | None = None) -> None:
    phone = sim[who]
    for choice in choices:
        await phone.tap(choice)
    if text is not None:
        await phone.text(text)
    await phone.inbox()


async def assess(sim: Simulator, who: str, case_id: int) -> None:
    await act(sim, who, f"case:assess:{case_id}", "risk:medium",
              text="Đã đến nhà, gặp bà ngoại của bé.")
    await act(sim, who, "form:sexual_abuse", "setting:community")


async def live(url: str, days: int, per_day: int, retention: Retention) -> Life:
    life = Life(retention)
    clock = FakeClock(START.replace(hour=0))
    commune = replace(load_commune(DEMO_CONFIG), retention=retention)
    app = await build_app(Setup(url, commune, clock), [SimulatorPlugin()])
    for worker in app.scheduler.workers:
        if isinstance(worker, PruningWorker):
            TimedPruning(worker, life)
    server = TestServer(app.server, host="127.0.0.1")
    await server.start_server()
    # (when, who, what) the officers do later; run in time order as the clock passes.
    later: list[tuple[datetime, str, str, int]] = []
    started = time.perf_counter()
    try:
        async with aiohttp.ClientSession() as http:
            sim = Simulator(app, http, str(server.make_url("")).rstrip("/"))
            for day in range(days):
                for hour in range(24):
                    clock.advance(HOUR)
                    await app.settle()
                    await hour_of(sim, app, clock, day, hour, per_day, later, life)
            life.seconds = time.perf_counter() - started
            life.sizes = {t: await count(app, t) for t in TABLES}
            life.cases = await count(app, "cases")
    finally:
        await server.close()
        await app.close()
    return life


async def hour_of(sim: Simulator, app: App, clock: FakeClock, day: int, hour: int,
                  per_day: int, later: list[tuple[datetime, str, str, int]],
                  life: Life) -> None:
    """What people do in this hour of local time."""
    now = clock.now()
    local = now.astimezone(LOCAL_TZ)
    for when, who, what, case_id in sorted(t for t in later if t[0] <= now):
        later.remove((when, who, what, case_id))
        if what == "take":
            await act(sim, who, f"case:ack:{case_id}")
            await assess(sim, who, case_id)
            later.append((now + timedelta(days=3), who, "close", case_id))
            life.taken += 1
        else:
            await act(sim, who, f"case:close:{case_id}", "outcome:supported",
                      text="Đã hỗ trợ gia đình, bé đã ổn.")
            await act(sim, who, "close:confirm")
            life.closed += 1
    if local.hour in REPORT_HOURS[:per_day]:
        citizen = sim["citizen"]
        for kind, value in REPORT_STEPS:
            await citizen.step(kind, value)
        await citizen.inbox()
        life.reports += 1
        case_id = max(int(c.id) for c in await rows(app, "cases"))
        who = "officer" if life.reports % 2 else "police"
        # One case in five waits a day for someone to take it; the others, the next hour.
        wait = timedelta(days=1) if life.reports % 5 == 0 else HOUR
        later.append((now + wait, who, "take", case_id))
    if local.weekday() == 0 and local.hour == 9:
        await act(sim, "officer", text=f"/stats {local:%Y-%m}")
        life.statistics += 1


def print_figures(days: int, per_day: int, backend: str, pruned: Life, kept: Life) -> None:
    r = pruned.retention
    print(f"SafeChild month benchmark: {days} days hour by hour, {per_day} reports a day, "
          f"{backend}")
    print(f"  reports {pruned.reports}, taken {pruned.taken}, closed {pruned.closed}, "
          f"statistics asked {pruned.statistics}")
    print(f"  retention: delivered {r.delivered_days} days, files {r.files_days} days "
          f"(inbound keys: 3 days, by the inbound worker, in both runs)")
    head = f"  {'table':<16}{'pruned':>10}{'per report':>12}{'not pruned':>13}{'per report':>12}"
    print(head)
    for table in TABLES:
        a, b = pruned.sizes[table], kept.sizes[table]
        print(f"  {table:<16}{a:>10}{a / pruned.reports:>12.2f}{b:>13}"
              f"{b / kept.reports:>12.2f}")
    print(f"  pruning worker: {pruned.prune_runs} passes, {pruned.pruned} rows "
          f"deleted, {pruned.prune_seconds:.2f} s in all "
          f"({pruned.prune_seconds / max(1, pruned.prune_runs) * 1000:.1f} ms each)")
    print(f"  wall time: {pruned.seconds:.0f} s pruned, {kept.seconds:.0f} s not pruned")


async def run(days: int, per_day: int, retention: Retention, postgres: bool) -> int:
    server = PostgresServer() if postgres else None
    if server is not None:
        use_test_keys()
    try:
        with tempfile.TemporaryDirectory(prefix="safechild-month-") as tmp:
            def url(name: str) -> str:
                if server is not None:
                    return str(server.create_database())
                return f"sqlite+aiosqlite:///{Path(tmp) / name}.db"

            pruned = await live(url("pruned"), days, per_day, retention)
            kept = await live(url("kept"), days, per_day, NEVER)
    finally:
        if server is not None:
            server.close()
    backend = "PostgreSQL" if postgres else "SQLite WAL"
    print_figures(days, per_day, backend, pruned, kept)
    if (pruned.reports, pruned.closed) != (kept.reports, kept.closed):
        print("FAILED: the two runs lived different lives", file=sys.stderr)
        return 1
    if pruned.cases != pruned.reports or kept.cases != kept.reports:
        print(f"FAILED: {pruned.cases} and {kept.cases} cases for {pruned.reports} reports",
              file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.month", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=61, help="days lived (default 61)")
    parser.add_argument("--reports-per-day", type=int, default=3,
                        help=f"reports a day, 1 to {len(REPORT_HOURS)} (default 3)")
    parser.add_argument("--delivered-days", type=int, default=30,
                        help="retention of delivered messages and timers")
    parser.add_argument("--files-days", type=int, default=7,
                        help="retention of statistics files")
    parser.add_argument("--postgres", action="store_true",
                        help="a throwaway PostgreSQL server on loopback instead of SQLite")
    args = parser.parse_args(argv)
    if args.days < 1 or not 1 <= args.reports_per_day <= len(REPORT_HOURS):
        parser.error("--days must be positive, --reports-per-day from 1 to "
                     f"{len(REPORT_HOURS)}")
    if args.delivered_days < 1 or args.files_days < 1:
        parser.error("retention is at least a day")
    logging.basicConfig(level=logging.WARNING)
    raise SystemExit(asyncio.run(run(args.days, args.reports_per_day,
                                     Retention(args.delivered_days, args.files_days),
                                     args.postgres)))


if __name__ == "__main__":
    main()
