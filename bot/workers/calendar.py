"""The calendar worker (workers layer): sends the calendars' due reminders (each commune's,
and a province's own) and wakes again at the next one, and at least every RECHECK (another
process, or an admin in chat, may have changed the calendar)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Final

from bot.services.calendar_reminders import Reminders

RECHECK: Final[timedelta] = timedelta(minutes=10)


class CalendarWorker:
    name = "calendar"

    def __init__(self, reminders: Sequence[Reminders], recheck: timedelta = RECHECK,
                 on_queued: Callable[[], None] | None = None) -> None:
        # One calendar per commune served, and the province's own in a province.
        self.reminders = list(reminders)
        # Reminders were queued: the delivery worker should look.
        self.on_queued = on_queued
        self.idle = recheck.total_seconds()
        # When the next reminder falls due, from the last look (one read of the calendar
        # gives both what is due and what comes next).
        self._next: datetime | None = None
        self.looks = 0

    async def run_due(self, now: datetime) -> int:
        sent, nexts = 0, []
        for place in self.reminders:
            some, after = await place.look(now)
            sent += some
            if after is not None:
                nexts.append(after)
        self._next = min(nexts, default=None)
        self.looks += 1
        if sent and self.on_queued is not None:
            self.on_queued()
        return sent

    async def next_due(self, now: datetime) -> datetime | None:
        return self._next
