"""The loop shared by the timer sweeper and the outbox worker: do what is due, then sleep
until the next due time, a poke, or `idle` seconds, whichever comes first."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from bot.clock import Clock

log = logging.getLogger(__name__)
# Work leased by another process is due but not ours: never spin on it.
MIN_WAIT = 0.2


async def sweep_forever(stop: asyncio.Event, wake: asyncio.Event, clock: Clock,
                        sweep: Callable[[], Awaitable[int]],
                        next_due: Callable[[], Awaitable[datetime | None]],
                        idle: float, name: str) -> None:
    while not stop.is_set():
        # Cleared before sweeping, so a poke that arrives during the sweep is not lost.
        wake.clear()
        try:
            while await sweep():
                pass
            due = await next_due()
        except Exception:  # a database hiccup must not stop the work for good
            log.exception("%s sweep failed", name)
            due = None
        wait = idle
        if due is not None:
            wait = max(MIN_WAIT, min(idle, (due - clock.now()).total_seconds()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=wait)
