"""Retention: what people wrote is kept no longer than it serves. Delivered messages lose
their words, a draft left for a day is forgotten (and its person starts afresh, kindly), a
case closed longer than its commune's period loses its free text but not its statistics,
and the simulator's log goes after a week. Through the simulator, on SQLite and
PostgreSQL, the clock moved by hours and days, the raw tables read before and after."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import App
from bot.clock import FakeClock
from bot.config import DEMO_CONFIG, ConfigError, load_province, parse_commune
from bot.domain.commune import CommuneConfig, Retention
from bot.workers.pruning import PruningWorker
from storage import statistics
from tests.support.database import change, opened_texts, read, rows
from tests.support.province import write_province
from tests.support.simulator import Phone, Simulator, simulator
from tests.support.stories import (
    CHILD_NAME,
    CLOSING_NOTE,
    DESCRIPTION,
    MEASURES,
    PHOTO_REF,
    PRIVATE_REPORT,
    PRIVATE_WORDS,
    REPORTER_PHONE,
)
from tests.support.zalo import open_hook

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
APPROVE = "case:close_ok:1:1"


def demo(**retention: Any) -> CommuneConfig:
    import tomllib

    raw = tomllib.loads(Path(DEMO_CONFIG).read_text(encoding="utf-8"))
    raw["retention"] = retention
    return parse_commune(raw)


async def walk(phone: Phone, steps: list[tuple[str, str]]) -> None:
    for kind, value in steps:
        await phone.step(kind, value)


async def report_assess_and_close(sim: Simulator) -> int:
    """The private report, taken, assessed at high risk (measures typed), closed by the
    officer with a note and approved by the chairman; the case's id."""
    await walk(sim["citizen"], PRIVATE_REPORT)
    (case,) = await rows(sim.app, "cases")
    officer = sim["officer"]
    for kind, value in [("choice", f"case:ack:{case.id}"), ("choice", f"case:assess:{case.id}"),
                        ("choice", "risk:high"), ("text", MEASURES),
                        ("choice", "form:sexual_abuse"), ("choice", "setting:family"),
                        ("choice", f"case:close:{case.id}"), ("choice", "outcome:referred"),
                        ("text", CLOSING_NOTE), ("choice", "close:confirm")]:
        await officer.step(kind, value)
    assert (await officer.last())["ids"] == ["close.needs_chairman"]
    await sim["chairman"].tap(APPROVE)
    assert (await rows(sim.app, "cases"))[0].status == "closed"
    return int(case.id)


async def hours_pass(app: App, clock: FakeClock, hours: int) -> None:
    for _ in range(hours):
        clock.advance(HOUR)
        await app.settle()


def holding(texts: list[str]) -> list[str]:
    """The private words found in these raw rows."""
    return [w for w in PRIVATE_WORDS if any(w in t for t in texts)]


async def year_statistics(app: App, commune_id: int) -> list[tuple[Any, ...]]:
    async def counted(tx: Any) -> list[tuple[Any, ...]]:
        found: list[tuple[Any, ...]] = []
        async for chunk in statistics.case_counts(
                tx, [commune_id], datetime(2026, 1, 1, tzinfo=UTC),
                datetime(2027, 1, 1, tzinfo=UTC)):
            found.extend(tuple(r) for r in chunk)
        return sorted(found, key=repr)

    return await read(app, counted)


async def test_a_closed_case_keeps_its_statistics_and_loses_its_words(
        db_url: str, clock: FakeClock) -> None:
    async with simulator(db_url, clock, demo(closed_case_text_days=3)) as sim:
        app = sim.app
        case_id = await report_assess_and_close(sim)
        (case,) = await rows(app, "cases")
        assert (case.description, case.child_name, case.reporter_phone) == (
            DESCRIPTION, CHILD_NAME, REPORTER_PHONE)
        assert MEASURES in (case.measures or "") and case.closing_note == CLOSING_NOTE
        assert [a.file_ref for a in await rows(app, "attachments")] == [PHOTO_REF]
        assert [r.note for r in await rows(app, "close_requests")] == [CLOSING_NOTE]
        assert holding(await opened_texts(app, "outbox")), "the alerts carried the words"
        before = await year_statistics(app, case.commune_id)
        assert before

        # An hour on: every message that went out has lost its words, none its metadata.
        await hours_pass(app, clock, 1)
        sent = await rows(app, "outbox")
        assert sent and {r.status for r in sent} <= {"sent", "skipped", "failed"}
        assert not [r.id for r in sent if "reply" in r.payload]
        assert all("language" in r.payload and "meta" in r.payload for r in sent)
        assert holding(await opened_texts(app, "outbox")) == []
        edits = [r for r in sent if r.kind == "edit"]
        assert edits and all(r.payload["meta"]["edit_of"] for r in edits)
        assert {r.external_ref is not None for r in sent if r.status == "sent"} == {True}
        # The case itself keeps its words until its commune's 3 days have passed.
        assert (await rows(app, "cases"))[0].description == DESCRIPTION

        for _ in range(3):
            clock.advance(DAY)
            await app.settle()
        (purged,) = await rows(app, "cases")
        assert (purged.description, purged.child_name, purged.reporter_phone,
                purged.measures, purged.closing_note) == (None,) * 5
        assert [a.file_ref for a in await rows(app, "attachments")] == [""]
        assert [r.note for r in await rows(app, "close_requests")] == [""]
        for table in ("cases", "attachments", "close_requests", "outbox", "conversations",
                      "case_events"):
            assert holding(await opened_texts(app, table)) == [], table
        # Everything statistics count stays, and the year's figures are the same.
        kept = ("code", "types", "urgency", "danger", "village_id", "age_band", "sex",
                "child_count", "risk", "confirmed_form", "setting", "outcome", "status",
                "created_at", "acknowledged_at", "assessed_at", "closed_at", "reporter_id")
        assert [getattr(purged, c) for c in kept] == [getattr(case, c) for c in kept]
        assert await year_statistics(app, case.commune_id) == before
        # The simulator's log still shows the week's messages, until the week is over.
        assert holding(await opened_texts(app, "sim_messages"))
        for _ in range(4):
            clock.advance(DAY)
            await app.settle()
        assert holding(await opened_texts(app, "sim_messages")) == []

        # Purging again finds nothing: the app's worker waits for its hour, another
        # process's worker looking now changes nothing.
        other = PruningWorker(app.database, Retention(),
                              closed_case_text={case.commune_id: timedelta(days=3)})
        assert await other.run_due(clock.now()) == 0
        assert (await rows(app, "cases"))[0].version == purged.version
        # And the reporter still hears how the case ended.
        citizen = sim["citizen"]
        await citizen.tap("menu:status")
        await citizen.text(purged.code)
        assert (await citizen.last())["ids"] == ["status.closed"]
        assert case_id == purged.id


async def test_a_draft_left_for_a_day_is_forgotten_and_its_person_starts_afresh(
        sim: Simulator, clock: FakeClock) -> None:
    app = sim.app
    mate = sim["collaborator"]
    for kind, value in PRIVATE_REPORT[:10]:
        await mate.step(kind, value)
    assert (await mate.last())["ids"] == ["report.description.prompt"]
    officer = sim["officer"]
    await officer.text("/start")
    drafts = {r.person_id: r for r in await rows(app, "conversations", order_by="person_id")}
    (mate_id,) = [p.id for p in await rows(app, "people", key="collaborator")]
    (officer_id,) = [p.id for p in await rows(app, "people", key="officer")]
    assert drafts[mate_id].state["flow"] == "report"
    assert CHILD_NAME in str(drafts[mate_id].state)

    # A day is not yet more than a day.
    await hours_pass(app, clock, 24)
    (kept,) = await rows(app, "conversations", order_by="person_id", person_id=mate_id)
    assert kept.state["flow"] == "report"
    await hours_pass(app, clock, 1)
    after = {r.person_id: r for r in await rows(app, "conversations", order_by="person_id")}
    assert after[mate_id].state == {"expired": True}
    assert after[officer_id].state == {}
    assert after[mate_id].version == drafts[mate_id].version + 1
    assert holding(await opened_texts(app, "conversations")) == []

    # The collaborator answers the question they were at: they are told, once, that the
    # draft is gone, and shown the way to start again; nothing fails.
    await mate.text("Ở gần chợ.")
    answer = await mate.last()
    assert answer["ids"] == ["flow.expired", "menu.prompt"]
    assert "menu:report" in [c["id"] for c in answer["choices"]]
    await mate.text("Ở gần chợ.")
    assert "flow.expired" not in (await mate.last())["ids"]
    # A new report goes as any: from the first question.
    await mate.tap("menu:report")
    assert (await mate.last())["ids"][0] == "report.danger.prompt"
    # Someone who was not in a flow hears nothing of drafts.
    await officer.text("Xin chào")
    assert "flow.expired" not in (await officer.last())["ids"]


async def test_two_processes_purge_the_same_cases_at_once(
        db_url: str, clock: FakeClock) -> None:
    """Small batches, two workers at once: each row is blanked once, none is missed."""
    async with simulator(db_url, clock, demo(closed_case_text_days=1000)) as sim:
        app = sim.app
        await report_assess_and_close(sim)
        for _ in range(4):
            await walk(sim["citizen"], PRIVATE_REPORT)
        ids = [int(c.id) for c in await rows(app, "cases")]
        # The others closed straight in the database.
        for case_id in ids[1:]:
            await change(app, "cases", {"status": "closed", "closed_at": clock.now()},
                         id=case_id)
        commune_id = (await rows(app, "cases"))[0].commune_id
        later = clock.now() + timedelta(days=2)
        workers = [PruningWorker(app.database, Retention(), batch=2,
                                 closed_case_text={commune_id: DAY}) for _ in range(2)]

        async def purge(worker: PruningWorker) -> int:
            done = 0
            while (n := await worker.run_due(later)):
                done += n
            return done

        await asyncio.gather(*(purge(w) for w in workers))
        assert {(c.description, c.child_name, c.reporter_phone) for c in
                await rows(app, "cases")} == {(None, None, None)}
        assert {a.file_ref for a in await rows(app, "attachments")} == {""}
        assert not [r.id for r in await rows(app, "outbox")
                    if r.status != "pending" and "reply" in r.payload]
        for table in ("cases", "attachments", "close_requests", "outbox", "conversations"):
            assert holding(await opened_texts(app, table)) == [], table


async def test_a_zalo_event_is_emptied_once_handled(db_url: str, clock: FakeClock) -> None:
    h = await open_hook(db_url, clock, "3608465249409039", "3886132808788086", "oa-secret")
    try:
        user = "2468458835291979"
        assert await h.users.send_text(user, "/start") == 200
        assert await h.users.send_text(user, DESCRIPTION) == 200
        # Stored with what was typed, until the worker has handled it.
        assert DESCRIPTION in holding(await opened_texts(h.app, "inbound_queue"))
        await h.handle()
        handled = await rows(h.app, "inbound_queue")
        assert len(handled) == 2 and all(e.processed_at is not None for e in handled)
        assert [e.payload for e in handled] == [{}, {}]
        assert holding(await opened_texts(h.app, "inbound_queue")) == []
        # The key stays, so Zalo's retry of a handled event is still dropped.
        assert all(e.key for e in handled)
    finally:
        await h.close()


# ---- the commune file's [retention] ---------------------------------------------------------


def test_closed_case_text_days_defaults_to_two_years_and_is_checked() -> None:
    assert Retention().closed_case_text == timedelta(days=730)
    assert Retention().simulator == timedelta(days=7)
    assert demo().retention.closed_case_text_days == 730
    assert demo(closed_case_text_days=365).retention == Retention(closed_case_text_days=365)
    with pytest.raises(ConfigError) as raised:
        demo(closed_case_text_days=0)
    assert "'closed_case_text_days' must be a whole number of days, at least 1" in str(
        raised.value)


def test_each_commune_of_a_province_keeps_closed_cases_its_own_time(tmp_path: Path) -> None:
    path = write_province(tmp_path, communes=3, calendar=False)
    path.write_text(path.read_text(encoding="utf-8")
                    + "\n[retention]\nclosed_case_text_days = 1000\n", encoding="utf-8")
    first = sorted((tmp_path / "communes").glob("*.toml"))[0]
    first.write_text(first.read_text(encoding="utf-8")
                     + "\n[retention]\nclosed_case_text_days = 365\n", encoding="utf-8")
    province = load_province(path)
    assert [c.retention.closed_case_text_days for c in province.communes] == [365, 1000, 1000]
    # What the whole process does stays the province file's.
    first.write_text(first.read_text(encoding="utf-8").replace(
        "closed_case_text_days = 365", "closed_case_text_days = 365\ndelivered_days = 9"),
        encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_province(path)
    assert "[retention] is the same for every commune of a province" in str(raised.value)
    assert "only closed_case_text_days may stay in a commune file" in str(raised.value)
