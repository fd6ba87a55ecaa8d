"""The database: engine, transactions, and the schema's migrations (storage layer).

Everything outside storage/ sees only `Database` (open a transaction, or a read) and `Tx`
(an open transaction, handed to the storage functions); neither shows SQLAlchemy. Storage
runs Core statements on the transaction's connection: no ORM unit of work, no identity map,
every change an explicit statement named for what it does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util.concurrency import await_only, in_greenlet

from storage.crypto import KEYS_SETTING, FieldCipher, KeyProblem, cipher_for

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
# aiosqlite logs every statement with its parameters at DEBUG (report texts, names,
# phone numbers, Zalo tokens), past hide_parameters: never let it.
logging.getLogger("aiosqlite").setLevel(logging.INFO)
TURN_TIMEOUT = 60.0
# How long the first connection at start-up may take before the database counts as
# unreachable (a host that drops packets would otherwise hold the start for a minute).
CONNECT_TIMEOUT = 10.0
# How long the readiness check waits for the database's answer: a probe comes every few
# seconds, and a database slower than this to say "1" is not serving cases either.
ANSWER_TIMEOUT = 2.0


class DatabaseUnreachable(Exception):
    """The database could not be opened at start-up: `where` is the server's host and port
    (or the SQLite file), never the URL, which may carry a password."""

    def __init__(self, where: str, reason: str, sqlite: bool) -> None:
        super().__init__(f"{where}: {reason}")
        self.where, self.reason, self.sqlite = where, reason, sqlite


# hide_parameters: a database error's text would otherwise carry the statement's values
# (descriptions, names, phone numbers) into the logs.
def make_engine(url: str, keys: str | None = None) -> AsyncEngine:
    """The engine of a database URL, with the cipher of its private fields (see
    storage/crypto.py: `keys` is SAFECHILD_KEYS; None takes it from this process's
    environment, "" means none is configured). Raises KeyProblem."""
    raw_keys = os.environ.get(KEYS_SETTING) if keys is None else keys
    sqlite = url.startswith("sqlite")
    database = make_url(url).database if sqlite else None
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    cipher = cipher_for(database, sqlite, raw_keys)
    engine = _make_engine(url)
    _use_cipher(engine, cipher)
    return engine


def _use_cipher(engine: AsyncEngine, cipher: FieldCipher) -> None:
    # The Encrypted types of storage/models.py find it on the dialect, which belongs to
    # this engine alone.
    engine.sync_engine.dialect.safechild_cipher = cipher  # type: ignore[attr-defined]


def cipher_of(engine: AsyncEngine) -> FieldCipher:
    cipher: FieldCipher = engine.sync_engine.dialect.safechild_cipher  # type: ignore[attr-defined]
    return cipher


def _make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            private_file(Path(database))
        # SQLite has one writer; a few connections let reads and the next BEGIN overlap
        # (measured in bench/engine.py: p50 176 ms with 5 against 392 ms with 1).
        engine = create_async_engine(url, connect_args={"timeout": 30}, pool_size=5,
                                     max_overflow=0, pool_timeout=120, hide_parameters=True)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        # SQLite's busy handler polls with growing sleeps, so among this process's own
        # connections a transaction could lose the write lock again and again (a webhook's
        # 200 once waited 0.8 s behind a stream of short transactions). Our connections
        # take turns on an asyncio lock first, in arrival order; SQLite's lock then only
        # arbitrates between processes.
        turns = asyncio.Lock()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            if in_greenlet():
                # At most the pool's other connections wait ahead: a minute means a task
                # waits for its own turn (a session opened inside another), which must fail
                # as SQLite's busy timeout made it fail, not hang.
                await_only(asyncio.wait_for(turns.acquire(), TURN_TIMEOUT))
                conn.info["turn"] = True
            try:
                # Take the write lock at BEGIN so two writers queue instead of failing to
                # upgrade.
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                _end_turn(conn)
                raise

        def _end_turn(conn: Connection) -> None:
            if conn.info.pop("turn", False):
                turns.release()

        event.listen(engine.sync_engine, "commit", _end_turn)
        event.listen(engine.sync_engine, "rollback", _end_turn)

        @event.listens_for(engine.sync_engine, "checkin")
        def _checkin(_dbapi_conn: Any, record: Any) -> None:
            # A connection given back without COMMIT or ROLLBACK (invalidated after an
            # error) must not keep the turn.
            if record.info.pop("turn", False):
                turns.release()

        # pysqlite's own transaction handling must step aside for the explicit BEGIN.
        @event.listens_for(engine.sync_engine, "connect", insert=True)
        def _sqlite_autocommit(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True,
                               hide_parameters=True)


# The database, its -wal and -shm files: read and written by the bot's user alone.
PRIVATE = 0o600
SIDE_FILES = ("-wal", "-shm", "-journal")


def private_file(path: Path) -> None:
    """Make the SQLite file, before SQLite opens it, readable by its owner only (an empty
    file is a new database to SQLite). SQLite gives its -wal and -shm files the mode of
    the database file, so they are private too. A file made before this (0644 under the
    usual umask) is made private too, with any side files there are."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, PRIVATE))
    for file in (path, *(path.with_name(path.name + s) for s in SIDE_FILES)):
        try:
            if file.stat().st_mode & 0o077:
                file.chmod(PRIVATE)
                log.warning("%s was readable by other users: made readable by its owner "
                            "only", file.name)
        except FileNotFoundError:
            pass
        except PermissionError:
            log.warning("%s is readable by other users and not ours to change: "
                        "chmod 600 it", file.name)


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """ORM sessions on the engine: for the tests' own look at the tables, not for the bot."""
    return async_sessionmaker(engine, expire_on_commit=False)


class Tx:
    """One open transaction (or read); storage functions take it, nothing else opens it."""

    __slots__ = ("_after_commit", "_before_commit", "audit_pending", "audit_tails",
                 "case_communes", "conn")

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._after_commit: list[Callable[[], None]] = []
        self._before_commit: list[Callable[[], Awaitable[None]]] = []
        # Audit rows waiting to be chained and written just before the commit, and each
        # audited commune's last hash as this transaction sees it (storage/audit.py).
        self.audit_pending: list[Any] = []
        self.audit_tails: dict[int, str] = {}
        # The commune of each case read or audited in this transaction (a case never moves).
        self.case_communes: dict[int, int] = {}

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the transaction has committed (never when it rolls back),
        e.g. to wake a worker that must see the change."""
        self._after_commit.append(callback)

    def before_commit(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Await `callback` at the end of the transaction's block, before it commits (a
        failure rolls the whole transaction back); never in a read."""
        self._before_commit.append(callback)

    async def _finish(self) -> None:
        while self._before_commit:
            await self._before_commit.pop(0)()

    @property
    def dialect(self) -> str:
        return self.conn.dialect.name

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A part of the transaction that fails on its own: an exception inside rolls back
        only what was done inside, and goes on to the caller."""
        pending = list(self.audit_pending)
        try:
            async with self.conn.begin_nested():
                yield
        except BaseException:
            # Audit rows asked for inside are dropped with the rest; those asked for before
            # and written inside (a flush) wait again; the chain's tail is read again
            # rather than chained onto rows that are gone.
            self.audit_pending[:] = pending
            self.audit_tails.clear()
            raise


class Database:
    """The process's database: transactions for work, reads for looking."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # Closed (the process stopping): the engine would quietly reconnect, but nothing
        # of this process should count on it any more.
        self.closed = False

    @classmethod
    async def open(cls, url: str, keys: str | None = None) -> Database:
        """Connect and bring the schema to the newest migration (safe at every start).
        Raises DatabaseUnreachable when the first connection fails, KeyProblem when the
        keys (`keys`, as make_engine takes them) cannot be used."""
        try:
            engine = make_engine(url, keys)
        except KeyProblem:
            raise
        except Exception as exc:
            # An SQLite file's folder that cannot be made, or a URL with no driver here.
            reason = _reason(exc) if isinstance(exc, OSError) \
                else f"not a database URL this bot can use ({_reason(exc)})"
            raise DatabaseUnreachable(_where(url), reason, url.startswith("sqlite")) from exc
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                async with engine.connect():
                    pass
        except Exception as exc:
            await engine.dispose()
            reason = (f"no answer within {CONNECT_TIMEOUT:g} s"
                      if isinstance(exc, TimeoutError) else _reason(exc))
            raise DatabaseUnreachable(_where(url), reason, engine.dialect.name == "sqlite") \
                from exc
        await migrate(engine)
        return cls(engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """Commits when the block ends, rolls back when it raises."""
        async with self.engine.begin() as conn:
            tx = Tx(conn)
            yield tx
            await tx._finish()
        for callback in tx._after_commit:
            callback()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        """For reading only: whatever was written is rolled back at the end."""
        async with self.engine.connect() as conn:
            yield Tx(conn)

    async def answers(self) -> bool:
        """Whether the database runs a trivial query within ANSWER_TIMEOUT seconds."""
        if self.closed:
            return False
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT):
                async with self.engine.connect() as conn:
                    if self.dialect == "sqlite":
                        # On the driver's connection: a statement through SQLAlchemy would
                        # BEGIN IMMEDIATE (see make_engine) and wait for the write lock.
                        # The schema's first page is read: the file must answer too.
                        raw: Any = (await conn.get_raw_connection()).driver_connection
                        async with raw.execute("SELECT count(*) FROM sqlite_master") as cur:
                            await cur.fetchone()
                    else:
                        await conn.execute(text("SELECT 1"))
        except Exception:  # unreachable, refused, timed out: all the same to a probe
            return False
        return True

    async def close(self) -> None:
        self.closed = True
        await self.engine.dispose()


def _where(url: str) -> str:
    """The host and port of a database URL, or its SQLite file; never the password."""
    try:
        parsed = make_url(url)
    except Exception:
        return "the database URL"
    if parsed.get_backend_name() == "sqlite":
        return str(parsed.database or ":memory:")
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}"


def _reason(exc: BaseException) -> str:
    """What went wrong, in a few words: the driver's error under SQLAlchemy's wrapping."""
    seen: set[int] = set()
    error: BaseException = exc
    while id(error) not in seen:
        seen.add(id(error))
        inner = getattr(error, "orig", None) or error.__cause__
        if not isinstance(inner, BaseException):
            break
        error = inner
    if isinstance(error, socket.gaierror):
        return "unknown host name"
    if isinstance(error, OSError) and error.errno:
        return os.strerror(error.errno).lower()
    text = str(error).strip().splitlines()
    return (text[0][:200] if text else type(error).__name__)


def _upgrade(connection: Connection) -> None:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest migration (safe to run at every start)."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Several processes may start together; one migrates, the others wait.
            await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727001)")
        await conn.run_sync(_upgrade)
