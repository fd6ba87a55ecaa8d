"""Calendar reminders (service layer): a calendar's events in the database, and each due
reminder sent exactly once. (Deadline reminders of cases are bot/services/escalation.py.)

Each commune has its calendar (`CalendarReminders`), and a province its own
(`ProvinceReminders`): the province's people are reminded of the province's report
deadlines, with the province's figures (each commune's beside them). Both keep their events
and reminders under their row of `communes` (a province's own row is `Communes.province_id`).

The database decides what was sent: a reminder is recorded in `calendar_reminders` in the
transaction that queues its messages, and the row's unique key stops a second process (or a
restart) from sending it again. Whoever calls `look` (the calendar worker) only decides
when to look.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final, Protocol

from bot.domain.commune_calendar import (
    CalendarEvent,
    DueReminder,
    day_text,
    next_reminder_after,
    parse_calendar,
    reminders_between,
    still_useful,
)
from bot.domain.local_time import LOCAL_TZ
from bot.domain.message_kinds import Kind
from bot.domain.messages import Reply, Text
from bot.domain.periods import Period, covering
from bot.domain.province import ProvinceConfig
from bot.domain.roles import PROVINCE_STATISTICS_WITH_REMINDERS, STATISTICS_WITH_REMINDERS
from bot.services.directory import Communes, Directory
from bot.services.outbox import Outbox
from storage import calendar, people
from storage.calendar import StoredEventRow
from storage.db import Database, Tx

log = logging.getLogger(__name__)
# reminders_between's end is exclusive; a reminder due exactly now is due.
_JUST_AFTER: Final[timedelta] = timedelta(microseconds=1)


class StatsReport(Protocol):
    """bot.services.period_reports.period_report: a period's statistics as replies."""

    async def __call__(self, tx: Tx, directory: Directory, period: Period,
                       language: str, now: datetime) -> list[Reply]: ...


class ProvinceStatsReport(Protocol):
    """bot.services.period_reports.province_report: the province's statistics, with each
    commune's, as replies."""

    async def __call__(self, tx: Tx, communes: Communes, period: Period,
                       language: str, now: datetime) -> list[Reply]: ...


@dataclass(frozen=True)
class StoredEvent:
    """An event as the database holds it, with the title people see."""

    event: CalendarEvent
    title: Text


def event_fields(event: CalendarEvent) -> dict[str, Any]:
    """An event's columns, in the config file's own spellings."""
    return {"rule": str(event.rule), "roles": ",".join(event.roles),
            "days_before": ",".join(str(d) for d in event.days_before),
            "at": f"{event.hour:02d}:{event.minute:02d}", "covers": event.covers}


def event_of(row: StoredEventRow) -> CalendarEvent:
    """The row read back through the config parser; ValueError if it no longer parses."""
    return parse_calendar([{
        "key": row.key, "rule": row.rule, "roles": [r for r in row.roles.split(",") if r],
        "days_before": [int(d) for d in row.days_before.split(",") if d.strip()],
        "at": row.at, "covers": row.covers, "paused": row.paused}])[0]


def title_of(key: str, title: str | None) -> Text:
    """A title typed in chat or in the commune file as it is; else the catalog's title."""
    if title:
        return Text("raw", {"text": title})
    return Text(f"calendar.event.{key}")


def due_after(events: Sequence[CalendarEvent], now: datetime) -> datetime | None:
    """When the first reminder of these events after `now` falls due."""
    upcoming = next_reminder_after(events, now)
    return upcoming.due_at if upcoming else None


def reminder_text(title: Text, event_date: date, days_left: int) -> Text:
    when = day_text(event_date)
    if days_left <= 0:
        return Text("calendar.reminder.today", {"title": title, "date": when})
    if days_left == 1:
        return Text("calendar.reminder.tomorrow", {"title": title, "date": when})
    return Text("calendar.reminder.days", {"title": title, "date": when, "days": days_left})


def report_period(event: CalendarEvent, event_date: date) -> Period | None:
    """The period a report deadline covers: of the deadline's year; "M" is the month
    before the deadline's month."""
    if event.covers is None:
        return None
    if event.covers == "M":
        year, month = ((event_date.year - 1, 12) if event_date.month == 1
                       else (event_date.year, event_date.month - 1))
        return covering("M", year, month)
    return covering(event.covers, event_date.year)


class Reminders(ABC):
    """One calendar's reminders. A subclass says whose calendar it is (its row of
    `communes`, the events its file configures), who of those a report deadline reminds
    also get its numbers (`with_numbers`), and which numbers (`report`)."""

    # Who of those a report deadline reminds also get the period's numbers.
    with_numbers: frozenset[str] = STATISTICS_WITH_REMINDERS

    def __init__(self, database: Database, outbox: Outbox) -> None:
        self.database = database
        self.outbox = outbox

    @property
    @abstractmethod
    def commune_id(self) -> int:
        """The row of `communes` the calendar and its reminders are kept under (also whose
        people it reminds)."""

    @abstractmethod
    def configured(self) -> tuple[Sequence[CalendarEvent], Mapping[str, str]]:
        """The events the config file gives the calendar, and the titles it writes."""

    @abstractmethod
    async def report(self, tx: Tx, period: Period, language: str,
                     now: datetime) -> list[Reply] | None:
        """The period's numbers for one reader; None when none are wired."""

    async def sync(self, tx: Tx, now: datetime,
                   rows: Sequence[StoredEventRow] | None = None) -> list[int]:
        """Write the config file's calendar into the database. A pause set in chat stays;
        events added in chat stay. Returns the ids of the events gone from the file, for
        `sync_calendars` to delete together with every other calendar's. `rows`: the
        calendar's events, when read with every other's."""
        configured, titles = self.configured()
        if rows is None:
            rows = await calendar.events_of(tx, self.commune_id)
        stored = {row.key: row for row in rows}
        for event in configured:
            fields: dict[str, Any] = {**event_fields(event), "title": titles.get(event.key)}
            row = stored.get(event.key)
            if row is None:
                await calendar.add_event(tx, commune_id=self.commune_id, key=event.key,
                                         paused=event.paused, origin="config",
                                         updated_at=now, **fields)
                continue
            changed = row.origin != "config" or any(getattr(row, k) != v
                                                   for k, v in fields.items())
            fields["origin"] = "config"
            if event.paused and not row.paused:
                # Paused in the file: the file wins at every start.
                fields["paused"], changed = True, True
            if changed:
                await calendar.update_event(tx, row.id, updated_at=now, updated_by=None,
                                            **fields)
        keep = {e.key for e in configured}
        return [row.id for row in rows if row.origin == "config" and row.key not in keep]

    async def stored_events(self, tx: Tx) -> list[StoredEvent]:
        found = []
        for row in await calendar.events_of(tx, self.commune_id):
            try:
                event = event_of(row)
            except ValueError:
                # Only a hand-edited row can get here; one bad event must not stop the rest.
                log.warning("calendar event %s does not parse; skipped", row.id)
                continue
            found.append(StoredEvent(event, title_of(row.key, row.title)))
        return found

    async def next_due(self, now: datetime) -> datetime | None:
        """When the next reminder falls due (paused events excluded)."""
        async with self.database.read() as tx:
            events = [e.event for e in await self.stored_events(tx)]
        return due_after(events, now)

    async def send_due(self, now: datetime) -> int:
        """Send every reminder due up to `now` that is not recorded yet and still useful;
        returns how many were sent. Of one event day's reminders overdue together only the
        latest goes out; the older ones are recorded as superseded."""
        return (await self.look(now))[0]

    async def look(self, now: datetime) -> tuple[int, datetime | None]:
        """`send_due`, and when the next reminder falls due, from one read of the calendar
        (the scheduler's every look)."""
        async with self.database.read() as tx:
            stored = {e.event.key: e for e in await self.stored_events(tx)}
            if not stored:
                return 0, None
            lookback = timedelta(days=max(max(e.event.days_before)
                                          for e in stored.values()) + 1)
            due = [r for r in reminders_between([e.event for e in stored.values()],
                                                now - lookback, now + _JUST_AFTER)
                   if still_useful(r, now)]
            recorded = await calendar.recorded_keys(tx, self.commune_id,
                                                    [r.key for r in due])
        groups: dict[tuple[str, date], list[DueReminder]] = {}
        for reminder in due:
            groups.setdefault((reminder.event.key, reminder.event_date), []).append(reminder)
        sent = 0
        for group in sorted(groups.values(), key=lambda g: max(r.due_at for r in g)):
            latest = max(group, key=lambda r: r.due_at)
            todo = [r for r in group if r.key not in recorded]
            if not todo:
                continue
            async with self.database.transaction() as tx:
                for reminder in todo:
                    if reminder is not latest:
                        await self._record(tx, reminder, now, "superseded")
                recorded_id = (await self._record(tx, latest, now, "sent")
                               if latest in todo else None)
                if recorded_id is not None:
                    await calendar.set_recipients(tx, recorded_id, await self._send(
                        tx, latest, stored[latest.event.key], now))
            if latest in todo and recorded_id is None:
                # Another process recorded it first, so it sends it; nothing to do here.
                log.info("calendar reminder %s already recorded elsewhere", latest.key)
            elif recorded_id is not None:
                sent += 1
                log.info("calendar %s reminder %s sent", self.commune_id, latest.key)
        return sent, due_after([e.event for e in stored.values()], now)

    async def _record(self, tx: Tx, reminder: DueReminder, now: datetime,
                      status: str) -> int | None:
        return await calendar.record_reminder(
            tx, commune_id=self.commune_id, key=reminder.key, event_key=reminder.event.key,
            event_date=reminder.event_date, days_before=reminder.days_before,
            due_at=reminder.due_at, sent_at=now, status=status)

    async def _send(self, tx: Tx, reminder: DueReminder, stored: StoredEvent,
                    now: datetime) -> int:
        """Queue the reminder for everyone in the event's roles, each in their language on
        their channel; those of `with_numbers` (a commune's officers) also get a report
        deadline's numbers."""
        event = reminder.event
        readers = await people.people_with_roles(tx, self.commune_id, event.roles)
        identities = await people.identities_for(tx, [p.id for p in readers])
        days_left = (reminder.event_date - now.astimezone(LOCAL_TZ).date()).days
        text = reminder_text(stored.title, reminder.event_date, days_left)
        period = report_period(event, reminder.event_date)
        numbers: dict[str, list[Reply]] = {}
        reached = 0
        for person in readers:
            stats: Sequence[Reply] = ()
            if period is not None and person.role in self.with_numbers:
                if person.language not in numbers:
                    numbers[person.language] = await self._numbers(tx, period,
                                                                   person.language, now)
                stats = numbers[person.language]
            texts = (text, Text("calendar.reminder.numbers_follow")) if stats else (text,)
            key = f"cal:{self.commune_id}:{reminder.key}:{person.id}"
            row = await self.outbox.send(tx, person, Reply(texts), now, kind=Kind.CALENDAR,
                                         dedupe_key=key, fresh_key=True,
                                         identities=identities.get(person.id, []))
            if row is None:
                continue
            reached += 1
            for n, reply in enumerate(stats):
                await self.outbox.send(tx, person, reply, now, kind=Kind.CALENDAR,
                                       dedupe_key=f"{key}:s{n}", fresh_key=True,
                                       to=(row.channel, row.address))
        return reached

    async def _numbers(self, tx: Tx, period: Period, language: str,
                       now: datetime) -> list[Reply]:
        """The period's statistics; without them (none wired, or they failed) the
        reminder still goes out."""
        try:
            async with tx.savepoint():
                return list(await self.report(tx, period, language, now) or ())
        except Exception:
            log.exception("statistics for %s failed; reminder sent without them", period)
            return []


class CalendarReminders(Reminders):
    """A commune's calendar: its people reminded, its officers given the commune's
    numbers."""

    def __init__(self, database: Database, directory: Directory, outbox: Outbox,
                 period_report: StatsReport | None = None) -> None:
        super().__init__(database, outbox)
        self.directory = directory
        self.period_report = period_report

    @property
    def commune_id(self) -> int:
        return self.directory.commune_id

    def configured(self) -> tuple[Sequence[CalendarEvent], Mapping[str, str]]:
        return self.directory.config.calendar, self.directory.config.calendar_titles

    async def report(self, tx: Tx, period: Period, language: str,
                     now: datetime) -> list[Reply] | None:
        if self.period_report is None:
            return None
        return list(await self.period_report(tx, self.directory, period, language, now))


class ProvinceReminders(Reminders):
    """A province's own calendar (the province file's `[calendar]`): the province's people
    reminded, its officers and leaders given the province's numbers with each commune's."""

    with_numbers = PROVINCE_STATISTICS_WITH_REMINDERS

    def __init__(self, database: Database, communes: Communes, province: ProvinceConfig,
                 outbox: Outbox, province_report: ProvinceStatsReport | None = None) -> None:
        super().__init__(database, outbox)
        if communes.province_id is None:
            raise ValueError("a province's calendar needs the province's own row")
        self.communes = communes
        self.province = province
        self.province_report = province_report
        self._province_id = communes.province_id

    @property
    def commune_id(self) -> int:
        return self._province_id

    def configured(self) -> tuple[Sequence[CalendarEvent], Mapping[str, str]]:
        return self.province.calendar, self.province.calendar_titles

    async def report(self, tx: Tx, period: Period, language: str,
                     now: datetime) -> list[Reply] | None:
        if self.province_report is None:
            return None
        return list(await self.province_report(tx, self.communes, period, language, now))


async def sync_calendars(tx: Tx, calendars: Sequence[Reminders], now: datetime) -> None:
    """Every calendar's config file events into the database (Reminders.sync), read and
    cleared in one statement each for all of them: a province has a hundred calendars."""
    stored = await calendar.events_of_communes(tx, [c.commune_id for c in calendars])
    gone: list[int] = []
    for one in calendars:
        gone += await one.sync(tx, now, stored[one.commune_id])
    removed = await calendar.delete_config_events(tx, gone)
    log.info("calendars synced: %d calendars, %d events removed", len(calendars), removed)
