"""Assembly (app layer): `build_app(setup, channels)` builds one process, once.

Order: the database (migrated) and the commune synced into it; the outbox for the channels
this process serves (named up front); each channel opened (what sending needs); the core
services; each channel attached (what receiving needs); the workers and the one scheduler
that wakes them; the web server with every channel's routes. Nothing is patched in later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aiohttp import web

from bot.clock import Clock, FakeClock, SystemClock
from bot.config import Settings, load_config
from bot.domain.commune import CommuneConfig
from bot.domain.province import ProvinceConfig
from bot.handlers.plugin import Base, ChannelPlugin, Core, Inbound, Outbound
from bot.handlers.server import Watch, make_server, timed
from bot.metrics import Metrics
from bot.services.admin_alerts import AdminAlerts
from bot.services.broadcasts import Broadcasts
from bot.services.calendar_commands import CalendarCommands
from bot.services.calendar_reminders import (
    CalendarReminders,
    ProvinceReminders,
    Reminders,
    sync_calendars,
)
from bot.services.cases import QUIET_TIMER, CaseService
from bot.services.channel_support import ChannelSupport
from bot.services.conversation import ConversationService, Services
from bot.services.directory import Communes, Directory, sync_commune, sync_province
from bot.services.escalation import Escalation
from bot.services.invites import Invites
from bot.services.outbox import Outbox
from bot.services.period_reports import PeriodReports, period_report, province_report
from bot.services.poster_commands import PosterCommands
from bot.services.simulator_log import SimulatorLog
from bot.services.top_digest import TopDigest
from bot.services.undelivered import Undelivered
from bot.workers.broadcasts import BroadcastTracker
from bot.workers.calendar import CalendarWorker
from bot.workers.command_menus import CommandMenus
from bot.workers.delivery import DeliveryWorker
from bot.workers.heartbeat import Heartbeat, ProcessIdentity
from bot.workers.inbound import InboundWorker
from bot.workers.pruning import PruningWorker
from bot.workers.readiness import OUTBOX_WITHIN, Readiness, read_outbox_gauges
from bot.workers.scheduler import Scheduler, Wakeups
from bot.workers.timers import TimerWorker
from bot.workers.worker import Worker
from storage.db import Database
from storage.zalo_tokens import ZaloTokenRows

log = logging.getLogger(__name__)
DELIVERY, TIMERS, INBOUND, BROADCASTS, CALENDAR, COMMAND_MENUS = (
    "delivery", "timers", "inbound", "broadcasts", "calendar", CommandMenus.name)


@dataclass(frozen=True)
class Setup:
    """What a process is built from besides its channels."""

    database_url: str
    # One commune file, or a province with all its communes.
    commune: CommuneConfig | ProvinceConfig
    clock: Clock
    # The same across restarts (host:port): a restart takes back what the killed one held.
    process_name: str | None = None
    # The real clock, for heartbeats and workers' looks (a fake `clock` jumps hours;
    # liveness must not).
    wall: Clock = field(default_factory=SystemClock)
    # /readyz fails once a message has waited this long to be sent.
    outbox_within: timedelta = OUTBOX_WITHIN
    # /metrics wants `Authorization: Bearer <this>` (None: open).
    metrics_token: str | None = None
    # SAFECHILD_KEYS, the keys of the database's private fields (storage/crypto.py); None
    # takes them from this process's environment, as tests and benches do.
    keys: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Setup:
        clock: Clock = (FakeClock(datetime.fromisoformat(settings.fake_clock_start))
                        if settings.fake_clock_start else SystemClock())
        return cls(settings.database_url, load_config(settings.config_path), clock,
                   process_name=f"{socket.gethostname()}:{settings.port}",
                   outbox_within=settings.ready_outbox_within,
                   metrics_token=settings.metrics_token,
                   keys=settings.environ.get("SAFECHILD_KEYS", ""))


@dataclass
class App:
    """Everything one process runs."""

    database: Database
    clock: Clock
    # The first commune (the only one, in a single-commune deployment).
    directory: Directory
    communes: Communes
    outbox: Outbox
    conversations: ConversationService
    cases: CaseService
    escalation: Escalation
    reminders: CalendarReminders
    support: ChannelSupport
    scheduler: Scheduler
    server: web.Application
    channels: list[ChannelPlugin]
    inbound: dict[str, Inbound]
    heartbeat: Heartbeat
    metrics: Metrics
    readiness: Readiness
    _loops: list[asyncio.Task[None]] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self, *names: str) -> None:
        self.scheduler.wake(*names)

    async def settle(self, names: Sequence[str] = ()) -> int:
        """Run the named workers (none: all) until they have nothing left to do."""
        return await self.scheduler.run_until_idle(names)

    async def start(self) -> None:
        """Start the workers and the channels' own loops (Telegram's long polling)."""
        self.scheduler.start()
        for inbound in self.inbound.values():
            for loop in inbound.loops:
                self._loops.append(asyncio.create_task(loop(self._stop)))

    async def listening(self) -> None:
        """The web server listens: what channels do then (register a webhook)."""
        for name, inbound in self.inbound.items():
            for call in inbound.on_listening:
                await call()
            if inbound.announce:
                log.info("%s: %s", name, inbound.announce)

    async def close(self) -> None:
        self._stop.set()
        for task in self._loops:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.scheduler.stop()
        for channel in self.channels:
            await channel.close()
        with contextlib.suppress(Exception):  # a database already gone: the others reap us
            await self.heartbeat.stop()
        await self.database.close()


async def build_app(setup: Setup, channels: Sequence[ChannelPlugin]) -> App:
    clock = setup.clock
    # The app's own registry: apps in one Python count apart.
    metrics = Metrics()
    database = await Database.open(setup.database_url, setup.keys)
    async with database.transaction() as tx:
        if isinstance(setup.commune, ProvinceConfig):
            communes = await sync_province(tx, setup.commune, clock.now())
        else:
            communes = Communes.of_one(await sync_commune(tx, setup.commune, clock.now()))
    directory = communes.first
    # What a process does once for all its communes (delivery, pruning): the province
    # file's, or the one commune's.
    process_wide = setup.commune if isinstance(setup.commune, ProvinceConfig) \
        else directory.config
    # Channel-wide news (a lost credential, a channel down) goes to the admins of the one
    # commune, or of all of them.
    admins_of = directory.commune_id if len(communes) == 1 else None
    wakeups = Wakeups()
    identity = ProcessIdentity.new(setup.process_name)
    heartbeat = Heartbeat(database, identity, setup.wall, on_freed=wakeups.wake)
    await heartbeat.register()
    outbox = Outbox(served=[c.name for c in channels])
    admin_alerts = AdminAlerts(database, clock, outbox, admins_of,
                               on_queued=lambda: wakeups.wake(DELIVERY))
    simulator_log = SimulatorLog(database, clock, communes)
    base = Base(clock, identity, token_rows=lambda oa_id: ZaloTokenRows(database, oa_id),
                alert_admins=admin_alerts.channel_authorisation_lost,
                simulator_log=simulator_log)
    outbound: dict[str, Outbound] = {}
    for channel in channels:
        outbound[channel.name] = await channel.open(base)

    escalation = Escalation(communes, outbox, TopDigest(communes, outbox), metrics)
    cases = CaseService(communes, escalation, outbox, metrics, process_wide.limits)
    escalation.riders[QUIET_TIMER] = cases.reporter_went_quiet
    commune_calendars = {c.commune_id: CalendarReminders(database, c, outbox, period_report)
                         for c in communes}
    calendars: dict[int, Reminders] = dict(commune_calendars)
    if isinstance(setup.commune, ProvinceConfig):
        # The province's own people: its report deadlines, with the province's figures.
        province_calendar = ProvinceReminders(database, communes, setup.commune, outbox,
                                              province_report)
        calendars[province_calendar.commune_id] = province_calendar
    async with database.transaction() as tx:
        await sync_calendars(tx, list(calendars.values()), clock.now())
    services = Services(
        cases=cases,
        invites=Invites(communes, {name: o.invite_link for name, o in outbound.items()
                                    if o.invite_link},
                        staff_changed=lambda: wakeups.wake(COMMAND_MENUS)),
        broadcasts=Broadcasts(communes, outbox),
        calendar=CalendarCommands(communes, calendars,
                                  changed=lambda: wakeups.wake(CALENDAR)),
        period_reports=PeriodReports(communes),
        posters=PosterCommands(communes, {name: o.invite_link for name, o in outbound.items()
                                          if o.invite_link}))

    def queued() -> None:
        # A new case may have armed a timer that is due at once (a team member with no
        # channel): the timer worker looks now rather than at its next idle wake-up.
        wakeups.wake(DELIVERY, TIMERS)

    conversations = ConversationService(
        database, clock, communes, outbox, services,
        labels={name: o.labels for name, o in outbound.items() if o.labels}, on_queued=queued,
        metrics=metrics, limits=process_wide.limits)
    support = ChannelSupport(database, clock)

    async def settle(names: Sequence[str]) -> int:
        # Called at request time (the simulator's clock), once the scheduler below exists:
        # the workers need the channels' senders and handlers, which need this core.
        return await scheduler.run_until_idle(names)

    core = Core(clock=clock, conversations=conversations, store_events=support.store_events,
                unreachable=support.unreachable, heard=support.heard,
                stored_file=support.stored_file,
                wake=wakeups.wake, settle=settle)
    inbound: dict[str, Inbound] = {}
    for channel in channels:
        inbound[channel.name] = await channel.attach(core)

    handlers = {name: i.stored_events for name, i in inbound.items()
                if i.stored_events is not None}
    workers: list[Worker] = [
        heartbeat,
        TimerWorker(database, escalation, on_fired=lambda: wakeups.wake(DELIVERY),
                    owner=identity.owner(TIMERS), metrics=metrics),
        CalendarWorker(list(calendars.values()), on_queued=lambda: wakeups.wake(DELIVERY)),
        # Events handled at once: each holds a database connection while it runs.
        InboundWorker(database, handlers, owner=identity.owner(INBOUND),
                      concurrency=3 if database.dialect == "sqlite" else 12),
        DeliveryWorker(database, clock, {name: o.sender for name, o in outbound.items()},
                       undelivered=Undelivered(escalation, outbox, admins_of,
                                               conversations.where_you_were),
                       policy=process_wide.delivery, climbed=lambda: wakeups.wake(TIMERS),
                       finished=lambda: wakeups.wake(DELIVERY),
                       owner=identity.owner(DELIVERY), metrics=metrics),
        BroadcastTracker(database, outbox, on_queued=lambda: wakeups.wake(DELIVERY),
                         owner=identity.owner(BROADCASTS)),
        # Needs no lease: deleting by age is idempotent (see bot/workers/pruning.py).
        PruningWorker(database, process_wide.retention, metrics=metrics, closed_case_text={
            c.commune_id: c.config.retention.closed_case_text for c in communes}),
        *(w for o in outbound.values() for w in o.workers),
    ]
    menus = {name: o.command_menus for name, o in outbound.items() if o.command_menus}
    if menus:
        # Staff see their own commands beside the text box, everyone else everyone's.
        homes = [c.commune_id for c in communes]
        if communes.province_id is not None:  # the province's own staff too
            homes.append(communes.province_id)
        workers.append(CommandMenus(database, homes, menus))
    scheduler = Scheduler(clock, workers, wakeups, wall=setup.wall)
    readiness = Readiness(database, clock, scheduler, [c.name for c in channels],
                          setup.outbox_within)

    async def before_scrape() -> None:
        await read_outbox_gauges(database, clock, metrics)

    server = make_server(support.stored_file,
                         [route for name, i in inbound.items()
                          for route in timed(name, i.routes, metrics)],
                         Watch(readiness.verdict, metrics, before_scrape, setup.metrics_token),
                         downloaded=support.downloaded)
    return App(database=database, clock=clock, directory=directory, communes=communes,
               outbox=outbox, conversations=conversations, cases=cases,
               escalation=escalation, reminders=commune_calendars[directory.commune_id],
               support=support, scheduler=scheduler, server=server,
               channels=list(channels), inbound=inbound, heartbeat=heartbeat,
               metrics=metrics, readiness=readiness)
