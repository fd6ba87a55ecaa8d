"""Small helpers the storage modules share (storage layer)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Table, and_, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from storage.db import Tx


def table(model: Any) -> Table:
    """The Core table of a model of storage/models.py (storage runs Core statements)."""
    return cast(Table, model.__table__)


def insert(tx: Tx, table: Table) -> Any:
    """INSERT with ON CONFLICT for the transaction's database (both dialects have it)."""
    return (postgresql.insert if tx.dialect == "postgresql" else sqlite.insert)(table)


def rowcount(result: Any) -> int:
    return int(cast("CursorResult[Any]", result).rowcount)


async def delete_batch(tx: Tx, table: Table, age: Any, before: datetime, limit: int, *,
                       where: Any = None, keep_newest: bool = True) -> int:
    """Delete up to `limit` rows of `table` whose `age` column is before `before` (and that
    match `where`), oldest first, in one portable statement (DELETE ... WHERE id IN
    (SELECT id ... WHERE <old> ORDER BY <age>, id LIMIT n)); how many went. Callers loop,
    a transaction per batch, so none holds a lock for long. Ordered by the age column, the
    batch is a range of that column's index whatever the planner knows of the table
    (SQLite keeps no statistics unless asked): it reads the old rows, not the kept ones.

    With `keep_newest` the table's newest row stays: SQLite numbers a new row max(id) + 1
    (these tables have no AUTOINCREMENT), so deleting it would hand its id out again, and
    ids name rows elsewhere (dedupe keys such as t<timer id> and edit:<outbox id>,
    sim_messages.outbox_id, the simulator phones' read cursor). PostgreSQL's sequences
    never go back anyway.

    Rows another transaction holds are skipped (FOR UPDATE SKIP LOCKED on PostgreSQL;
    SQLite has one writer at a time): two processes pruning at once never wait for each
    other, and a row one of them deletes is simply not found by the other."""
    old = age < before
    if where is not None:
        old = and_(old, where)
    if keep_newest:
        old = and_(old, table.c.id < select(func.max(table.c.id)).correlate(None)
                   .scalar_subquery())
    ids = (select(table.c.id).where(old)
           .order_by(age, table.c.id).limit(limit)
           .with_for_update(skip_locked=True, of=table)
           # The candidates are read from the table itself, not correlated with the DELETE.
           .correlate(None))
    return rowcount(await tx.conn.execute(delete(table).where(table.c.id.in_(ids))))


async def update_batch(tx: Tx, table: Table, values: Mapping[str, Any], where: Any,
                       order: Sequence[Any], limit: int) -> list[Any]:
    """Set `values` on up to `limit` rows of `table` that match `where`, first in `order`,
    in one statement; the keys of the rows changed. As in delete_batch, rows another
    transaction holds are skipped (SKIP LOCKED on PostgreSQL), so processes blanking the
    same rows at once never wait for each other; `where` must no longer match a row once
    it is changed, so doing it again changes nothing."""
    key = next(iter(table.primary_key.columns))
    keys = (select(key).where(where).order_by(*order).limit(limit)
            .with_for_update(skip_locked=True, of=table).correlate(None))
    result = await tx.conn.execute(update(table).where(key.in_(keys)).values(**values)
                                   .returning(key))
    return list(result.scalars())
