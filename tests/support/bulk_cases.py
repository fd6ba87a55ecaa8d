"""Open cases written straight into a PostgreSQL database by the tens of thousands, with
their deadlines and timers, and what became of those timers (bench/province_pg.py): the
real code would take hours to open 100,000 cases one by one."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from bot.app import Setup, build_app
from bot.clock import SystemClock
from bot.config import load_province
from bot.handlers.simulator import SimulatorPlugin
from storage.db import Database


async def populate(url: str, province_file: Path, cases: int, due: int) -> None:
    app = await build_app(Setup(url, load_province(province_file), SystemClock()),
                          [SimulatorPlugin()])
    await app.close()
    database = await Database.open(url)
    try:
        async with database.transaction() as tx:
            await tx.conn.execute(text("""
                INSERT INTO cases (commune_id, code, types, urgency, danger, police_case,
                                   status, age_band, sex, child_count, reporter_anonymous,
                                   escalation_level, created_at, version)
                SELECT c.ids[(g % c.n) + 1], 'BX-2026-' || lpad(g::text, 7, '0'),
                       'violence', 'URGENT', 'no', true, 'new', 'unknown', 'unknown', 1,
                       true, 1, now() - interval '1 hour', 1
                FROM generate_series(1, :cases) g,
                     (SELECT array_agg(id ORDER BY id) AS ids, count(*)::int AS n
                      FROM communes WHERE code_prefix <> '') c"""), {"cases": cases})
            # The first `due` fall due over the first minute (from 20 s on, once the
            # processes are up); the others over the next days.
            await tx.conn.execute(text("""
                INSERT INTO case_deadlines (case_id, step, started_at, due_at, version)
                SELECT id, 'acknowledge', created_at,
                       CASE WHEN id <= :due
                            THEN now() + interval '20 seconds'
                                 + (id % 60) * interval '1 second'
                            ELSE now() + interval '1 day' + (id % 300000) * interval '1 second'
                       END, 1
                FROM cases"""), {"due": due})
            await tx.conn.execute(text("""
                INSERT INTO timers (deadline_id, kind, seq, fire_at, deadline_version)
                SELECT id, 'escalate1', 0, due_at, 1 FROM case_deadlines"""))
    finally:
        await database.close()


async def waiting(database: Database, where: str) -> int:
    """How many of the timers `where` picks have not fired yet."""
    async with database.read() as tx:
        return int((await tx.conn.execute(text(
            f"SELECT count(*) FROM timers WHERE {where} AND done_at IS NULL"))).scalar() or 0)


async def lateness(database: Database, where: str) -> list[float]:
    """Seconds from each fired timer's due time to its firing."""
    async with database.read() as tx:
        return [float(r[0]) for r in await tx.conn.execute(text(
            f"SELECT extract(epoch FROM done_at - fire_at) FROM timers "
            f"WHERE {where} AND done_at IS NOT NULL"))]


async def make_due_while_down(database: Database, count: int) -> list[int]:
    """`count` timers of later days made due a minute ago (as if the processes were down
    when they fell due); the ids of every timer due now and not fired."""
    async with database.transaction() as tx:
        await tx.conn.execute(text(f"""
            UPDATE timers SET fire_at = now() - interval '1 minute'
            WHERE id IN (SELECT id FROM timers WHERE done_at IS NULL
                         ORDER BY id LIMIT {int(count)})"""))
        return [r[0] for r in await tx.conn.execute(text(
            "SELECT id FROM timers WHERE done_at IS NULL AND fire_at < now()"))]
