"""Tables stay bounded: what only served delivery goes after the commune's retention (30
days; statistics files 7), what an open case still needs stays, and the bot still works
for old cases. Through the simulator, on SQLite and PostgreSQL, the clock moved by days."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import App, Setup, build_app
from bot.clock import FakeClock
from bot.config import DEMO_CONFIG, ConfigError, load_commune, load_province, parse_commune
from bot.domain.commune import Retention
from bot.handlers.simulator import SimulatorPlugin
from bot.workers.pruning import PruningWorker
from storage import conversations, outbox
from tests.support.database import count, rows, write
from tests.support.province import write_province
from tests.support.simulator import Simulator, choice_ids, simulator, walk_report
from tests.support.stories import REPORT_STEPS
from tests.support.workers import worker_of

DAY = timedelta(days=1)


async def days_pass(app: App, clock: FakeClock, days: int) -> None:
    """Day by day, every worker settled each day (timers fire on their day)."""
    for _ in range(days):
        clock.advance(DAY)
        await app.settle()


async def close_a_case(sim: Simulator) -> tuple[str, int]:
    """A report the police take and close at once; its code and id."""
    code = await walk_report(sim, "citizen", REPORT_STEPS)
    case_id = int((await rows(sim.app, "cases", code=code))[0].id)
    police = sim["police"]
    await police.tap(f"case:ack:{case_id}")
    await police.tap(f"case:close:{case_id}")
    await police.tap("outcome:referred")
    await police.text("Đã chuyển cho công an huyện.")
    await police.tap("close:confirm")
    assert (await rows(sim.app, "cases", id=case_id))[0].status == "closed"
    return code, case_id


async def test_a_month_later_delivered_rows_are_gone_and_open_cases_still_work(
        sim: Simulator, clock: FakeClock) -> None:
    app = sim.app
    closed_code, closed_id = await close_a_case(sim)
    # A case nobody takes: its alerts must still lose their buttons when it is taken.
    await walk_report(sim, "citizen", REPORT_STEPS)
    open_id = max(int(c.id) for c in await rows(app, "cases"))
    await sim["officer"].text("/stats 2026-11")
    assert await count(app, "stored_files") == 2
    start = clock.now()
    first_alerts = {int(r.id) for r in await rows(app, "outbox", case_id=open_id,
                                                    kind="alert")}
    assert len(first_alerts) == 2
    deadlines = await count(app, "case_deadlines")

    # A week and a day: the statistics files (and their links) are gone, nothing else.
    outbox_before = await count(app, "outbox")
    await days_pass(app, clock, 8)
    assert await count(app, "stored_files") == 0
    assert await count(app, "outbox", case_id=closed_id) > 0
    assert await count(app, "outbox") >= outbox_before

    await days_pass(app, clock, 23)
    cutoff = clock.now() - timedelta(days=30)
    assert cutoff > start
    # The closed case's messages, the replies of the report and the statistics, the
    # simulator's log of those days, and every timer done a month ago: gone.
    assert await count(app, "outbox", case_id=closed_id) == 0
    left = await rows(app, "outbox")
    old = [r for r in left if r.created_at < cutoff]
    assert old, "the open case's first alerts are kept"
    assert all(r.case_id == open_id and r.kind in ("alert", "escalation") for r in old), [
        (r.kind, r.case_id) for r in old]
    assert first_alerts <= {int(r.id) for r in old}
    assert all(r.status == "sent" for r in left if r.status != "pending")
    assert not [m for m in await rows(app, "sim_messages") if m.created_at < cutoff]
    timers = await rows(app, "timers")
    assert not [t for t in timers if t.done_at is not None and t.done_at < cutoff]
    # The open case is still chased: it climbed to the top, whose daily digest of waiting
    # cases is due (or a timer of its chain waits, unfired).
    assert [t for t in timers if t.done_at is None] or [
        d for d in await rows(app, "top_digests", order_by="person_id") if d.due_at is not None]
    assert await count(app, "case_deadlines") == deadlines

    # Pruning again at the same time finds nothing: the app's own worker waits for its
    # hour, and another process's worker, looking now, deletes nothing more.
    sizes = [await count(app, t) for t in ("outbox", "sim_messages", "timers")]
    assert await worker_of(app, PruningWorker).run_due(clock.now()) == 0
    assert await PruningWorker(app.database, Retention()).run_due(clock.now()) == 0
    assert [await count(app, t) for t in ("outbox", "sim_messages", "timers")] == sizes

    # The bot still works for both cases. The reporter asks after the closed one.
    citizen = sim["citizen"]
    await citizen.tap("menu:status")
    await citizen.text(closed_code)
    assert (await citizen.last())["ids"] == ["status.closed"]
    # The officer takes the open case from the month-old alert: every alert copy is
    # edited (the alerts were kept, and sent, so the edits go out instead of being
    # skipped), and the reporter hears the case is being handled.
    officer = sim["officer"]
    await officer.tap(f"case:ack:{open_id}")
    took = await officer.inbox()
    assert [m["ids"] for m in took][-1] == ["case.you_took"]
    assert f"case:assess:{open_id}" in choice_ids(took[-1])
    await app.settle()
    # (Each alert's overdue edit, made when nobody took it in time, aside.)
    edits = [r for r in await rows(app, "outbox", kind="edit")
             if r.payload["meta"]["edit_of"] in first_alerts
             and r.dedupe_key == f"edit:{r.payload['meta']['edit_of']}"]
    assert sorted(r.payload["meta"]["edit_of"] for r in edits) == sorted(first_alerts)
    assert {r.status for r in edits} == {"sent"}
    assert "reporter.being_handled" in [i for m in await citizen.inbox() for i in m["ids"]]


async def test_two_processes_pruning_one_database_at_once(
        db_url: str, clock: FakeClock, app: App, sim: Simulator) -> None:
    for _ in range(3):
        await close_a_case(sim)
    await sim["officer"].text("/stats 2026-11")
    await days_pass(app, clock, 1)
    second = await build_app(Setup(db_url, load_commune(DEMO_CONFIG), clock),
                             [SimulatorPlugin()])
    try:
        # The closed cases' timers fire (and do nothing), then everything ages past a
        # retention of a day (the year stays 2026).
        clock.advance(timedelta(days=31))
        await app.settle(("timers", "delivery"))
        clock.advance(timedelta(days=2))
        sizes = {t: await count(app, t) for t in ("outbox", "sim_messages", "timers",
                                                    "stored_files")}
        # What is emptied rather than deleted (messages' words, drafts) is emptied first,
        # so the two workers' counts below are of deleted rows alone.
        await write(app, outbox.empty_delivered, 0, 100_000)
        await write(app, conversations.forget_drafts, clock.now(), 100_000)
        # Small batches, so the two interleave for many rounds.
        workers = [PruningWorker(a.database, Retention(1, 1), batch=3) for a in (app, second)]

        async def prune(worker: PruningWorker) -> int:
            deleted = 0
            while (n := await worker.run_due(clock.now())):
                deleted += n
            return deleted

        # One batch each in turn (so both surely delete), then both at once to the end:
        # which of the two gets the rest is up to the scheduling of the moment.
        first = [await w.run_due(clock.now()) for w in workers]
        assert all(n > 0 for n in first), first
        deleted = await asyncio.gather(*(prune(w) for w in workers))
        after = {t: await count(app, t) for t in sizes}
        # Each row went once: what both deleted is what left the tables.
        assert sum(first) + sum(deleted) == sum(sizes.values()) - sum(after.values())
        # Only each table's newest row is left (see storage.sql.delete_batch); no file.
        assert after == {"outbox": 1, "sim_messages": 1, "timers": 1, "stored_files": 0}, (
            sizes, after)
        # The bot goes on: the second process's workers run, a new report is alerted, and
        # the officer's phone (reading after the last id it saw) shows the alert.
        await second.settle()
        assert await walk_report(sim, "citizen", REPORT_STEPS) == "VT-2026-0004"
        assert (await sim["officer"].last())["ids"][0] == "alert.new"
    finally:
        await second.close()


# ---- the commune file's [retention] ---------------------------------------------------------


def commune_with(retention: Any) -> dict[str, Any]:
    import tomllib

    raw = tomllib.loads(Path(DEMO_CONFIG).read_text(encoding="utf-8"))
    raw["retention"] = retention
    return raw


def test_retention_defaults_and_the_demo_commune() -> None:
    assert load_commune(DEMO_CONFIG).retention == Retention(30, 7)
    raw = commune_with({})
    assert parse_commune(raw).retention == Retention(30, 7)
    del raw["retention"]
    assert parse_commune(raw).retention == Retention(30, 7)
    assert parse_commune(commune_with({"files_days": 2})).retention == Retention(30, 2)
    assert parse_commune(commune_with({"delivered_days": 90, "files_days": 14})
                         ).retention.delivered == timedelta(days=90)


@pytest.mark.parametrize(("retention", "message"), [
    ({"delivered_day": 30}, "retention: unknown field(s) delivered_day; did you mean "
                            "delivered_days?"),
    ({"delivered_days": 0}, "retention: 'delivered_days' must be a whole number of days, "
                            "at least 1, not 0"),
    ({"files_days": -7}, "retention: 'files_days' must be a whole number of days, at least "
                         "1, not -7"),
    ({"files_days": 1.5}, "'files_days' must be a whole number of days"),
    ({"delivered_days": "30"}, "'delivered_days' must be a whole number of days"),
    ({"delivered_days": True}, "'delivered_days' must be a whole number of days"),
    ([30, 7], "retention: expected a table ([retention])"),
])
def test_retention_typos_are_one_line_errors(retention: Any, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_commune(commune_with(retention))
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


async def test_a_province_prunes_by_its_own_files_retention(
        tmp_path: Path, db_url: str, clock: FakeClock) -> None:
    """In a province, the province file's [retention] is the process's: a second
    commune's statistics files go after its 2 days (the default would keep them 7)."""
    path = write_province(tmp_path, communes=2)
    path.write_text(path.read_text(encoding="utf-8") + "\n[retention]\nfiles_days = 2\n",
                    encoding="utf-8")
    province = load_province(path)
    async with simulator(db_url, clock, province) as sim:
        await sim[f"{province.communes[1].key}.officer"].text("/stats 2026-11")
        assert await count(sim.app, "stored_files") == 2
        await days_pass(sim.app, clock, 3)
        assert await count(sim.app, "stored_files") == 0
