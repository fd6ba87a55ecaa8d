"""The /calendar command and the calendar_add flow's result (service layer).

Officers and leaders may read the calendar; only admins change it. The role comes from the
database on every command, never from a button. A commune's people see their commune's
calendar; a province's own people, the province's (its report deadlines). Every change
wakes the calendar worker once the transaction has committed, so it sees the change at once.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Final

from bot.domain.commune_calendar import (
    MAX_TITLE,
    CalendarEvent,
    DueReminder,
    day_text,
    occurrences,
    parse_calendar,
    parse_rule,
    reminders_between,
    still_useful,
)
from bot.domain.local_time import LOCAL_TZ
from bot.domain.messages import Reply, Text, say
from bot.domain.people import Person
from bot.domain.permissions import may_change_calendar, may_read_calendar
from bot.flows import engine
from bot.flows.book import FLOWS
from bot.flows.calendar_admin import WHO, parse_at, parse_days, rule_words
from bot.flows.effects import AddCalendarEvent, Effect
from bot.services.calendar_reminders import Reminders, StoredEvent, event_fields, title_of
from bot.services.directory import Communes
from storage import calendar
from storage.db import Tx

# How far ahead the list looks for an event's next date (a yearly event is within a year).
NEXT_WITHIN: Final[timedelta] = timedelta(days=400)
WHO_TEXTS: Final[dict[str, Text]] = {
    "collaborator": Text("calendar.who.collaborator"), "officer": Text("calendar.who.officer"),
    "police": Text("calendar.who.police"), "leader": Text("calendar.who.leader"),
    "admin": Text("calendar.who.admin"),
}
# The province's own people, whom a province's calendar reminds.
PROVINCE_WHO_TEXTS: Final[dict[str, Text]] = {
    **WHO_TEXTS, "officer": Text("calendar.who.province_officer"),
    "police": Text("calendar.who.province_police"),
    "leader": Text("calendar.who.province_leader"),
}

CommandResult = tuple[engine.State, list[Effect]]


def next_date(event: CalendarEvent, today: date) -> date | None:
    found = occurrences(event.rule, today, today + NEXT_WITHIN)
    return found[0] if found else None


def list_line(stored: StoredEvent, today: date, province: bool = False) -> Text:
    event = stored.event
    upcoming = next_date(event, today)
    who = PROVINCE_WHO_TEXTS if province else WHO_TEXTS
    return Text("calendar.list.line_paused" if event.paused else "calendar.list.line", {
        "title": stored.title, "rule": rule_words(event.rule),
        "at": f"{event.hour:02d}:{event.minute:02d}",
        "who": [who[r] for r in event.roles],
        "next": day_text(upcoming) if upcoming else "-", "key": event.key})


def first_reminder(event: CalendarEvent, now: datetime) -> DueReminder | None:
    """The first reminder that will go out: one due now or later, or one already due
    today that is still useful (the scheduler sends that at once)."""
    lookback = timedelta(days=max(event.days_before) + 1)
    found = [r for r in reminders_between([event], now - lookback, now + NEXT_WITHIN)
             if still_useful(r, now)]
    return found[0] if found else None


class CalendarCommands:
    def __init__(self, communes: Communes, reminders: Mapping[int, Reminders],
                 changed: Callable[[], None],
                 new_key: Callable[[], str] = lambda: f"chat_{secrets.token_hex(4)}") -> None:
        self.communes = communes
        # Each commune's calendar, by commune id; a province's own, by its row's.
        self.reminders = dict(reminders)
        # Wakes the calendar worker (called once the change has committed).
        self.changed = changed
        self.new_key = new_key

    async def command(self, tx: Tx, person: Person, args: str, state: engine.State,
                      ctx: engine.Context, now: datetime) -> CommandResult:
        """/calendar, /calendar pause|resume <key>, /calendar add."""
        if person.commune_id not in self.reminders:
            # Someone kept under a row with no calendar here: nothing of theirs to show.
            return state, [say("province.commune_only")]
        words = args.split()
        verb = words[0].casefold() if words else ""
        if verb == "":
            if not may_read_calendar(person.role):
                return state, [say("calendar.list_not_allowed")]
            return state, [await self._listing(tx, person, now)]
        if verb not in ("pause", "resume", "add"):
            return state, [say("calendar.usage")]
        if not may_change_calendar(person.role):
            return state, [say("calendar.change_not_allowed")]
        if verb == "add":
            # Saved later: the event goes to the calendar it was begun for.
            return engine.start(FLOWS, "calendar_add", ctx, {"commune_id": person.commune_id},
                                current=state)
        if len(words) != 2:
            return state, [say("calendar.usage")]
        return state, [await self._pause(tx, person, words[1], verb == "pause", now)]

    async def _listing(self, tx: Tx, person: Person, now: datetime) -> Reply:
        events = await self.reminders[person.commune_id].stored_events(tx)
        today = now.astimezone(LOCAL_TZ).date()
        province = person.commune_id == self.communes.province_id
        head = (Text("calendar.list.province_head", {"province": self.communes.province_name})
                if province else Text("calendar.list.head", {
                    "commune": self.communes.of(person.commune_id).config.name}))
        if not events:
            return Reply((head, Text("calendar.list.empty")))
        lines = tuple(list_line(e, today, province) for e in events)
        hint = (Text("calendar.list.admin_hint"),) if may_change_calendar(person.role) else ()
        return Reply((head, *lines, *hint))

    async def _pause(self, tx: Tx, person: Person, key: str, pause: bool,
                     now: datetime) -> Reply:
        row = await calendar.event_by_key(tx, person.commune_id, key[:64])
        if row is None:
            return say("calendar.unknown_key", key=key[:64])
        title = title_of(row.key, row.title)
        if row.paused != pause:
            await calendar.update_event(tx, row.id, paused=pause, updated_at=now,
                                        updated_by=person.id)
            tx.after_commit(self.changed)
        if pause:
            return say("calendar.paused", title=title)
        return say("calendar.resumed", title=title)

    async def add(self, tx: Tx, person: Person, composed: AddCalendarEvent,
                  now: datetime) -> list[Reply]:
        """Store an event an admin composed in the calendar_add flow."""
        if not may_change_calendar(person.role):
            return [say("calendar.change_not_allowed")]
        title = " ".join(composed.title.split())[:MAX_TITLE]
        days = parse_days(",".join(str(d) for d in composed.days_before))
        at = parse_at(composed.at)
        roles = list(composed.roles)
        try:
            rule = parse_rule(composed.rule)
            if not title or days is None or at is None or tuple(roles) not in WHO.values():
                raise ValueError("incomplete event")
            key = self.new_key()
            event = parse_calendar([{"key": key, "rule": str(rule), "roles": roles,
                                     "days_before": list(days), "at": at}])[0]
        except ValueError:
            return [say("calendar.add.failed")]
        first = first_reminder(event, now)
        if first is None:
            return [say("calendar.add.in_past")]
        await calendar.add_event(tx, commune_id=person.commune_id, key=key,
                                 title=title, paused=False, origin="chat", updated_at=now,
                                 updated_by=person.id, **event_fields(event))
        tx.after_commit(self.changed)
        return [say("calendar.added", title=title, key=key,
                    first=day_text(max(first.due_at, now).astimezone(LOCAL_TZ).date()),
                    at=f"{event.hour:02d}:{event.minute:02d}")]
