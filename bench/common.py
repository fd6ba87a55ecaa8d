"""What the benchmarks share: waiting for the measured work, and one percentile rule, so the
figures of different benchmarks compare."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q of all values at or below it."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(q * len(ordered)))) - 1]


async def until(check: Callable[[], bool], limit: float = 600, every: float = 0.01) -> None:
    """Poll `check` (it must be cheap: the benchmark's own process pays for it)."""
    deadline = time.perf_counter() + limit
    while not check():
        if time.perf_counter() > deadline:
            raise TimeoutError("benchmark did not finish")
        await asyncio.sleep(every)
