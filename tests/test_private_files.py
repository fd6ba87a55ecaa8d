"""The SQLite database, its WAL and shared-memory files are readable by the bot's user
alone (0600), whatever the umask, and a database file made readable by others before is
made private at start."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import Setup, build_app
from bot.clock import FakeClock
from bot.config import DEMO_CONFIG, load_commune
from bot.handlers.simulator import SimulatorPlugin
from storage.db import Database
from tests.support import START
from tests.support.database import count


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most systems give a service: files 0644 unless the bot says otherwise."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def modes(folder: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}


async def test_a_new_database_and_its_wal_are_private(tmp_path: Path, usual_umask: None
                                                      ) -> None:
    folder = tmp_path / "var"
    db = folder / "safechild.db"
    app = await build_app(Setup(f"sqlite+aiosqlite:///{db}", load_commune(DEMO_CONFIG),
                                FakeClock(START)), [SimulatorPlugin()])
    try:
        assert await count(app, "people") > 0  # written: the WAL is in use
        # The key of its sealed fields lies beside it (storage/crypto.py), as private.
        assert modes(folder) == {"safechild.db": 0o600, "safechild.db-wal": 0o600,
                                 "safechild.db-shm": 0o600, "safechild.db.key": 0o600}
    finally:
        await app.close()
    assert modes(folder)["safechild.db"] == 0o600


async def test_a_database_readable_by_others_is_made_private(tmp_path: Path,
                                                            usual_umask: None) -> None:
    db = tmp_path / "old.db"
    sqlite3.connect(db).close()
    db.chmod(0o644)
    database = await Database.open(f"sqlite+aiosqlite:///{db}")
    try:
        async with database.transaction() as tx:
            await tx.conn.exec_driver_sql("SELECT 1")
        assert set(modes(tmp_path).values()) == {0o600}, modes(tmp_path)
    finally:
        await database.close()
