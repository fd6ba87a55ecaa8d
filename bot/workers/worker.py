"""The one protocol every background loop speaks (workers layer)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable


class Worker(Protocol):
    """Work that falls due: the scheduler asks when, and runs what is due.

    `run_due` does what is due at `now` (in transactions of its own) and says how much it
    did; the scheduler calls it again while it does something. `next_due` is when there is
    more to do (None: nothing known; the scheduler looks again after `idle` seconds).
    Both must be safe to call from several processes at once: the database decides who
    does what."""

    name: str
    # Longest sleep between looks, in seconds, whatever next_due says.
    idle: float

    async def run_due(self, now: datetime) -> int: ...

    async def next_due(self, now: datetime) -> datetime | None: ...


@runtime_checkable
class Finishing(Protocol):
    """A worker whose work can outlast `run_due` (sends under way in the background):
    `finish` waits for it and says how much it did. The scheduler calls it when the
    workers run until idle, and when it stops."""

    async def finish(self) -> int: ...
