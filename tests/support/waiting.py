"""Waiting in real time for work running elsewhere (a background task, another process)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable


async def eventually(check: Callable[[], object], seconds: float = 10.0) -> None:
    """Wait until `check` (plain or async) is true; time-driven behaviour moves the fake
    clock instead."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        reached = check()
        if inspect.isawaitable(reached):
            reached = await reached
        if reached:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
