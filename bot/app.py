"""Wiring: builds the engine (database, directory, services, workers) for one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import Clock, FakeClock, SystemClock
from bot.config import Settings
from bot.domain.commune import CommuneConfig
from bot.domain.work_hours import WorkHours
from bot.services.broadcasts import Broadcasts, BroadcastTracker
from bot.services.calendar_commands import CalendarCommands
from bot.services.calendar_scheduler import CalendarScheduler
from bot.services.cases import CaseService
from bot.services.conversation import ConversationService
from bot.services.directory import Directory, sync_commune
from bot.services.escalation import Escalation, TimerSweeper
from bot.services.inbound_queue import InboundWorker
from bot.services.outbox import SERVED, Channel, OutboxWorker
from bot.services.reminders import Reminders
from bot.services.reports import Reports, period_report
from storage.db import make_engine, migrate, sessionmaker
from storage.models import Outbox

log = logging.getLogger(__name__)
CLOSE_GRACE = 5.0


@dataclass
class Engine:
    """Everything one process runs; channels are attached by the adapters."""

    db: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    directory: Directory
    cases: CaseService
    conversations: ConversationService
    sweeper: TimerSweeper
    outbox: OutboxWorker
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    reminders: Reminders | None = None
    calendar: CalendarScheduler | None = None
    broadcasts: BroadcastTracker | None = None
    # Webhook events stored before their 200, handled afterwards (Zalo).
    inbound: InboundWorker | None = None

    def poke(self) -> None:
        self.outbox.wake.set()
        if self.inbound is not None:
            self.inbound.wake.set()
        self.sweeper.wake.set()
        if self.calendar is not None:
            self.calendar.poke()
        if self.broadcasts is not None:
            self.broadcasts.wake.set()

    async def start_workers(self) -> None:
        self.tasks.append(asyncio.create_task(self.sweeper.run(self.stop)))
        self.tasks.append(asyncio.create_task(self.outbox.run(self.stop)))
        if self.calendar is not None:
            self.calendar.start()
        if self.broadcasts is not None:
            self.tasks.append(asyncio.create_task(self.broadcasts.run(self.stop)))
        if self.inbound is not None:
            self.tasks.append(asyncio.create_task(self.inbound.run(self.stop)))
        if isinstance(self.clock, FakeClock):
            self.tasks.append(asyncio.create_task(self._follow_fake_clock(self.clock)))

    async def _follow_fake_clock(self, clock: FakeClock) -> None:
        while not self.stop.is_set():
            await clock.moved.wait()
            clock.moved.clear()
            self.poke()

    async def close(self) -> None:
        self.stop.set()
        if self.calendar is not None:
            await self.calendar.stop()
        self.poke()
        if isinstance(self.clock, FakeClock):
            self.clock.moved.set()  # the clock follower's wait, so it sees the stop too
        # Each worker ends after its current sweep (cancelled in the middle of a query, a
        # connection could keep SQLite's write lock); one stuck past the grace is cancelled.
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=CLOSE_GRACE)
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.db.dispose()


def make_clock(settings: Settings) -> Clock:
    if settings.fake_clock_start:
        return FakeClock(datetime.fromisoformat(settings.fake_clock_start))
    return SystemClock()


async def build_engine(database_url: str, commune: CommuneConfig, clock: Clock,
                       channels: dict[str, Channel]) -> Engine:
    """Migrate the database, sync the commune file, wire the services."""
    db = make_engine(database_url)
    await migrate(db)
    sessions = sessionmaker(db)
    async with sessions.begin() as s:
        directory = await sync_commune(s, commune, clock.now())
    calendar = WorkHours(*commune.working_hours)
    escalation = Escalation(directory, calendar)
    cases = CaseService(directory, escalation)
    outbox = OutboxWorker(sessions, clock, channels)
    # Every session knows the channels this process delivers on (the worker's live table, so
    # a channel attached later counts), and messages are only queued on those: a row on a
    # channel nobody serves would wait for ever.
    sessions.configure(info={SERVED: outbox.channels})
    sweeper = TimerSweeper(sessions, clock, escalation, on_sent=outbox.wake.set)

    async def reroute(s: AsyncSession, row: Outbox, now: datetime) -> None:
        # Only to channels the session says are served (the worker's live table above).
        await escalation.reroute(s, row, now)
        sweeper.wake.set()

    outbox.on_unreachable = reroute

    def queued() -> None:
        # A new case may have armed a timer that is due at once (a team member with no
        # channel): the sweeper looks now rather than at its next idle wake-up.
        outbox.wake.set()
        sweeper.wake.set()

    conversations = ConversationService(sessions, clock, directory, cases, on_queued=queued)
    reminders = Reminders(sessions, directory, period_report, on_queued=outbox.wake.set)
    async with sessions.begin() as s:
        await reminders.sync(s, clock.now())
    calendar_scheduler = CalendarScheduler(reminders, clock)
    calendar_commands = CalendarCommands(directory, reminders.stored_events,
                                         calendar_scheduler.poke)
    conversations.commands["calendar"] = calendar_commands.command
    # /report <period> for staff; without a period (or from anyone else) a case report.
    conversations.commands["report"] = Reports(directory).command
    conversations.actions["calendar_add"] = calendar_commands.add
    broadcasts = Broadcasts(directory)
    conversations.commands["broadcast"] = broadcasts.on_command
    conversations.actions["broadcast"] = broadcasts.on_submit
    tracker = BroadcastTracker(sessions, clock, on_queued=outbox.wake.set)
    return Engine(db, sessions, clock, directory, cases, conversations, sweeper, outbox,
                  reminders=reminders, calendar=calendar_scheduler, broadcasts=tracker,
                  inbound=InboundWorker(sessions, clock,
                                        concurrency=3 if db.dialect.name == "sqlite" else 12))
