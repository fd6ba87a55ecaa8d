"""A province's deadlines on PostgreSQL with several processes (issue 14, item 8).

    .venv/bin/python -m bench.province_pg [--communes 100] [--cases 100000]
                                          [--due 1000] [--processes 1,2,4]

For each process count: a fresh database with a province of N communes (30 people each),
`--cases` open URGENT cases written straight into it, each with its acknowledge deadline
and escalation timer; `--due` of those deadlines fall due over the first minute, the rest
over the next days. Then that many `safechild serve` processes (real clock, simulator
channel) share the database, and the bench prints:
- deadline lateness, from a timer's due time to the moment a process fired it (the
  escalation alert is queued in that same transaction): p50, p99, max;
- restart catch-up: every process stopped, 1,000 more deadlines made due while they were
  down, the processes started again: the time until all 1,000 have fired;
- each process's peak memory (VmHWM);
and the machine's core count (the processes, PostgreSQL and this script share it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

from bench.common import percentile
from bot.app import Setup, build_app
from bot.clock import SystemClock
from bot.config import load_province
from bot.handlers.simulator import SimulatorPlugin
from storage.db import Database
from tests.support import pg
from tests.support.processes import BotProcess, free_port
from tests.support.province import write_province
from tests.support.waiting import eventually

WINDOW = timedelta(seconds=60)
CATCH_UP = 1000


async def populate(url: str, province_file: Path, cases: int, due: int) -> None:
    app = await build_app(Setup(url, load_province(province_file), SystemClock()),
                          [SimulatorPlugin()])
    await app.close()
    database = await Database.open(url)
    try:
        async with database.transaction() as tx:
            await tx.conn.execute(text("""
                INSERT INTO cases (commune_id, code, types, urgency, danger, police_case,
                                   status, age_band, sex, child_count, reporter_anonymous,
                                   escalation_level, created_at, version)
                SELECT c.ids[(g % c.n) + 1], 'BX-2026-' || lpad(g::text, 7, '0'),
                       'violence', 'URGENT', 'no', true, 'new', 'unknown', 'unknown', 1,
                       true, 1, now() - interval '1 hour', 1
                FROM generate_series(1, :cases) g,
                     (SELECT array_agg(id ORDER BY id) AS ids, count(*)::int AS n
                      FROM communes WHERE code_prefix <> '') c"""), {"cases": cases})
            # The first `due` fall due over the first minute (from 20 s on, once the
            # processes are up); the others over the next days.
            await tx.conn.execute(text("""
                INSERT INTO case_deadlines (case_id, step, started_at, due_at, version)
                SELECT id, 'acknowledge', created_at,
                       CASE WHEN id <= :due
                            THEN now() + interval '20 seconds'
                                 + (id % 60) * interval '1 second'
                            ELSE now() + interval '1 day' + (id % 300000) * interval '1 second'
                       END, 1
                FROM cases"""), {"due": due})
            await tx.conn.execute(text("""
                INSERT INTO timers (deadline_id, kind, seq, fire_at, deadline_version)
                SELECT id, 'escalate1', 0, due_at, 1 FROM case_deadlines"""))
    finally:
        await database.close()


async def waiting(database: Database, where: str) -> int:
    """How many of the timers `where` picks have not fired yet."""
    async with database.read() as tx:
        return int((await tx.conn.execute(text(
            f"SELECT count(*) FROM timers WHERE {where} AND done_at IS NULL"))).scalar() or 0)


async def lateness(database: Database, where: str) -> list[float]:
    """Seconds from each fired timer's due time to its firing."""
    async with database.read() as tx:
        return [float(r[0]) for r in await tx.conn.execute(text(
            f"SELECT extract(epoch FROM done_at - fire_at) FROM timers "
            f"WHERE {where} AND done_at IS NOT NULL"))]


def peak_mb(proc: BotProcess) -> float:
    assert proc.proc is not None
    for line in Path(f"/proc/{proc.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def one_run(server: pg.PostgresServer, province_file: Path, tmp: Path, processes: int,
                  cases: int, due: int) -> dict[str, float]:
    url = server.create_database()
    await populate(url, province_file, cases, due)
    env = {"SAFECHILD_CONFIG": str(province_file)}
    procs = [BotProcess(tmp / "unused.db", free_port(), env, database_url=url,
                        log=tmp / f"bot-{processes}-{n}.log") for n in range(processes)]
    probe = await Database.open(url)
    try:
        await asyncio.gather(*(p.start(None, seconds=120) for p in procs))
        # The first escalation timers (each re-arms a next one an hour on, not counted).
        window = (f"seq = 0 AND deadline_id IN "
                  f"(SELECT id FROM case_deadlines WHERE case_id <= {due})")

        async def window_done() -> bool:
            return await waiting(probe, window) == 0

        try:
            await eventually(window_done, seconds=WINDOW.total_seconds() + 120)
        except AssertionError:
            raise SystemExit(f"{await waiting(probe, window)} due timers never fired; "
                             f"the process said: {procs[0].died()[-1500:]}") from None
        late = await lateness(probe, window)
        memory = max(peak_mb(p) for p in procs)
        for p in procs:
            p.stop()
        # Down: 1,000 deadlines of tomorrow fall due meanwhile.
        async with probe.transaction() as tx:
            await tx.conn.execute(text(f"""
                UPDATE timers SET fire_at = now() - interval '1 minute'
                WHERE id IN (SELECT id FROM timers WHERE done_at IS NULL
                             ORDER BY id LIMIT {CATCH_UP})"""))
            caught = [r[0] for r in await tx.conn.execute(text(
                "SELECT id FROM timers WHERE done_at IS NULL AND fire_at < now()"))]
        picked = f"id IN ({','.join(str(i) for i in caught)})"
        started = time.perf_counter()
        await asyncio.gather(*(p.start(None, seconds=120) for p in procs))

        async def caught_up() -> bool:
            return await waiting(probe, picked) == 0

        await eventually(caught_up, seconds=120)
        catch_up = time.perf_counter() - started
        return {"processes": processes, "fired": len(late),
                "late_p50_ms": 1000 * statistics.median(late),
                "late_p99_ms": 1000 * percentile(sorted(late), 0.99),
                "late_max_ms": 1000 * max(late), "catch_up_s": catch_up,
                "peak_mb": memory}
    finally:
        for p in procs:
            p.stop()
        await probe.close()


async def main_async(communes: int, cases: int, due: int, counts: list[int]) -> None:
    server = pg.PostgresServer()
    try:
        with tempfile.TemporaryDirectory() as folder:
            tmp = Path(folder)
            province_file = write_province(tmp, communes=communes)
            print(f"province of {communes} communes, {cases} open cases, {due} due in the "
                  f"first minute; {os.cpu_count()} cores (processes, PostgreSQL and the "
                  f"bench share them)", flush=True)
            for n in counts:
                got = await one_run(server, province_file, tmp, n, cases, due)
                print("  " + "  ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                                       for k, v in got.items()), flush=True)
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.province_pg")
    parser.add_argument("--communes", type=int, default=100)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=1000)
    parser.add_argument("--processes", default="1,2,4")
    args = parser.parse_args()
    asyncio.run(main_async(args.communes, args.cases, args.due,
                           [int(n) for n in args.processes.split(",")]))


if __name__ == "__main__":
    main()
