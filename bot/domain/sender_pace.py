"""How fast one person is writing (domain layer): the messages of the current minute.

A minute starts with the first message after the last minute ended; every message in it
counts. Past the limit the bot still takes in what they send (nothing is lost), but answers
them once, to slow down, instead of every time: one account cannot spend the channel's
sending budget that everyone else's answers and alerts need.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

MINUTE: Final = timedelta(minutes=1)


@dataclass(frozen=True)
class Pace:
    since: datetime | None = None
    count: int = 0


NOT_YET: Final = Pace()


@dataclass(frozen=True)
class Paced:
    pace: Pace
    # Past the limit in this minute: answered no more, except…
    over: bool
    # …the first message past it, which is told to slow down.
    first_over: bool


def paced(before: Pace, now: datetime, per_minute: int) -> Paced:
    """The pace once this message is counted."""
    if before.since is None or now - before.since >= MINUTE or now < before.since:
        pace = Pace(now, 1)
    else:
        pace = Pace(before.since, before.count + 1)
    return Paced(pace, pace.count > per_minute, pace.count == per_minute + 1)
