"""The database as someone with the files or a database login sees it, without the keys:
the SQLite file's bytes (and its WAL's), every text column of every table read raw, and
every row of the sealed tables read back through the keys."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import make_url, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from storage.db import Database
from storage.rotation import sealed_tables


def sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    return Path(str(parsed.database)) if parsed.get_backend_name() == "sqlite" else None


def sqlite_bytes(url: str) -> bytes:
    """The database file and its write-ahead log, as they lie on the disk."""
    db = sqlite_file(url)
    assert db is not None
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal")) if p.exists())


async def raw_columns(url: str) -> list[tuple[str, str, str]]:
    """(table, column, value as text) of every text-like column of every table, read
    with no keys (what an SQL login or a dump shows)."""
    db = sqlite_file(url)
    if db is not None:
        return _sqlite_columns(db)
    engine = create_async_engine(url)
    found: list[tuple[str, str, str]] = []
    try:
        async with engine.connect() as conn:
            columns = (await conn.execute(text(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', "
                "'character', 'json', 'jsonb', 'bytea')"))).all()
            for table, column in columns:
                rows = await conn.execute(text(
                    f'SELECT "{column}"::text FROM "{table}" WHERE "{column}" IS NOT NULL'))
                found.extend((table, column, str(v)) for (v,) in rows)
    finally:
        await engine.dispose()
    return found


def _sqlite_columns(db: Path) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for column in [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]:
                for (v,) in conn.execute(f'SELECT CAST("{column}" AS TEXT) FROM "{table}" '
                                         f'WHERE "{column}" IS NOT NULL'):
                    found.append((table, column, str(v)))
    return found


def leaks(haystack: bytes | Iterable[tuple[str, str, str]], needles: Iterable[str]
          ) -> list[str]:
    """Which needles show: in the bytes (as UTF-8), or in which table.column."""
    if isinstance(haystack, bytes):
        return [n for n in needles if n.encode("utf-8") in haystack]
    rows = list(haystack)
    return [f"{n!r} in {t}.{c}" for n in needles for t, c, v in rows if n in v]


async def read_every_sealed_row(database: Database) -> int:
    """Read every row of every sealed table through the keys (raises when a value is
    sealed with a key not configured); how many rows."""
    n = 0
    async with database.read() as tx:
        for sealed in sealed_tables():
            n += len((await tx.conn.execute(select(*sealed.columns))).all())
    return n
