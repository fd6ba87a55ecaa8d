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
  down, the processes started again: the time until all 1,000 have fired, from the start
  command and from the moment every process answers its health check;
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

from bench.common import percentile
from storage.db import Database
from tests.support import pg
from tests.support.bulk_cases import lateness, make_due_while_down, populate, waiting
from tests.support.processes import BotProcess, free_port
from tests.support.province import write_province
from tests.support.waiting import eventually

WINDOW = timedelta(seconds=60)
CATCH_UP = 1000


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
        caught = await make_due_while_down(probe, CATCH_UP)
        picked = f"id IN ({','.join(str(i) for i in caught)})"
        started = time.perf_counter()
        await asyncio.gather(*(p.start(None, seconds=120) for p in procs))
        ready = time.perf_counter()

        async def caught_up() -> bool:
            return await waiting(probe, picked) == 0

        await eventually(caught_up, seconds=120)
        caught_at = time.perf_counter()
        catch_up, after_ready = caught_at - started, caught_at - ready
        return {"processes": processes, "fired": len(late),
                "late_p50_ms": 1000 * statistics.median(late),
                "late_p99_ms": 1000 * percentile(sorted(late), 0.99),
                "late_max_ms": 1000 * max(late), "catch_up_s": catch_up,
                "catch_up_after_ready_s": after_ready,
                "peak_mb": memory}
    finally:
        for p in procs:
            p.stop()
        await probe.close()


async def main_async(communes: int, cases: int, due: int, counts: list[int]) -> None:
    server = pg.PostgresServer()
    pg.use_test_keys()
    try:
        with tempfile.TemporaryDirectory() as folder:
            tmp = Path(folder)
            province_file = write_province(tmp, communes=communes, calendar=False)
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
