"""Deadlines that fall due together (issue 14, item 8): a restart may find a thousand due at
once, and the timer worker climbs them together, a transaction per batch, with one read and
one write of each kind. Each case still climbs once, to its own commune's next level; a
timer that cannot fire holds none of the others back. Through the simulator, on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.config import load_province
from bot.domain.cases import Case
from bot.domain.province import ProvinceConfig
from bot.workers.timers import TimerWorker
from storage import cases, outbox, people
from tests.support.database import count, read, refusing
from tests.support.province import write_province
from tests.support.simulator import Simulator, WalkIn, simulator

# The test province's second level (tests/support/province.py): every officer, and the
# police chief.
LEVEL_2 = ["officer", "officer2", "officer3", "police_chief"]


@pytest.fixture
def province(tmp_path: Path) -> ProvinceConfig:
    return load_province(write_province(tmp_path, communes=2))


@pytest.fixture
async def sim(db_url: str, clock: FakeClock,
              province: ProvinceConfig) -> AsyncIterator[Simulator]:
    async with simulator(db_url, clock, province) as found:
        yield found


def timers_of(sim: Simulator) -> TimerWorker:
    worker = sim.app.scheduler.worker("timers")
    assert isinstance(worker, TimerWorker)
    return worker


async def open_cases(sim: Simulator, province: ProvinceConfig, each: int) -> list[Case]:
    """`each` citizens of every commune report a child in danger now."""
    for n, commune in enumerate(province.communes):
        for k in range(each):
            citizen = WalkIn(sim, f"walk-in-{n}-{k}")
            await citizen.say("text", f"/start c-{commune.official_code}")
            for value in ("menu:report", "danger:yes", "type:injury", "village:v1"):
                await citizen.say("choice", value)
    codes = [f"{c.code_prefix}-2026-{k + 1:04d}" for c in province.communes
             for k in range(each)]
    found = [await read(sim.app, cases.case_by_code, code) for code in codes]
    assert all(c is not None for c in found), codes
    return [c for c in found if c is not None]


async def escalated_to(sim: Simulator, case: Case) -> list[tuple[str, int]]:
    """(key, commune) of everyone the case's escalations were queued for, one per row."""
    async with sim.app.database.read() as tx:
        rows = [m for m in await outbox.of_case(tx, case.id) if m.kind == "escalation"]
        found = await people.people_by_id(tx, [m.person_id for m in rows])
    return sorted((found[m.person_id].key or "", found[m.person_id].commune_id)
                  for m in rows)


async def climbed_once(sim: Simulator, case: Case) -> None:
    now = await read(sim.app, cases.case_by_id, case.id)
    assert now is not None and now.escalation_level == 2, case.code
    assert await escalated_to(sim, case) == [(k, case.commune_id) for k in LEVEL_2]
    assert await count(sim.app, "case_events", case_id=case.id, action="escalated") == 1


@pytest.mark.parametrize("together", [1, 50])
async def test_deadlines_due_together_each_climb_once_in_their_own_commune(
        sim: Simulator, province: ProvinceConfig, together: int) -> None:
    """Fired one per transaction or all in one, the same happens: each case climbs once,
    its own commune's second level is told once each, and its next climb is armed once."""
    timers_of(sim).together = together
    opened = await open_cases(sim, province, 3)
    await sim.advance(16)  # every acknowledge deadline (15 minutes) passed at once
    for case in opened:
        await climbed_once(sim, case)
    assert await count(sim.app, "timers", kind="escalate1", seq=1) == len(opened)
    # Each first alert now says nobody took it in time, once per copy.
    for case in opened:
        async with sim.app.database.read() as tx:
            sent = await outbox.of_case(tx, case.id)
        first = [m.id for m in sent if m.kind == "alert"]
        edits = [m.payload["meta"]["edit_of"] for m in sent if m.kind == "edit"]
        assert first and sorted(edits) == sorted(first)


async def test_a_timer_that_cannot_fire_holds_none_of_the_others_back(
        sim: Simulator, province: ProvinceConfig) -> None:
    """The database refuses one case's escalation (a fault outside us): the others climb
    in the same pass, and the refused one climbs once the fault is gone and its claim
    has lapsed, still once."""
    opened = await open_cases(sim, province, 2)
    stuck, others = opened[1], [c for c in opened if c.id != opened[1].id]
    async with refusing(sim.app, "case_events", "case_id", stuck.id):
        await sim.advance(16)
        for case in others:
            await climbed_once(sim, case)
        held = await read(sim.app, cases.case_by_id, stuck.id)
        assert held is not None and held.escalation_level == 1
        assert await escalated_to(sim, stuck) == []
    await sim.advance(3)  # its claim (two minutes) lapses: it is taken again
    for case in opened:
        await climbed_once(sim, case)
