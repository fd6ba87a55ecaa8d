"""Running processes and their heartbeats (storage layer).

Every lease a process takes names it: the owner of a leased row starts with the process id
and a slash. A process that stopped beating (killed, frozen, cut off) is dead; the rows it
held are free again at once, whatever their lease said, and so are those of an earlier
incarnation of the same process (same name) when it starts again. Functions take the
caller's transaction and never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, or_, select, update

from storage.db import Tx
from storage.models import Broadcast, InboundQueue, Outbox, ProcessRow, Timer, ZaloToken
from storage.sql import rowcount, table

processes = table(ProcessRow)
# Every table whose rows are claimed with a lease: one list, so none is forgotten.
LEASED = tuple(table(m) for m in (Outbox, Timer, Broadcast, InboundQueue, ZaloToken))


def owner_prefix(process_id: str) -> str:
    """What the lease owners of a process start with."""
    return f"{process_id}/"


async def register(tx: Tx, process_id: str, name: str, now: datetime) -> None:
    await tx.conn.execute(processes.insert().values(id=process_id, name=name, started_at=now,
                                                    beat_at=now))


async def beat(tx: Tx, process_id: str, name: str, now: datetime) -> bool:
    """This process is alive. False when the others had taken it for dead (it had not
    beaten for too long): it is registered again, but its claims were given away."""
    if rowcount(await tx.conn.execute(update(processes).where(processes.c.id == process_id)
                                      .values(beat_at=now))):
        return True
    await register(tx, process_id, name, now)
    return False


async def dead(tx: Tx, process_id: str, name: str, silent_since: datetime) -> list[str]:
    """Other processes that stopped beating before `silent_since`, and earlier
    incarnations of this one (same name: they cannot be running any more)."""
    return list(await tx.conn.scalars(select(processes.c.id).where(
        processes.c.id != process_id,
        or_(processes.c.beat_at < silent_since, processes.c.name == name))))


async def free_claims(tx: Tx, process_ids: Sequence[str]) -> int:
    """Give back every row these processes hold, and forget them; how many rows."""
    freed = 0
    for process_id in process_ids:
        prefix = owner_prefix(process_id)
        for leased in LEASED:
            freed += rowcount(await tx.conn.execute(
                update(leased).where(leased.c.lease_owner.startswith(prefix, autoescape=True))
                .values(lease_owner=None, lease_until=None)))
    if process_ids:
        await tx.conn.execute(delete(processes).where(processes.c.id.in_(list(process_ids))))
    return freed


async def forget(tx: Tx, process_id: str) -> int:
    """A process stopping in good order gives back what it holds."""
    return await free_claims(tx, [process_id])
