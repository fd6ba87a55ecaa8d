"""What sealing the private fields costs on the inbound path: bench.telegram's inbound part
(N reporters' whole report flows through the real Telegram adapter, SQLite) with the
encryption on and off, A/B interleaved.

    .venv/bin/python -m bench.encryption [--rounds 3] [--reporters 100]

Each round runs "on" then "off" (the order alternates round by round), each on a fresh
database; prints CPU ms per update and updates per second of every run, then the medians
and the cost of "on" over "off". On a shared machine the runs vary by more than the cost,
so a last run "on" also times the cipher itself (every seal and open, with a clock
around each): what sealing costs per update, whatever the machine's load.

Measured (2026-12-04, 2 shared cores at a load of 4-5, 100 reporters = 1,400 updates, 4
rounds): CPU ms/update on 16.60, 20.30, 19.25, 16.33 against off 16.42, 17.67, 16.47,
15.74; medians 17.92 against 16.45 (+9.0%), runs of one mode varying by up to 25%. The
cipher itself: 2.3 seals and 5.4 opens an update, 0.46 ms of 20.8 (2.2%); the rest of
the difference is the longer values written (base64 and the key id: 4/3 of the plain
size plus 37 characters) and the noise."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.telegram import part_inbound
from storage.crypto import FieldCipher


class CipherClock:
    """Wraps FieldCipher's seal and open with a clock: calls and seconds spent."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.seconds: Counter[str] = Counter()

    def __enter__(self) -> CipherClock:
        self.saved = FieldCipher.seal, FieldCipher.open
        for name, plain in zip(("seal", "open"), self.saved, strict=True):
            setattr(FieldCipher, name, self._timed(name, plain))
        return self

    def __exit__(self, *exc: object) -> None:
        FieldCipher.seal, FieldCipher.open = self.saved  # type: ignore[method-assign]

    def _timed(self, name: str, plain: Callable[[FieldCipher, str], str]
               ) -> Callable[[FieldCipher, str], str]:
        def timed(cipher: FieldCipher, value: str) -> str:
            started = time.perf_counter()
            try:
                return plain(cipher, value)
            finally:
                self.seconds[name] += time.perf_counter() - started
                self.calls[name] += 1
        return timed


async def timed_run(reporters: int) -> None:
    with CipherClock() as clock, tempfile.TemporaryDirectory(prefix="safechild-crypt-") as tmp:
        result = await part_inbound(Path(tmp), reporters, sealed=True)
    updates = result["updates"]
    spent = 1000 * sum(clock.seconds.values()) / updates
    print(f"timed run: {result['cpu_ms_per_update']:.2f} CPU ms/update, of which the cipher "
          f"{spent:.3f} ms ({100 * spent / result['cpu_ms_per_update']:.1f}%): "
          + ", ".join(f"{clock.calls[n] / updates:.1f} {n}s/update at "
                      f"{1e6 * clock.seconds[n] / max(1, clock.calls[n]):.1f} us"
                      for n in ("seal", "open")))


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
    asyncio.run(timed_run(args.reporters))
    cpu = {m: statistics.median(r["cpu_ms_per_update"] for r in rs) for m, rs in runs.items()}
    rate = {m: statistics.median(r["per_second"] for r in rs) for m, rs in runs.items()}
    print(f"median CPU ms/update: on {cpu['on']:.2f}, off {cpu['off']:.2f} "
          f"({100 * (cpu['on'] / cpu['off'] - 1):+.1f}%)")
    print(f"median updates/s: on {rate['on']:.0f}, off {rate['off']:.0f} "
          f"({100 * (rate['on'] / rate['off'] - 1):+.1f}%)")


if __name__ == "__main__":
    main()
