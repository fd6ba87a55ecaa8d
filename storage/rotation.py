"""Re-sealing the private fields under the first key (storage layer): what `safechild
rotate-keys` runs.

Every column of an Encrypted type is looked at, table by table, in primary-key order, a
batch a transaction: the rows with a value not under the first key (sealed with an older
key, or plain from before 0019) are read (opened with whichever key sealed them), locked
(FOR UPDATE on PostgreSQL; SQLite has one writer) and written back (sealed with the first
key). A batch is short, so the bot's own writes wait a few milliseconds at most; a value
the bot writes meanwhile is sealed with the first key already, provided every running
process was restarted with the new key in front first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Table, Text, and_, func, or_, select, type_coerce, update

from storage.db import Database, Tx, cipher_of
from storage.models import Base, Encrypted, EncryptedJSON

BATCH = 200


@dataclass(frozen=True)
class Sealed:
    """A table and its sealed columns."""

    table: Table
    key: Column[Any]
    columns: tuple[Column[Any], ...]


def sealed_tables() -> Iterator[Sealed]:
    for table in Base.metadata.sorted_tables:
        columns = tuple(c for c in table.columns
                        if isinstance(c.type, (Encrypted, EncryptedJSON)))
        if columns:
            (key,) = table.primary_key.columns
            yield Sealed(table, key, columns)


def _stale(sealed: Sealed, prefix: str) -> Any:
    """A row with a value not sealed under the key whose values start with `prefix`."""
    raw = [type_coerce(c, Text()) for c in sealed.columns]
    return or_(*(and_(r.is_not(None), ~r.startswith(prefix, autoescape=True)) for r in raw))


async def rotate_batch(tx: Tx, sealed: Sealed, prefix: str, after: Any, limit: int
                       ) -> tuple[Any, int]:
    """Re-seal up to `limit` stale rows past primary key `after`; (the last key looked at,
    or None when none was left; how many rows)."""
    where = [_stale(sealed, prefix)]
    if after is not None:
        where.append(sealed.key > after)
    rows = (await tx.conn.execute(
        select(sealed.key, *sealed.columns).where(*where).order_by(sealed.key).limit(limit)
        .with_for_update())).all()
    for row in rows:
        await tx.conn.execute(update(sealed.table).where(sealed.key == row[0]).values(
            {c.name: value for c, value in zip(sealed.columns, row[1:], strict=True)}))
    return (rows[-1][0] if rows else None), len(rows)


async def stale_count(tx: Tx, sealed: Sealed, prefix: str) -> int:
    return int(await tx.conn.scalar(select(func.count()).select_from(sealed.table)
                                    .where(_stale(sealed, prefix))) or 0)


async def rotate(database: Database, batch: int = BATCH) -> dict[str, int]:
    """Re-seal every stale row of every sealed table; rows re-sealed, by table."""
    prefix = cipher_of(database.engine).current_prefix
    done: dict[str, int] = {}
    for sealed in sealed_tables():
        after: Any = None
        total = 0
        while True:
            async with database.transaction() as tx:
                after, n = await rotate_batch(tx, sealed, prefix, after, batch)
            total += n
            if after is None:
                break
        done[sealed.table.name] = total
    return done


async def stale(database: Database) -> dict[str, int]:
    """Rows with a value not under the first key, by table (0 after `rotate`)."""
    prefix = cipher_of(database.engine).current_prefix
    async with database.read() as tx:
        return {s.table.name: await stale_count(tx, s, prefix) for s in sealed_tables()}
