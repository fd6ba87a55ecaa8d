"""The audit trail seen from outside the bot: its rows as the database holds them, a change
made straight in the raw database (sqlite3 on the file, asyncpg on the server), and
`safechild audit verify` run as the operator runs it."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from alembic import command
from alembic.config import Config
from sqlalchemy import make_url
from sqlalchemy.engine import Connection

from storage.db import MIGRATIONS, make_engine, migrate

ROOT = Path(__file__).resolve().parents[2]


def _sqlite_file(db_url: str) -> str | None:
    url = make_url(db_url)
    return str(url.database) if url.get_backend_name() == "sqlite" else None


def _pg_dsn(db_url: str) -> str:
    return make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def raw(db_url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Run one statement on the raw database, behind the bot's back (committed); the rows
    it returns. Placeholders: $1, $2 ... (turned into ? for SQLite)."""
    path = _sqlite_file(db_url)
    if path is not None:
        def run() -> list[tuple[Any, ...]]:
            conn = sqlite3.connect(path, timeout=30)
            try:
                query = sql
                for n in range(len(args), 0, -1):
                    query = query.replace(f"${n}", "?")
                found = conn.execute(query, args).fetchall()
                conn.commit()
                return [tuple(r) for r in found]
            finally:
                conn.close()
        return await asyncio.to_thread(run)
    conn = await asyncpg.connect(_pg_dsn(db_url))
    try:
        return [tuple(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


def verify_cli(db_url: str) -> subprocess.CompletedProcess[str]:
    """`safechild audit verify` in a process of its own, on this database."""
    env = {**os.environ, "DATABASE_URL": db_url, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bot.cli", "audit", "verify"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def _downgrade(connection: Connection, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    command.downgrade(cfg, revision)


async def downgrade_and_migrate(db_url: str, revision: str) -> None:
    """Take the schema back to `revision`, then up to the newest again (as a start does)."""
    engine = make_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_downgrade, revision)
        await migrate(engine)
    finally:
        await engine.dispose()
