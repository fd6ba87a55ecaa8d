"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from storage.db import make_engine, migrate
from storage.models import Base


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": False})
    return [d for d in compare_metadata(context, Base.metadata)
            # Alembic's own bookkeeping table is not a model.
            if not (d[0] == "remove_table" and d[1].name == "alembic_version")]


async def test_migrated_schema_matches_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        await migrate(engine)
        async with engine.connect() as conn:
            differences = await conn.run_sync(_differences)
    finally:
        await engine.dispose()
    assert differences == []


def _upgrade_to(connection: Connection, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from storage.db import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def test_0011_upgrades_a_database_of_the_previous_version(db_url: str) -> None:
    """A database made before 0011 keeps the simulator's log; its rows carry no outbox id,
    and from now on a message is logged once per outbox message."""
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    engine = make_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to, "0010")
            await conn.execute(text(
                "INSERT INTO sim_messages (address, direction, payload, created_at) "
                "VALUES ('citizen', 'out', '{\"text\": \"xin chào\"}', '2026-11-23 02:00:00')"))
        await migrate(engine)
        async with engine.begin() as conn:
            old = (await conn.execute(text(
                "SELECT address, outbox_id FROM sim_messages"))).all()
            assert [tuple(r) for r in old] == [("citizen", None)]
            await conn.execute(text(
                "INSERT INTO sim_messages (address, direction, payload, created_at, outbox_id) "
                "VALUES ('citizen', 'out', '{}', '2026-11-23 02:00:00', 7)"))
        try:
            async with engine.begin() as conn:
                await conn.execute(text(
                    "INSERT INTO sim_messages (address, direction, payload, created_at, "
                    "outbox_id) VALUES ('citizen', 'out', '{}', '2026-11-23 02:00:00', 7)"))
        except IntegrityError:
            pass
        else:
            raise AssertionError("a second log row for one outbox message was accepted")
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
    finally:
        await engine.dispose()


async def test_0013_adds_the_top_digests_and_takes_them_away_again(db_url: str) -> None:
    """A database of the version before gets the (empty) digest timers; downgrading drops
    them and leaves the rest."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect

    from storage.db import MIGRATIONS

    def downgrade(connection: Connection) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0012")

    def tables(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    engine = make_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to, "0012")
            assert "top_digests" not in await conn.run_sync(tables)
        await migrate(engine)
        async with engine.begin() as conn:
            assert "top_digests" in await conn.run_sync(tables)
            await conn.run_sync(downgrade)
            assert "top_digests" not in await conn.run_sync(tables)
            assert "outbox" in await conn.run_sync(tables)
    finally:
        await engine.dispose()


def _downgrade_to(connection: Connection, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from storage.db import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    command.downgrade(cfg, revision)


def _pruning_indexes(connection: Connection) -> set[str]:
    from sqlalchemy import inspect

    found = {ix["name"] for table in ("outbox", "sim_messages", "stored_files")
             for ix in inspect(connection).get_indexes(table)}
    return found & {"ix_outbox_created_at", "ix_sim_messages_created_at",
                    "ix_stored_files_created_at"}


async def test_0014_indexes_a_database_of_the_previous_version_and_goes_back(
        db_url: str) -> None:
    """0014 adds the indexes pruning deletes by to a database made before it, keeping its
    rows; going back to 0013 drops them again."""
    from sqlalchemy import text

    engine = make_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to, "0013")
            await conn.execute(text(
                "INSERT INTO sim_messages (address, direction, payload, created_at) "
                "VALUES ('citizen', 'in', '{}', '2026-11-23 02:00:00')"))
            assert await conn.run_sync(_pruning_indexes) == set()
        await migrate(engine)
        async with engine.begin() as conn:
            assert len(await conn.run_sync(_pruning_indexes)) == 3
            assert (await conn.execute(text("SELECT count(*) FROM sim_messages"))).scalar() == 1
            assert await conn.run_sync(_differences) == []
            await conn.run_sync(_downgrade_to, "0013")
            assert await conn.run_sync(_pruning_indexes) == set()
        await migrate(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
    finally:
        await engine.dispose()


async def test_0015_adds_the_closing_note_and_goes_back(db_url: str) -> None:
    """A database of the version before gets cases.closing_note (empty); going back drops
    it and keeps the cases."""
    from sqlalchemy import inspect

    def columns(connection: Connection) -> set[str]:
        return {c["name"] for c in inspect(connection).get_columns("cases")}

    engine = make_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to, "0014")
            assert "closing_note" not in await conn.run_sync(columns)
        await migrate(engine)
        async with engine.begin() as conn:
            assert "closing_note" in await conn.run_sync(columns)
            await conn.run_sync(_downgrade_to, "0014")
            assert "closing_note" not in await conn.run_sync(columns)
            assert "outcome" in await conn.run_sync(columns)
    finally:
        await engine.dispose()
