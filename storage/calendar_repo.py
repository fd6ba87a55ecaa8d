"""Queries for the commune calendar: its events and the reminders already sent (storage layer).

Like storage/repo.py, nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, event, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import CalendarEventRow, CalendarReminder, Person


async def events_of(s: AsyncSession, commune_id: int) -> Sequence[CalendarEventRow]:
    rows = await s.scalars(select(CalendarEventRow)
                           .where(CalendarEventRow.commune_id == commune_id)
                           .order_by(CalendarEventRow.id))
    return rows.all()


async def event_by_key(s: AsyncSession, commune_id: int, key: str) -> CalendarEventRow | None:
    return await s.scalar(select(CalendarEventRow).where(
        CalendarEventRow.commune_id == commune_id, CalendarEventRow.key == key))


async def add_event(s: AsyncSession, **fields: Any) -> CalendarEventRow:
    row = CalendarEventRow(**fields)
    s.add(row)
    await s.flush()
    return row


async def delete_config_events_except(s: AsyncSession, commune_id: int,
                                      keep: Collection[str]) -> int:
    """Remove events that came from the config file and are no longer in it."""
    result = await s.execute(
        delete(CalendarEventRow)
        .where(CalendarEventRow.commune_id == commune_id,
               CalendarEventRow.origin == "config",
               CalendarEventRow.key.not_in(list(keep)))
        .execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]


def with_roles(commune_id: int, roles: Collection[str]) -> tuple[ColumnElement[bool], ...]:
    """The filter for everyone of the commune in these roles."""
    return Person.commune_id == commune_id, Person.role.in_(list(roles))


async def people_with_roles(s: AsyncSession, commune_id: int,
                            roles: Collection[str]) -> Sequence[Person]:
    """Everyone of the commune in these roles, configured or invited (no config key)."""
    rows = await s.scalars(select(Person).where(*with_roles(commune_id, roles))
                           .order_by(Person.id))
    return rows.all()


async def recorded_keys(s: AsyncSession, commune_id: int, keys: Collection[str]) -> set[str]:
    """Which of these reminder keys were already sent (or superseded)."""
    if not keys:
        return set()
    found = await s.scalars(select(CalendarReminder.key).where(
        CalendarReminder.commune_id == commune_id, CalendarReminder.key.in_(list(keys))))
    return set(found)


async def record_reminder(s: AsyncSession, *, commune_id: int, key: str, event_key: str,
                          event_date: date, days_before: int, due_at: datetime,
                          sent_at: datetime, status: str, recipients: int = 0
                          ) -> CalendarReminder:
    """Insert the row whose unique (commune_id, key) makes a reminder happen once; the
    flush raises IntegrityError when another process recorded it first."""
    row = CalendarReminder(commune_id=commune_id, key=key, event_key=event_key,
                           event_date=event_date, days_before=days_before, due_at=due_at,
                           sent_at=sent_at, status=status, recipients=recipients)
    s.add(row)
    await s.flush()
    return row


async def reminders_of(s: AsyncSession, commune_id: int) -> Sequence[CalendarReminder]:
    rows = await s.scalars(select(CalendarReminder)
                           .where(CalendarReminder.commune_id == commune_id)
                           .order_by(CalendarReminder.id))
    return rows.all()


def after_commit(s: AsyncSession, callback: Callable[[], None]) -> None:
    """Call `callback` once this session's transaction has committed (never on rollback),
    e.g. to wake a scheduler that must see the change."""

    def fire(_session: Any) -> None:
        callback()

    event.listen(s.sync_session, "after_commit", fire, once=True)
