"""Deadlines of cases and the timers that wake for them (storage layer).

Timers are rows claimed with a lease, so several processes share them and a timer fires
once; functions take the caller's transaction and never commit.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update

from bot.domain.cases import Deadline, Timer
from storage.db import Tx
from storage.models import CaseDeadline
from storage.models import Timer as TimerRow
from storage.sql import delete_batch, insert, rowcount, table

deadlines = table(CaseDeadline)
timers = table(TimerRow)
DEADLINE_COLUMNS = tuple(deadlines.c)


def _deadline(m: Mapping[Any, Any]) -> Deadline:
    return Deadline(id=m["id"], case_id=m["case_id"], step=m["step"],
                    started_at=m["started_at"], due_at=m["due_at"], met_at=m["met_at"],
                    version=m["version"])


def _timer(m: Mapping[Any, Any]) -> Timer:
    return Timer(id=m["id"], deadline_id=m["deadline_id"], kind=m["kind"], seq=m["seq"],
                 fire_at=m["fire_at"], deadline_version=m["deadline_version"])


# ---- deadlines ------------------------------------------------------------------------------


async def add_deadlines(tx: Tx, case_id: int, dues: Mapping[str, tuple[datetime, datetime]]
                        ) -> dict[str, int]:
    """A case's first deadlines, step -> (start, due), in one multi-row INSERT; their ids
    by step."""
    result = await tx.conn.execute(deadlines.insert().values([
        {"case_id": case_id, "step": step, "started_at": start, "due_at": due, "version": 1}
        for step, (start, due) in dues.items()]).returning(deadlines.c.step, deadlines.c.id))
    return {row[0]: row[1] for row in result}


async def deadline(tx: Tx, case_id: int, step: str) -> Deadline | None:
    row = (await tx.conn.execute(select(deadlines).where(deadlines.c.case_id == case_id,
                                                         deadlines.c.step == step))).first()
    return _deadline(row._mapping) if row else None


async def deadline_by_id(tx: Tx, deadline_id: int) -> Deadline | None:
    row = (await tx.conn.execute(select(deadlines)
                                 .where(deadlines.c.id == deadline_id))).first()
    return _deadline(row._mapping) if row else None


async def deadlines_by_id(tx: Tx, deadline_ids: Collection[int]) -> dict[int, Deadline]:
    if not deadline_ids:
        return {}
    rows = await tx.conn.execute(select(deadlines)
                                 .where(deadlines.c.id.in_(list(deadline_ids))))
    return {d.id: d for d in (_deadline(r._mapping) for r in rows)}


async def deadlines_of_cases(tx: Tx, case_ids: Collection[int]) -> dict[int, list[Deadline]]:
    """Each case's deadlines, as `deadlines_of` gives them, in one statement."""
    found: dict[int, list[Deadline]] = {case_id: [] for case_id in case_ids}
    if found:
        rows = await tx.conn.execute(select(deadlines)
                                     .where(deadlines.c.case_id.in_(list(found)))
                                     .order_by(deadlines.c.id))
        for row in rows:
            found[row.case_id].append(_deadline(row._mapping))
    return found


async def deadlines_of(tx: Tx, case_id: int) -> list[Deadline]:
    rows = await tx.conn.execute(select(deadlines).where(deadlines.c.case_id == case_id)
                                 .order_by(deadlines.c.id))
    return [_deadline(r._mapping) for r in rows]


async def set_deadline(tx: Tx, case_id: int, step: str, start: datetime,
                       due: datetime) -> Deadline:
    """Set (or set again, unmet, at a new version) one deadline of a case."""
    row = (await tx.conn.execute(
        update(deadlines).where(deadlines.c.case_id == case_id, deadlines.c.step == step)
        .values(started_at=start, due_at=due, met_at=None, version=deadlines.c.version + 1)
        .returning(*DEADLINE_COLUMNS))).first()
    if row is None:
        row = (await tx.conn.execute(deadlines.insert().values(
            case_id=case_id, step=step, started_at=start, due_at=due, version=1)
            .returning(*DEADLINE_COLUMNS))).one()
    return _deadline(row._mapping)


async def meet_deadline(tx: Tx, case_id: int, step: str, now: datetime) -> bool:
    """The step was done; False if it had no open deadline."""
    return rowcount(await tx.conn.execute(
        update(deadlines).where(deadlines.c.case_id == case_id, deadlines.c.step == step,
                                deadlines.c.met_at.is_(None))
        .values(met_at=now, version=deadlines.c.version + 1))) == 1


# ---- timers ---------------------------------------------------------------------------------


async def arm_timers(tx: Tx, rows: Sequence[Mapping[str, Any]]) -> None:
    """Timers (deadline_id, kind, seq, fire_at, deadline_version), in one statement."""
    if rows:
        await tx.conn.execute(timers.insert().values([dict(r) for r in rows]))


async def arm_timer(tx: Tx, deadline_id: int, kind: str, seq: int, fire_at: datetime,
                    deadline_version: int) -> bool:
    """One timer; False when that very timer (deadline, kind, seq) was armed before."""
    return rowcount(await tx.conn.execute(
        insert(tx, timers).values(deadline_id=deadline_id, kind=kind, seq=seq,
                                  fire_at=fire_at, deadline_version=deadline_version)
        .on_conflict_do_nothing(index_elements=["deadline_id", "kind", "seq"]))) == 1


async def arm_timers_once(tx: Tx, rows: Sequence[Mapping[str, Any]]) -> None:
    """Timers as `arm_timer` arms one, in one statement: one armed before stays as it was."""
    if rows:
        await tx.conn.execute(insert(tx, timers).on_conflict_do_nothing(
            index_elements=["deadline_id", "kind", "seq"]), [dict(r) for r in rows])


def _free(now: datetime) -> Any:
    return or_(timers.c.lease_until.is_(None), timers.c.lease_until < now)


async def lease_due_timers(tx: Tx, now: datetime, owner: str, lease: timedelta,
                           limit: int) -> list[int]:
    """Claim up to `limit` due timers nobody holds; their ids, earliest first."""
    ids = list(await tx.conn.scalars(
        select(timers.c.id).where(timers.c.done_at.is_(None), timers.c.fire_at <= now,
                                  _free(now))
        .order_by(timers.c.fire_at, timers.c.id).limit(limit)))
    if not ids:
        return []
    await tx.conn.execute(update(timers).where(timers.c.id.in_(ids), timers.c.done_at.is_(None),
                                               _free(now))
                          .values(lease_owner=owner, lease_until=now + lease))
    claimed = set(await tx.conn.scalars(select(timers.c.id).where(
        timers.c.id.in_(ids), timers.c.lease_owner == owner)))
    return [i for i in ids if i in claimed]


async def leased_timers(tx: Tx, timer_ids: Sequence[int], owner: str) -> list[Timer]:
    """The timers this claim still holds and that have not fired, in the order asked."""
    if not timer_ids:
        return []
    rows = await tx.conn.execute(select(timers).where(
        timers.c.id.in_(list(timer_ids)), timers.c.lease_owner == owner,
        timers.c.done_at.is_(None)))
    found = {t.id: t for t in (_timer(r._mapping) for r in rows)}
    return [found[i] for i in timer_ids if i in found]


async def finish_timers(tx: Tx, timer_ids: Sequence[int], now: datetime) -> None:
    if timer_ids:
        await tx.conn.execute(update(timers).where(timers.c.id.in_(list(timer_ids)))
                              .values(done_at=now))


async def next_timer_at(tx: Tx) -> datetime | None:
    value: datetime | None = await tx.conn.scalar(
        select(func.min(timers.c.fire_at)).where(timers.c.done_at.is_(None)))
    return value


async def prune_timers(tx: Tx, done_before: datetime, limit: int) -> int:
    """Delete up to `limit` timers done (fired, or found stale) before `done_before`; how
    many. A timer not yet done is never touched. A done one serves nothing: the next timer
    of a chain is armed when this one fires, and its (deadline_id, kind, seq) never comes
    round again (kinds carry the deadline's version; seq the chain's step or the id of the
    message that failed). ix_timers_due (done_at, fire_at) finds them."""
    return await delete_batch(tx, timers, timers.c.done_at, done_before, limit)
