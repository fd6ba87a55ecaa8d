"""Whether each channel's sends fail right now (storage layer): since when, whether the
administrators were told, and when a waiting row is next tried early to find out whether
the channel is back. One row per channel, shared by every process; functions take the
caller's transaction and never commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import or_, select, update

from storage.db import Tx
from storage.models import ChannelHealth
from storage.sql import insert, rowcount, table

health = table(ChannelHealth)


@dataclass(frozen=True)
class Failing:
    channel: str
    since: datetime
    admins_told_at: datetime | None
    probe_at: datetime | None


async def failing(tx: Tx, channel: str, now: datetime) -> datetime:
    """A send on `channel` failed for the channel's sake: since when it fails."""
    statement = insert(tx, health).values(channel=channel, failing_since=now)
    await tx.conn.execute(statement.on_conflict_do_update(
        index_elements=[health.c.channel],
        set_={"failing_since": statement.excluded.failing_since},
        where=health.c.failing_since.is_(None)))
    since = await tx.conn.scalar(select(health.c.failing_since)
                                 .where(health.c.channel == channel))
    return cast(datetime, since)


async def recovered(tx: Tx, channel: str) -> Failing | None:
    """A send on `channel` went through: what the failure was, when it had been failing
    (None when it was not, or another process saw it come back first)."""
    row = (await tx.conn.execute(select(health).where(
        health.c.channel == channel, health.c.failing_since.is_not(None)))).first()
    if row is None:
        return None
    cleared = rowcount(await tx.conn.execute(
        update(health).where(health.c.channel == channel,
                             health.c.failing_since == row.failing_since)
        .values(failing_since=None, admins_told_at=None, probe_at=None)))
    if not cleared:
        return None
    return Failing(channel, row.failing_since, row.admins_told_at, row.probe_at)


async def failing_channels(tx: Tx, channels: Sequence[str]) -> list[Failing]:
    rows = await tx.conn.execute(select(health).where(health.c.channel.in_(list(channels)),
                                                      health.c.failing_since.is_not(None)))
    return [Failing(r.channel, r.failing_since, r.admins_told_at, r.probe_at) for r in rows]


async def take_probe(tx: Tx, channel: str, now: datetime, next_at: datetime) -> bool:
    """This process tries the failing channel now, no other before `next_at`."""
    return rowcount(await tx.conn.execute(update(health).where(
        health.c.channel == channel, health.c.failing_since.is_not(None),
        or_(health.c.probe_at.is_(None), health.c.probe_at <= now))
        .values(probe_at=next_at))) == 1


async def take_telling_admins(tx: Tx, channel: str, failing_since: datetime,
                              now: datetime) -> bool:
    """This process tells the administrators of this failure; nobody did yet."""
    return rowcount(await tx.conn.execute(update(health).where(
        health.c.channel == channel, health.c.failing_since == failing_since,
        health.c.admins_told_at.is_(None)).values(admins_told_at=now))) == 1
