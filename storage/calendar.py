"""The commune calendar: its events and the reminders already sent (storage layer).

An event's fields keep the config file's own spellings (rule "lunar 08-15", roles "officer,
collaborator", days_before "7,1,0", at "08:00") so one parser reads both. A reminder is
recorded in the transaction that queues its messages; its unique key makes it happen once
however many processes look at the calendar.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, select, update

from storage.db import Tx
from storage.models import CalendarEventRow, CalendarReminder
from storage.sql import insert, rowcount, table

events = table(CalendarEventRow)
reminders = table(CalendarReminder)


@dataclass(frozen=True)
class StoredEventRow:
    """An event as stored, in the config file's spellings."""

    id: int
    key: str
    title: str | None
    rule: str
    roles: str
    days_before: str
    at: str
    covers: str | None
    paused: bool
    origin: str


@dataclass(frozen=True)
class SentReminder:
    key: str
    event_key: str
    event_date: date
    days_before: int
    status: str
    recipients: int


def _event(m: Mapping[Any, Any]) -> StoredEventRow:
    return StoredEventRow(id=m["id"], key=m["key"], title=m["title"], rule=m["rule"],
                          roles=m["roles"], days_before=m["days_before"], at=m["at"],
                          covers=m["covers"], paused=bool(m["paused"]), origin=m["origin"])


async def events_of(tx: Tx, commune_id: int) -> list[StoredEventRow]:
    rows = await tx.conn.execute(select(events).where(events.c.commune_id == commune_id)
                                 .order_by(events.c.id))
    return [_event(r._mapping) for r in rows]


async def events_of_communes(tx: Tx, commune_ids: Collection[int]
                             ) -> dict[int, list[StoredEventRow]]:
    """events_of several calendars in one read."""
    found: dict[int, list[StoredEventRow]] = {cid: [] for cid in commune_ids}
    if found:
        rows = await tx.conn.execute(select(events).where(events.c.commune_id.in_(list(found)))
                                     .order_by(events.c.id))
        for row in rows:
            found[row.commune_id].append(_event(row._mapping))
    return found


async def event_by_key(tx: Tx, commune_id: int, key: str) -> StoredEventRow | None:
    row = (await tx.conn.execute(select(events).where(events.c.commune_id == commune_id,
                                                      events.c.key == key))).first()
    return _event(row._mapping) if row else None


async def add_event(tx: Tx, *, commune_id: int, key: str, title: str | None, rule: str,
                    roles: str, days_before: str, at: str, covers: str | None, paused: bool,
                    origin: str, updated_at: datetime, updated_by: int | None = None) -> None:
    await tx.conn.execute(events.insert().values(
        commune_id=commune_id, key=key, title=title, rule=rule, roles=roles,
        days_before=days_before, at=at, covers=covers, paused=paused, origin=origin,
        updated_at=updated_at, updated_by=updated_by))


async def update_event(tx: Tx, event_id: int, *, updated_at: datetime,
                       updated_by: int | None, **fields: Any) -> None:
    """Change an event's fields (their config spellings) and say who did, when."""
    await tx.conn.execute(update(events).where(events.c.id == event_id).values(
        **fields, updated_at=updated_at, updated_by=updated_by))


async def delete_config_events(tx: Tx, event_ids: Collection[int]) -> int:
    """Remove events that came from a config file and are no longer in it (a pause or an
    event added in chat since then keeps its row)."""
    if not event_ids:
        return 0
    return rowcount(await tx.conn.execute(delete(events).where(
        events.c.id.in_(list(event_ids)), events.c.origin == "config")))


async def recorded_keys(tx: Tx, commune_id: int, keys: Collection[str]) -> set[str]:
    """Which of these reminder keys were already sent (or superseded)."""
    if not keys:
        return set()
    found = await tx.conn.scalars(select(reminders.c.key).where(
        reminders.c.commune_id == commune_id, reminders.c.key.in_(list(keys))))
    return set(found)


async def record_reminder(tx: Tx, *, commune_id: int, key: str, event_key: str,
                          event_date: date, days_before: int, due_at: datetime,
                          sent_at: datetime, status: str) -> int | None:
    """Record a reminder as sent (or superseded); its id, or None when another process
    recorded it first (then that process sends it)."""
    stmt = insert(tx, reminders).values(
        commune_id=commune_id, key=key, event_key=event_key, event_date=event_date,
        days_before=days_before, due_at=due_at, sent_at=sent_at, status=status, recipients=0)
    row = (await tx.conn.execute(stmt.on_conflict_do_nothing(
        index_elements=["commune_id", "key"]).returning(reminders.c.id))).first()
    return int(row[0]) if row else None


async def set_recipients(tx: Tx, reminder_id: int, recipients: int) -> None:
    await tx.conn.execute(update(reminders).where(reminders.c.id == reminder_id)
                          .values(recipients=recipients))


async def reminders_of(tx: Tx, commune_id: int) -> list[SentReminder]:
    rows = await tx.conn.execute(select(reminders.c.key, reminders.c.event_key,
                                        reminders.c.event_date, reminders.c.days_before,
                                        reminders.c.status, reminders.c.recipients)
                                 .where(reminders.c.commune_id == commune_id)
                                 .order_by(reminders.c.id))
    return [SentReminder(*r) for r in rows]
