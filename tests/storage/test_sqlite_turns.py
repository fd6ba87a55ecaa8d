"""SQLite: this process's transactions take turns on an asyncio lock before BEGIN IMMEDIATE
(storage/db.py). A turn that is never given back would stop every write for good, so each
way a transaction can end must give it back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, PendingRollbackError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.db import make_engine, sessionmaker


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[tuple[AsyncEngine, async_sessionmaker[AsyncSession]]]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'turns.db'}")
    sessions = sessionmaker(engine)
    async with sessions.begin() as s:
        await s.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY, n INTEGER)"))
        await s.execute(text("INSERT INTO t VALUES (1, 0)"))
    yield engine, sessions
    await engine.dispose()


async def bump(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as s:
        await s.execute(text("UPDATE t SET n = n + 1 WHERE k = 1"))


async def count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as s:
        return int(await s.scalar(text("SELECT n FROM t WHERE k = 1")) or 0)


async def test_every_way_a_transaction_ends_gives_the_turn_back(
        db: tuple[AsyncEngine, async_sessionmaker[AsyncSession]]) -> None:
    engine, sessions = db
    # Rolled back by an error.
    with pytest.raises(IntegrityError):
        async with sessions.begin() as s:
            await s.execute(text("INSERT INTO t VALUES (1, 5)"))
    await asyncio.wait_for(bump(sessions), 5)
    # Read and closed without commit.
    assert await asyncio.wait_for(count(sessions), 5) == 1
    # The connection invalidated in the middle of a transaction (a broken database file
    # handle, say), then given back to the pool.
    conn = await engine.connect()
    transaction = await conn.begin()
    await conn.execute(text("SELECT 1"))
    await conn.invalidate()
    with pytest.raises(PendingRollbackError):
        await transaction.rollback()
    await conn.close()
    await asyncio.wait_for(bump(sessions), 5)
    # Cancelled while waiting for its turn.
    async with sessions.begin() as s:
        await s.execute(text("UPDATE t SET n = n + 1 WHERE k = 1"))
        waiting = asyncio.create_task(bump(sessions))
        await asyncio.sleep(0.05)
        waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.wait_for(bump(sessions), 5)
    assert await count(sessions) == 4


async def test_many_writers_at_once_all_get_their_turn(
        db: tuple[AsyncEngine, async_sessionmaker[AsyncSession]]) -> None:
    _, sessions = db
    await asyncio.wait_for(asyncio.gather(*(bump(sessions) for _ in range(50))), 30)
    assert await count(sessions) == 50


async def test_a_session_opened_inside_another_fails_instead_of_hanging(
        db: tuple[AsyncEngine, async_sessionmaker[AsyncSession]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug that opens a second transaction while holding one waits for its own turn:
    it must end in an error (as SQLite's busy timeout ended it), not stop every write."""
    _, sessions = db
    monkeypatch.setattr("storage.db.TURN_TIMEOUT", 0.2)
    async with sessions.begin() as outer:
        await outer.execute(text("UPDATE t SET n = n + 1 WHERE k = 1"))
        with pytest.raises(TimeoutError):
            await bump(sessions)
    await asyncio.wait_for(bump(sessions), 5)
    assert await count(sessions) == 2
