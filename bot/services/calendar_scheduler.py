"""When to look at the calendar: APScheduler wakes the reminder service (domain service).

One job sends what is due, then re-arms itself for the next due reminder, and at least every
RECHECK (another process may have changed the calendar). APScheduler only decides when to
wake; the database decides what was sent, so a lost or doubled wake-up changes nothing.

The waits are measured on the injected clock but slept in real time: with a FakeClock a
reminder a month ahead is not slept for; moving the clock calls `poke`, which runs the job
at once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Final

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from bot.clock import Clock
from bot.services.reminders import Reminders

log = logging.getLogger(__name__)
# APScheduler logs every run at INFO; a wake-up every few minutes is not news.
logging.getLogger("apscheduler").setLevel(logging.WARNING)
JOB_ID: Final[str] = "calendar"
RECHECK: Final[timedelta] = timedelta(minutes=10)


class CalendarScheduler:
    def __init__(self, reminders: Reminders, clock: Clock, recheck: timedelta = RECHECK
                 ) -> None:
        self.reminders = reminders
        self.clock = clock
        self.recheck = recheck
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        # One look at a time; a poke during a look makes another right after it.
        self._lock = asyncio.Lock()
        self._poked = False
        self._stopped = False
        self._looks: set[asyncio.Task[None]] = set()
        self.runs = 0

    def start(self) -> None:
        """Start on the running event loop and look at once (catching up after downtime)."""
        self.scheduler.start()
        self._arm(timedelta(0))

    def poke(self) -> None:
        """Look now: the clock moved or the calendar changed."""
        if self._stopped or not self.scheduler.running:
            return
        if self._lock.locked():
            self._poked = True
            return
        self._arm(timedelta(0))

    async def stop(self) -> None:
        """Stop waking; wait for a look in progress, so the database can be closed."""
        self._stopped = True
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        async with self._lock:
            pass

    def _arm(self, wait: timedelta) -> None:
        run_at = datetime.now(UTC) + max(wait, timedelta(0))
        # Several instances allowed: our lock serialises them, and APScheduler must never
        # drop a wake-up because the previous run has not quite finished.
        self.scheduler.add_job(self._run, DateTrigger(run_date=run_at), id=JOB_ID,
                               replace_existing=True, max_instances=3,
                               misfire_grace_time=None, coalesce=True)

    async def _run(self) -> None:
        # APScheduler cancels running jobs when it shuts down. A look cut off in the middle
        # of a query leaves its connection broken and, on SQLite, the write lock taken: the
        # look runs on by itself, and stop() waits for it on the lock.
        look = asyncio.ensure_future(self._look())
        self._looks.add(look)
        look.add_done_callback(self._looks.discard)
        await asyncio.shield(look)

    async def _look(self) -> None:
        async with self._lock:
            if self._stopped:
                return
            self._poked = False
            due = None
            try:
                _, due = await self.reminders.look(self.clock.now())
            except Exception:  # a database hiccup must not stop the calendar for good
                log.exception("calendar run failed")
            self.runs += 1
            wait = self.recheck
            if due is not None:
                wait = min(wait, due - self.clock.now())
            if self._poked:
                wait = timedelta(0)
            if not self._stopped:
                self._arm(wait)
