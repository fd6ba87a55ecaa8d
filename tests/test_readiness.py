"""/readyz (issue 15, item 8): 200 only while the database answers, every worker looks
within its expected interval and no message has waited too long to be sent; 503 naming
what fails otherwise. Over HTTP, on a real app, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from bot.app import App, Setup, build_app
from bot.clock import FakeClock
from bot.config import DEMO_CONFIG, ConfigError, Settings, load_commune, parse_commune
from bot.domain.delivery import Delivery, DeliveryError
from bot.domain.messages import Input
from bot.handlers.simulator import SimulatorPlugin
from bot.services.conversation import InboundEvent
from bot.workers.pruning import PruningWorker
from bot.workers.scheduler import Scheduler, late_after
from tests.support import START
from tests.support.channels import SenderPlugin
from tests.support.database import database_gone, rows
from tests.support.metrics import scrape
from tests.support.simulator import Simulator, served, walk_report
from tests.support.stories import EMERGENCY_REPORT, REPORT_STEPS
from tests.support.telegram import IDS, demo_commune_with
from tests.support.waiting import eventually
from tests.support.workers import worker_of


async def readyz(sim: Simulator) -> tuple[int, dict[str, Any]]:
    async with sim.http.get(f"{sim.base}/readyz") as r:
        return r.status, dict(await r.json())


async def test_a_process_that_works_is_ready(sim: Simulator) -> None:
    await walk_report(sim, "citizen", REPORT_STEPS)
    status, body = await readyz(sim)
    assert status == 200, body
    assert body["ready"] is True and body["failing"] == []
    assert body["checks"]["database"] == "ok"
    assert set(body["checks"]["workers"]) >= {"delivery", "timers", "pruning", "heartbeat"}
    assert body["checks"]["outbox"]["limit_seconds"] == 300


async def test_a_database_gone_makes_it_not_ready(sim: Simulator) -> None:
    assert (await readyz(sim))[0] == 200
    async with database_gone(sim.app):
        status, body = await asyncio.wait_for(readyz(sim), timeout=10)
        assert status == 503, body
        assert body["failing"] == ["database"]
        assert body["checks"]["outbox"] == "not checked: no database"


@pytest.fixture
async def running(db_url: str, clock: FakeClock) -> AsyncIterator[tuple[App, FakeClock]]:
    """The demo commune's process with its workers running, liveness on a wall clock the
    test moves."""
    wall = FakeClock(START)
    app = await build_app(Setup(db_url, load_commune(DEMO_CONFIG), clock, wall=wall),
                          [SimulatorPlugin()])
    await app.start()
    yield app, wall
    await app.close()


async def every_worker_looks(app: App, wall: FakeClock, clock: FakeClock,
                             but: str | None = None) -> None:
    """Hours pass on the wall clock; a move of the bot's clock wakes every worker (they
    would wake on their own within their idle time), and each but `but` looks again."""
    wall.advance(timedelta(hours=2))
    clock.advance(timedelta(seconds=1))
    await eventually(lambda: all(app.scheduler.looked[w.name] >= wall.now()
                                 for w in app.scheduler.workers if w.name != but))


async def test_a_worker_that_stopped_makes_it_not_ready(
        running: tuple[App, FakeClock], clock: FakeClock) -> None:
    app, wall = running
    async with served(app) as sim:
        # Two hours: longer than any worker's expected interval. Workers with nothing due
        # (pruning's next sweep is an hour away) still look, so none is late.
        pruning = worker_of(app, PruningWorker)
        assert late_after(pruning) == 1800
        await every_worker_looks(app, wall, clock)
        status, body = await readyz(sim)
        assert status == 200, body

        # The pruning worker's loop dies; two hours on, the others still look.
        loop = next(t for t in asyncio.all_tasks() if t.get_name() == "worker-pruning")
        loop.cancel()
        await every_worker_looks(app, wall, clock, but="pruning")
        status, body = await readyz(sim)
        assert status == 503, body
        assert body["failing"] == ["worker:pruning"]
        assert body["checks"]["workers"]["pruning"] == "late: no look for 7200 s"
        assert body["checks"]["workers"]["delivery"] == "ok"


class Down:
    """A Telegram edge that is down: every send fails as a 502 would."""

    name = "telegram"

    async def deliver(self, delivery: Delivery) -> str | None:
        raise DeliveryError("502 Bad Gateway")


async def test_an_alert_waiting_long_on_a_channel_that_is_down_makes_it_not_ready(
        db_url: str, clock: FakeClock) -> None:
    """Everyone is on Telegram alone, and it is down: the case's alerts wait (nowhere else
    to go). Five minutes is the limit; at ten the process is not ready, and says why."""
    app = await build_app(Setup(db_url, parse_commune(demo_commune_with(IDS)), clock),
                          [SenderPlugin(Down())])
    try:
        async with served(app) as sim:
            for n, (kind, value) in enumerate(EMERGENCY_REPORT):
                inp = (Input("text", text=value) if kind == "text"
                       else Input("choice", choice=value))
                await app.conversations.handle(
                    InboundEvent("telegram", "5001", inp, key=f"5001:{n}"))
            await app.settle()
            assert (await readyz(sim))[0] == 200
            for _ in range(20):
                clock.advance(timedelta(seconds=30))
                await app.settle()
            waiting = await rows(app, "outbox", channel="telegram", status="pending")
            alerts = [r for r in waiting if r.kind == "alert"]
            assert len(alerts) == 2
            status, body = await readyz(sim)
            assert status == 503, body
            assert body["failing"] == ["outbox"]
            assert body["checks"]["outbox"]["oldest_waiting_seconds"] >= 600
            # The same queue on /metrics, by channel and kind.
            found = await scrape(sim)
            assert found[("safechild_outbox_depth", (("channel", "telegram"),
                                                      ("kind", "alert")))] == 2
            assert found[("safechild_outbox_oldest_due_seconds",
                          (("channel", "telegram"), ("kind", "alert")))] >= 600
            # Each failed try counted by its channel and the platform's code.
            tries = sum(r.attempts for r in await rows(app, "outbox", channel="telegram"))
            assert tries > 2
            assert found[("safechild_deliveries_failed_total",
                          (("channel", "telegram"), ("code", "502")))] == tries
    finally:
        await app.close()


def test_the_outbox_limit_is_a_setting() -> None:
    assert Settings.from_env({}).ready_outbox_within == timedelta(minutes=5)
    assert Settings.from_env({"SAFECHILD_READY_OUTBOX_SECONDS": "90"}
                             ).ready_outbox_within == timedelta(seconds=90)
    with pytest.raises(ConfigError, match=r"^SAFECHILD_READY_OUTBOX_SECONDS: a number"):
        Settings.from_env({"SAFECHILD_READY_OUTBOX_SECONDS": "soon"})


class Idle:
    """A worker with nothing to do for a day: it still looks every idle time."""

    name = "idle"
    idle = 30.0

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    async def run_due(self, now: Any) -> int:
        return 0

    async def next_due(self, now: Any) -> Any:
        return self.clock.now() + timedelta(days=1)


class Failing(Idle):
    """A worker whose every look fails (its database refusing it, say)."""

    name = "failing"

    async def run_due(self, now: Any) -> int:
        raise RuntimeError("refused")


async def test_a_worker_failing_at_every_look_is_late_and_an_idle_one_is_not(
        clock: FakeClock) -> None:
    wall = FakeClock(START)
    scheduler = Scheduler(clock, [Idle(clock), Failing(clock)], wall=wall)
    scheduler.start()
    try:
        assert scheduler.late() == {}
        wall.advance(timedelta(minutes=2))
        clock.advance(timedelta(seconds=1))  # wakes both, as their idle time would
        await eventually(lambda: scheduler.looked["idle"] == wall.now())
        assert scheduler.late() == {"failing": 120.0}
    finally:
        await scheduler.stop()
