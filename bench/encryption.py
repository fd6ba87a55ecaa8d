"""What sealing the private fields costs on the inbound path: bench.telegram's inbound part
(N reporters' whole report flows through the real Telegram adapter, SQLite) with the
encryption on and off, A/B interleaved.

    .venv/bin/python -m bench.encryption [--rounds 3] [--reporters 100]

Each round runs "on" then "off" (the order alternates round by round), each on a fresh
database; prints CPU ms per update and updates per second of every run, then the medians
and the cost of "on" over "off"."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.telegram import part_inbound


async def run(rounds: int, reporters: int) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
    for n in range(rounds):
        order = ("on", "off") if n % 2 == 0 else ("off", "on")
        for mode in order:
            with tempfile.TemporaryDirectory(prefix="safechild-crypt-") as tmp:
                result = await part_inbound(Path(tmp), reporters, sealed=mode == "on")
            runs[mode].append(result)
            print(f"round {n + 1} {mode:>3}: {result['cpu_ms_per_update']:.2f} CPU ms/update, "
                  f"{result['per_second']:.0f} updates/s ({result['updates']} updates)",
                  flush=True)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reporters", type=int, default=100)
    args = parser.parse_args()
    runs = asyncio.run(run(args.rounds, args.reporters))
    cpu = {m: statistics.median(r["cpu_ms_per_update"] for r in rs) for m, rs in runs.items()}
    rate = {m: statistics.median(r["per_second"] for r in rs) for m, rs in runs.items()}
    print(f"median CPU ms/update: on {cpu['on']:.2f}, off {cpu['off']:.2f} "
          f"({100 * (cpu['on'] / cpu['off'] - 1):+.1f}%)")
    print(f"median updates/s: on {rate['on']:.0f}, off {rate['off']:.0f} "
          f"({100 * (rate['on'] / rate['off'] - 1):+.1f}%)")


if __name__ == "__main__":
    main()
