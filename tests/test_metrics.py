"""/metrics (issue 15, item 8): Prometheus's text format, a registry per app, counters that
move with the story by the right amounts, labels that name no one, and a bearer token
when one is set. Through the simulator's HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.app import App, Setup, build_app
from bot.clock import FakeClock
from bot.config import DEMO_CONFIG, ConfigError, Settings, load_commune
from bot.handlers.simulator import SimulatorPlugin
from tests.support.database import count, rows
from tests.support.metrics import Sample, moved, parse, scrape
from tests.support.simulator import Simulator, served, walk_report
from tests.support.stories import REPORT_STEPS

TOKEN = "4f1c0e9a7b2d4c6e8a0b1c2d"
# Every label a sample may carry: kinds of things, never a person, a chat or a text.
LABELS = {"channel", "kind", "flow", "urgency", "step", "level", "table", "code", "le"}


def labels_of(found: dict[Sample, float]) -> set[str]:
    return {name for _, labels in found for name, _ in labels}


async def test_the_counters_move_with_the_story(sim: Simulator) -> None:
    app = sim.app
    before = await scrape(sim)
    code = await walk_report(sim, "citizen", REPORT_STEPS)
    after = await scrape(sim)
    case = (await rows(app, "cases", code=code))[0]

    # Each step the citizen sent: one update on the web channel, one flow step, one POST
    # answered (timed by channel).
    steps = len(REPORT_STEPS)
    assert moved(before, after, "safechild_updates_received_total", channel="web") == steps
    assert sum(after[k] - before.get(k, 0) for k in after
               if k[0] == "safechild_flow_steps_total") == steps
    assert moved(before, after, "safechild_flow_steps_total", flow="report") >= steps - 2
    assert moved(before, after, "safechild_webhook_answer_seconds_count",
                 channel="web") == steps
    assert moved(before, after, "safechild_reports_opened_total",
                 urgency=case.urgency) == 1
    first = await count(app, "outbox", kind="alert", status="sent")
    assert first == 2  # the officer and the police
    assert moved(before, after, "safechild_alerts_sent_total", channel="web",
                 kind="alert") == first
    assert moved(before, after, "safechild_escalations_total", level="2") == 0

    # Nobody takes it: past its acknowledge deadline it climbs to level 2, its escalated
    # alerts go out, and every timer that fired counts its lateness.
    await sim.advance(61)
    later = await scrape(sim)
    climbs = await rows(app, "case_events", case_id=case.id, action="escalated")
    assert [e.detail["level"] for e in climbs] == [2]
    assert moved(after, later, "safechild_escalations_total", level="2") == 1
    assert moved(after, later, "safechild_deadlines_overdue_total", step="acknowledge") == 1
    assert moved(after, later, "safechild_alerts_sent_total", channel="web",
                 kind="escalation") == await count(app, "outbox", kind="escalation",
                                                   status="sent") > 0
    fired = [t for t in await rows(app, "timers") if t.done_at is not None]
    assert len(fired) >= 3  # the two reminders and the climb
    assert moved(before, later, "safechild_timer_lateness_seconds_count") == len(fired)
    assert labels_of(later) <= LABELS

    # A month on, the pruning worker alone: what it deleted is what it counted.
    tables = {"outbox": "outbox", "simulator": "sim_messages", "timers": "timers"}
    counts = {name: await count(app, table) for name, table in tables.items()}
    app.clock.advance(timedelta(days=31))  # type: ignore[attr-defined]
    await app.settle(["pruning"])
    pruned = await scrape(sim)
    for name, table in tables.items():
        gone = counts[name] - await count(app, table)
        assert moved(later, pruned, "safechild_purged_rows_total", table=name) == gone
    assert moved(later, pruned, "safechild_purged_rows_total", table="outbox") > 0


async def test_two_apps_in_one_python_count_apart(sim: Simulator, db_url: str,
                                                  clock: FakeClock) -> None:
    await sim["citizen"].text("/start")
    other = await build_app(Setup(db_url, load_commune(DEMO_CONFIG), clock),
                            [SimulatorPlugin()])
    try:
        found = parse(other.metrics.render().decode())
        assert found.get(("safechild_updates_received_total", (("channel", "web"),)),
                         0) == 0
        assert (await scrape(sim))[("safechild_updates_received_total",
                                    (("channel", "web"),))] == 1
    finally:
        await other.close()


@pytest.fixture
async def guarded(db_url: str, clock: FakeClock) -> AsyncIterator[Simulator]:
    app: App = await build_app(Setup(db_url, load_commune(DEMO_CONFIG), clock,
                                     metrics_token=TOKEN), [SimulatorPlugin()])
    try:
        async with served(app) as sim:
            yield sim
    finally:
        await app.close()


async def test_a_token_keeps_metrics_from_whoever_lacks_it(guarded: Simulator) -> None:
    sim = guarded
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        async with sim.http.get(f"{sim.base}/metrics", headers=headers) as r:
            assert r.status == 401
            assert "safechild_" not in await r.text()
    found = await scrape(sim, TOKEN)
    assert found[("safechild_webhook_answer_seconds_count", (("channel", "web"),))] == 0
    # Readiness stays open: a load balancer's probe carries no token.
    async with sim.http.get(f"{sim.base}/readyz") as r:
        assert r.status == 200


def test_the_token_is_a_setting() -> None:
    assert Settings.from_env({}).metrics_token is None
    assert Settings.from_env({"SAFECHILD_METRICS_TOKEN": TOKEN}).metrics_token == TOKEN
    with pytest.raises(ConfigError, match=r"^SAFECHILD_METRICS_TOKEN: at least 16"):
        Settings.from_env({"SAFECHILD_METRICS_TOKEN": "short"})
