"""Time to read and check a province's configuration (issue 14: the whole bot of a province
of 100 communes must start in under 10 s; this is the configuration's share).

    .venv/bin/python -m bench.province [--communes 100] [--runs 5]

Writes a province folder of N communes of Thanh Hóa from the official list (30 people each,
tests/support/province.py) to a temporary folder, then prints:
- `load_province` in this process, first run (the official list indexed on first use) and
  best of `--runs`;
- `python -m bot.cli check-config` as an operator runs it, wall time (Python's start, the
  command line's imports, loading, checking, printing), best of `--runs`;
- the bot's own start on a SQLite file (`build_app` with the simulator channel: migrations,
  the province and every commune written into the database, the workers built), first on
  a new database and again on the same one (a restart);
and the machine's core count. Exits non-zero when check-config finds something missing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bot.app import Setup, build_app
from bot.clock import SystemClock
from bot.config import load_province
from bot.domain.province import ProvinceConfig
from bot.handlers.simulator import SimulatorPlugin
from tests.support.province import write_province


async def start(province: ProvinceConfig, db: Path) -> float:
    started = time.perf_counter()
    app = await build_app(Setup(f"sqlite+aiosqlite:///{db}", province, SystemClock()),
                          [SimulatorPlugin()])
    took = time.perf_counter() - started
    await app.close()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.province")
    parser.add_argument("--communes", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = write_province(Path(folder), communes=args.communes)
        loads: list[float] = []
        for _ in range(args.runs):
            started = time.perf_counter()
            province = load_province(path)
            loads.append(time.perf_counter() - started)
        people = sum(len(c.people) for c in province.communes) + len(province.people)
        checks: list[float] = []
        for _ in range(args.runs):
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "bot.cli", "check-config", str(path)],
                                  capture_output=True, text=True, check=False)
            checks.append(time.perf_counter() - started)
            if done.returncode != 0:
                sys.exit(f"check-config exited {done.returncode}: {done.stderr or done.stdout}")
        db = Path(folder) / "bench.db"
        fresh = asyncio.run(start(province, db))
        again = asyncio.run(start(province, db))
    print(f"province of {args.communes} communes, {people} people; "
          f"{os.cpu_count()} cores")
    print(f"load_province: first {loads[0]:.3f} s, best {min(loads):.3f} s")
    print(f"safechild check-config (process): best {min(checks):.2f} s, "
          f"worst {max(checks):.2f} s")
    print(f"bot start (build_app, SQLite): new database {fresh:.2f} s, restart {again:.2f} s")


if __name__ == "__main__":
    main()
