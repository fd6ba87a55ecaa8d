"""The audit trail records who was shown what (alerts delivered, case cards, status lookups,
statistics made and downloaded) on a hash chain per commune that `safechild audit verify`
recomputes: a row changed in the raw database is named, and appenders in several
transactions or processes at once keep each commune's chain one line."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest

from bot.app import App
from storage import audit, cases, people
from storage.db import Database, Tx
from tests.support import START
from tests.support.audit import downgrade_and_migrate, raw, verify_cli
from tests.support.database import rows
from tests.support.simulator import Simulator, walk_report
from tests.support.stories import REPORT_STEPS


async def person_id(app: App, key: str) -> int:
    async with app.database.read() as tx:
        person = await people.person_by_key(tx, app.directory.commune_id, key)
    assert person is not None
    return person.id


async def download(sim: Simulator, url: str) -> int:
    async with sim.http.get(f"{sim.base}{url}") as r:
        await r.read()
        return r.status


def actions(events: Any) -> set[tuple[str, int | None, int | None]]:
    return {(e.action, e.actor_id, e.case_id) for e in events}


async def test_every_read_is_audited_with_its_reader_and_verify_catches_an_edit(
        sim: Simulator, db_url: str) -> None:
    app = sim.app
    commune = app.directory.commune_id
    code = await walk_report(sim, "citizen", REPORT_STEPS)
    officer, citizen = sim["officer"], sim["citizen"]
    async with app.database.read() as tx:
        case = await cases.case_by_code(tx, code)
    assert case is not None
    ids = {key: await person_id(app, key) for key in ("officer", "police", "citizen")}

    await officer.tap(f"case:view:{case.id}")
    assert (await officer.last())["ids"][0] == "case.card"
    await citizen.tap("menu:status")
    await citizen.text(code)
    assert code in (await citizen.last())["text"]
    await officer.inbox()
    await officer.text("/stats 2026-Q4")
    _, workbook, _ = await officer.inbox()
    assert await download(sim, workbook["media"]["url"]) == 200
    file_id = int(workbook["media"]["url"].rsplit("/", 2)[1])

    events = await rows(app, "case_events")
    seen = actions(events)
    # The alert reached the officer and the police officer: each a read of the case.
    assert {("shown", ids["officer"], case.id), ("shown", ids["police"], case.id)} <= seen
    alert_reads = [e for e in events if e.action == "shown" and e.actor_id == ids["officer"]]
    assert alert_reads[0].detail["kind"] == "alert"
    assert ("card_opened", ids["officer"], case.id) in seen
    assert ("status_viewed", ids["citizen"], case.id) in seen
    # Statistics are about the commune, not a case.
    made = [e for e in events if e.action == "stats_made"]
    assert [(e.actor_id, e.case_id, e.commune_id) for e in made] == [(ids["officer"], None,
                                                                      commune)]
    assert file_id in made[0].detail["files"] and made[0].detail["period"] == "2026-Q4"
    # Both files reached the officer's phone.
    delivered = [e for e in events if e.action == "stats_delivered"]
    assert {(e.actor_id, e.case_id, e.commune_id) for e in delivered} == {
        (ids["officer"], None, commune)}
    assert {e.detail["file"] for e in delivered} == set(made[0].detail["files"])
    fetched = [e for e in events if e.action == "stats_downloaded"]
    assert [(e.case_id, e.commune_id, e.detail) for e in fetched] == [
        (None, commune, {"file": file_id})]
    # One line per commune: each row names the one before it.
    assert events[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in pairwise(events))

    # Nothing of what the reporter told, nor anyone's name or phone, is in the trail.
    dump = " ".join(str(r) for r in await raw(db_url, "SELECT * FROM case_events"))
    secrets = ["dụ bé", "Một người đàn ông"] + [
        value for p in app.directory.config.people for value in (p.name, p.phone) if value]
    assert not [s for s in secrets if s in dump]

    ok = await asyncio.to_thread(verify_cli, db_url)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == [f"audit: OK, {len(events)} rows in 1 commune",
                                      f"  commune {commune}: {len(events)} rows"]

    # Someone with the database's password hides who opened the card.
    card = next(e for e in events if e.action == "card_opened")
    await raw(db_url, "UPDATE case_events SET actor_id = $1 WHERE id = $2",
              ids["police"], card.id)
    caught = await asyncio.to_thread(verify_cli, db_url)
    assert caught.returncode == 1
    assert caught.stdout.startswith(f"audit: row {card.id} of commune {commune} does not "
                                    f"match its chain (hash)"), caught.stdout
    # A row taken out: the row after it no longer follows its chain.
    await raw(db_url, "UPDATE case_events SET actor_id = $1 WHERE id = $2",
              ids["officer"], card.id)
    async with app.database.read() as tx:
        assert (await audit.verify(tx)).ok
    gone = events[3]
    after = next(e for e in events[4:] if e.commune_id == gone.commune_id)
    await raw(db_url, "DELETE FROM case_events WHERE id = $1", gone.id)
    async with app.database.read() as tx:
        broken = (await audit.verify(tx)).broken
    assert broken == audit.Broken(after.id, commune, "prev_hash")


async def test_concurrent_appenders_keep_each_communes_chain_one_line(
        app: App, db_url: str) -> None:
    """Two pools (as two processes have) append 120 rows in 60 transactions at once, two
    rows each, on one commune: one chain, every row on it."""
    commune = app.directory.commune_id
    other = await Database.open(db_url)

    async def append(database: Database, n: int) -> None:
        async with database.transaction() as tx:
            for k in range(2):
                await audit.record(tx, commune_id=commune, actor_id=None, action="stats_made",
                                   at=START + timedelta(seconds=n), detail={"n": n, "k": k})

    try:
        await asyncio.gather(*(append(app.database if n % 2 else other, n)
                               for n in range(60)))
    finally:
        await other.close()
    async with app.database.read() as tx:
        found = await audit.verify(tx)
    assert found.ok, found.broken
    assert found.rows == {commune: 120}


async def _blocked_on_lock(db_url: str) -> bool:
    waiting = await raw(db_url, "SELECT count(*) FROM pg_stat_activity WHERE "
                        "wait_event_type = 'Lock' AND wait_event = 'advisory'")
    return bool(waiting[0][0])


async def test_a_second_appender_waits_for_the_first_and_chains_onto_it(
        app: App, db_url: str) -> None:
    if app.database.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: nothing appends alongside")
    commune = app.directory.commune_id
    other = await Database.open(db_url)

    async def second() -> None:
        async with app.database.transaction() as tx:
            await audit.record(tx, commune_id=commune, actor_id=None, action="b", at=START)

    try:
        async with other.transaction() as tx:
            await audit.record(tx, commune_id=commune, actor_id=None, action="a", at=START)
            await audit.flush(tx)  # written: this transaction holds the commune's chain
            task = asyncio.create_task(second())
            for _ in range(500):
                if await _blocked_on_lock(db_url):
                    break
                await asyncio.sleep(0.01)
            assert await _blocked_on_lock(db_url), "the second appender did not wait"
            assert not task.done()
        await task
    finally:
        await other.close()
    a, b = await rows(app, "case_events")
    assert (a.action, b.action) == ("a", "b") and b.prev_hash == a.hash


async def test_rows_of_a_failed_savepoint_leave_the_chain_whole(app: App) -> None:
    commune = app.directory.commune_id

    async def add(tx: Tx, action: str) -> None:
        await audit.record(tx, commune_id=commune, actor_id=None, action=action, at=START)

    async with app.database.transaction() as tx:
        await add(tx, "before")
        with pytest.raises(RuntimeError):
            async with tx.savepoint():
                await add(tx, "inside")
                await audit.flush(tx)
                await add(tx, "inside, not written")
                raise RuntimeError
        await add(tx, "after")
    assert [e.action for e in await rows(app, "case_events")] == ["before", "after"]
    async with app.database.read() as tx:
        assert (await audit.verify(tx)).ok


async def test_the_migration_chains_existing_rows_as_the_bot_chains_new_ones(
        sim: Simulator, db_url: str) -> None:
    await walk_report(sim, "citizen", REPORT_STEPS)
    await sim["officer"].tap("case:ack:1")
    before = [(e.id, e.commune_id, e.prev_hash, e.hash) for e in await rows(sim.app,
                                                                            "case_events")]
    assert len(before) >= 4
    await downgrade_and_migrate(db_url, "0020")
    after = [(e.id, e.commune_id, e.prev_hash, e.hash) for e in await rows(sim.app,
                                                                           "case_events")]
    assert after == before
