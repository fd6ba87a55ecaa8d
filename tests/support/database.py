"""The tests' own look at the tables (and, rarely, a change behind the bot's back). Only
tests/support touches SQLAlchemy and storage.models; test modules name tables and columns
as strings here, or read through storage's own functions with `read`."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from functools import cache
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Row, Table, event, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.app import App
from storage.db import Database, Tx
from storage.models import Base

P = ParamSpec("P")
T = TypeVar("T")


def database_of(where: App | Database) -> Database:
    return where.database if isinstance(where, App) else where


@cache
def _sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def orm(where: App | Database) -> async_sessionmaker[AsyncSession]:
    """ORM sessions on the app's database (for support helpers)."""
    return _sessions(database_of(where).engine)


async def read(where: App | Database, fn: Callable[Concatenate[Tx, P], Awaitable[T]],
               *args: P.args, **kwargs: P.kwargs) -> T:
    """Call a storage function in a read of its own: `await read(app, cases.case_by_code,
    "VT-2026-0001")`."""
    async with database_of(where).read() as tx:
        return await fn(tx, *args, **kwargs)


async def write(where: App | Database, fn: Callable[Concatenate[Tx, P], Awaitable[T]],
                *args: P.args, **kwargs: P.kwargs) -> T:
    """Call a storage function in a transaction of its own (a change behind the bot's
    back, as another process would make it)."""
    async with database_of(where).transaction() as tx:
        return await fn(tx, *args, **kwargs)


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def _where(table: Table, where: dict[str, Any]) -> list[Any]:
    return [table.c[column] == value for column, value in where.items()]


async def rows(where: App | Database, table: str, order_by: str = "id",
               **equal: Any) -> Sequence[Row[Any]]:
    """The rows of `table` whose columns equal `equal`, read by attribute (row.status)."""
    t = _table(table)
    async with orm(where)() as s:
        found = await s.execute(select(t).where(*_where(t, equal)).order_by(t.c[order_by]))
        return found.all()


async def count(where: App | Database, table: str, **equal: Any) -> int:
    t = _table(table)
    async with orm(where)() as s:
        return int(await s.scalar(select(func.count()).select_from(t)
                                  .where(*_where(t, equal))) or 0)


async def change(where: App | Database, table: str, values: dict[str, Any],
                 **equal: Any) -> int:
    """Set `values` in the rows whose columns equal `equal`; how many changed."""
    t = _table(table)
    async with orm(where).begin() as s:
        result = await s.execute(update(t).where(*_where(t, equal)).values(**values))
        return int(getattr(result, "rowcount", 0))


async def messages(where: App | Database) -> Sequence[Row[Any]]:
    """Every outbox message with its person's config key (`person_key`), oldest first."""
    outbox, people = _table("outbox"), _table("people")
    async with orm(where)() as s:
        found = await s.execute(
            select(people.c.key.label("person_key"), *outbox.c)
            .join(people, people.c.id == outbox.c.person_id).order_by(outbox.c.id))
        return found.all()


@contextmanager
def power_cut_at_commit(where: App | Database) -> Iterator[None]:
    """Every commit fails while inside, as if the process died at that moment."""
    engine = database_of(where).engine.sync_engine

    def crash(conn: Any) -> None:
        raise RuntimeError("power cut")

    event.listen(engine, "commit", crash)
    try:
        yield
    finally:
        event.remove(engine, "commit", crash)


@contextmanager
def counting_commits(where: App | Database) -> Iterator[Counter[str]]:
    """Counts the commits made while inside (under "commit")."""
    engine = database_of(where).engine.sync_engine
    commits = Counter[str]()

    def counted(conn: Any) -> None:
        commits.update(["commit"])

    event.listen(engine, "commit", counted)
    try:
        yield commits
    finally:
        event.remove(engine, "commit", counted)


@contextmanager
def counting_statements(where: App | Database) -> Iterator[Counter[str]]:
    """Counts the statements run while inside, by their first word (SELECT, INSERT...),
    each executemany once."""
    engine = database_of(where).engine.sync_engine
    statements = Counter[str]()

    def counted(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        statements.update([statement.lstrip().split(None, 1)[0].upper()])

    event.listen(engine, "before_cursor_execute", counted)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", counted)


async def insert_rows(where: App | Database, table: str, values: Sequence[dict[str, Any]],
                      batch: int = 5_000) -> None:
    """Rows written straight into a table (a benchmark's year of cases), in batches."""
    t = _table(table)
    for offset in range(0, len(values), batch):
        async with orm(where).begin() as s:
            await s.execute(t.insert(), list(values[offset:offset + batch]))


@asynccontextmanager
async def refusing(where: App | Database, table: str, column: str, value: int
                   ) -> AsyncIterator[None]:
    """The database refuses every new row of `table` whose `column` is `value` (a trigger,
    as a full disk or a broken constraint would refuse it) until the block ends."""
    database = database_of(where)
    if database.engine.dialect.name == "postgresql":
        make = [f"""CREATE FUNCTION safechild_refuse() RETURNS trigger AS $$ BEGIN
                      IF NEW.{column} = {int(value)} THEN RAISE EXCEPTION 'refused'; END IF;
                      RETURN NEW; END $$ LANGUAGE plpgsql""",
                f"""CREATE TRIGGER safechild_refuse BEFORE INSERT ON {table}
                    FOR EACH ROW EXECUTE FUNCTION safechild_refuse()"""]
        drop = [f"DROP TRIGGER safechild_refuse ON {table}",
                "DROP FUNCTION safechild_refuse()"]
    else:
        make = [f"""CREATE TRIGGER safechild_refuse BEFORE INSERT ON {table}
                    WHEN NEW.{column} = {int(value)}
                    BEGIN SELECT RAISE(ABORT, 'refused'); END"""]
        drop = ["DROP TRIGGER safechild_refuse"]
    async with database.engine.begin() as conn:
        for statement in make:
            await conn.execute(text(statement))
    try:
        yield
    finally:
        async with database.engine.begin() as conn:
            for statement in drop:
                await conn.execute(text(statement))


@asynccontextmanager
async def database_gone(app: App) -> AsyncIterator[None]:
    """The app's database stops answering. PostgreSQL's server refuses the database's new
    connections and ends its sessions (as a server going down does), until the block
    ends; SQLite's is closed, as at shutdown (a file being written cannot be taken away
    from the connections that hold it open)."""
    database = database_of(app)
    if database.dialect == "sqlite":
        await database.close()
        yield
        return
    import asyncpg  # only PostgreSQL's half needs the driver itself

    url = database.engine.url
    name = url.database
    admin = await asyncpg.connect(host=url.host, port=url.port, user=url.username,
                                  database="postgres")
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = $1 AND pid <> pg_backend_pid()", name)
        yield
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()


async def opened_texts(where: App | Database, table: str) -> list[str]:
    """Each row of `table` as one string, its sealed fields opened (storage/crypto.py):
    what someone holding the keys reads, so what a purge took away is gone even for them.
    JSON is written out with its escapes undone, so words are found as typed."""
    t = _table(table)
    async with database_of(where).read() as tx:
        found = (await tx.conn.execute(select(t))).all()
    return [" ".join(_readable(value) for value in row) for row in found]


def _readable(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.dumps(json.loads(value), ensure_ascii=False)
        except ValueError:
            return value
    return str(value)
