"""Escalation with a moved clock: nobody acknowledges, the case climbs the chain."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from bot.app import App
from bot.domain.messages import Input
from bot.services.conversation import InboundEvent
from storage import cases, deadlines, people
from tests.support.database import change, count, messages
from tests.support.simulator import Simulator, choice_ids, walk_report
from tests.support.stories import EMERGENCY_REPORT, report_in
from tests.support.waiting import eventually


async def report(sim: Simulator, steps: list[tuple[str, str]]) -> None:
    phone = sim["citizen"]
    for kind, value in steps:
        await (phone.text(value) if kind == "text" else phone.tap(value))


async def sent(sim: Simulator) -> list[tuple[str, str]]:
    """(person key, outbox kind) of every case message queued so far."""
    return [(m.person_key or "?", m.kind) for m in await messages(sim.app)
            if m.case_id is not None]


async def test_unacknowledged_emergency_climbs_one_level_per_period(sim: Simulator) -> None:
    await report(sim, EMERGENCY_REPORT)
    first = await sent(sim)
    assert sorted(k for k, kind in first if kind == "alert") == ["officer", "police"]
    # The village collaborator is told a case exists, without details.
    assert ("collaborator", "notice") in first
    # What the reporter told after the alert reached the team in one message each.
    assert sorted(k for k, kind in first if kind == "additions") == ["officer", "police"]

    await sim.advance(7)
    assert [x for x in await sent(sim) if x[1] not in ("alert", "notice", "additions")] == []
    await sim.advance(1)  # 8 minutes: the 50 % reminder
    reminders = [k for k, kind in await sent(sim) if kind == "reminder"]
    assert sorted(reminders) == ["officer", "police"]

    await sim.advance(6.9)  # 14.9 minutes: the 90 % reminder, not yet escalated
    assert not [x for x in await sent(sim) if x[1] == "escalation"]
    assert len([x for x in await sent(sim) if x[1] == "reminder"]) == 4

    await sim.advance(0.1)  # 15 minutes: level 2
    level2 = sorted(k for k, kind in await sent(sim) if kind == "escalation")
    assert level2 == ["officer", "officer2", "police_chief"]
    async with sim.app.database.read() as s:
        case = await cases.case_by_code(s, "VT-2026-0001")
        assert case is not None and case.escalation_level == 2

    # Moving the clock a little again sends nothing new: no escalation twice.
    await sim.advance(5)
    assert sorted(k for k, kind in await sent(sim) if kind == "escalation") == level2

    await sim.advance(10)  # 30 minutes: level 3, the vice-chairman
    escalations = [k for k, kind in await sent(sim) if kind == "escalation"]
    assert sorted(escalations) == ["leader", "officer", "officer2", "police_chief"]
    async with sim.app.database.read() as s:
        case = await cases.case_by_code(s, "VT-2026-0001")
        assert case is not None and case.escalation_level == 3
        events = [e.action for e in await cases.case_events(s, case.id)]
    assert events.count("escalated") == 2

    # Every (person, kind) pair of the escalations appears exactly once.
    counts = Counter(x for x in await sent(sim) if x[1] == "escalation")
    assert set(counts.values()) == {1}

    # The leader, now on the case, acknowledges: the climbing stops.
    await sim["leader"].tap("case:ack:1")
    await sim.advance(60)
    after = [k for k, kind in await sent(sim) if kind == "escalation"]
    assert after == escalations


async def test_acknowledged_in_time_never_escalates(sim: Simulator) -> None:
    await report(sim, EMERGENCY_REPORT)
    await sim.advance(5)
    await sim["officer"].tap("case:ack:1")
    await sim.advance(20)
    kinds = [kind for _, kind in await sent(sim)]
    assert "escalation" not in kinds
    assert "reminder" not in kinds


async def test_standard_case_deadline_counts_working_hours(sim: Simulator) -> None:
    steps = report_in("dong", case_type="other")
    # Friday 16:00 local: 2 working hours run to Monday 08:30 (Friday closes at 17:00).
    from datetime import datetime

    from bot.domain.local_time import LOCAL_TZ

    sim.app.clock.set(datetime(2026, 11, 27, 16, 0, tzinfo=LOCAL_TZ))
    await report(sim, steps)
    async with sim.app.database.read() as s:
        case = await cases.case_by_code(s, "VT-2026-0001")
        assert case is not None and case.urgency == "STANDARD"
        ack = await deadlines.deadline(s, case.id, "acknowledge")
    assert ack is not None
    assert ack.due_at == datetime(2026, 11, 30, 8, 30, tzinfo=LOCAL_TZ)


async def test_background_sweeper_wakes_when_time_moves(app: App) -> None:
    """No explicit sweep: the running workers notice the clock and fire the due timer."""
    await app.start()
    for n, (kind, value) in enumerate(EMERGENCY_REPORT):
        inp = Input("text", text=value) if kind == "text" else Input("choice", choice=value)
        await app.conversations.handle(InboundEvent("web", "citizen", inp, key=f"bg{n}"))
    app.clock.advance(timedelta(minutes=16))  # type: ignore[attr-defined]
    # Real time for the workers to notice; generous, as a loaded machine needs.
    async def all_sent() -> bool:
        return await count(app, "outbox", kind="escalation", status="sent") == 3

    await eventually(all_sent, seconds=20)


async def give_officer_telegram(sim: Simulator, *, prefers: str | None,
                                web_unreachable: bool = False) -> None:
    """The officer also has a Telegram account, which this deployment does not run (the
    app delivers on the simulator only), and has just written there."""
    app = sim.app
    async with app.database.transaction() as s:
        officer = await people.person_by_key(s, app.directory.commune_id, "officer")
        assert officer is not None
        await people.bind_identity(s, officer.id, "telegram", "5005")
        if web_unreachable:
            await people.mark_unreachable(s, "web", "officer", app.clock.now())
    await change(app, "people", {"preferred_channel": prefers}, id=officer.id)
    await change(app, "identities", {"last_seen_at": None}, person_id=officer.id)
    await change(app, "identities", {"last_seen_at": app.clock.now()},
                 person_id=officer.id, channel="telegram")


async def channels_of(sim: Simulator, key: str, kind: str) -> list[str]:
    return [m.channel for m in await messages(sim.app)
            if m.person_key == key and m.kind == kind]


async def test_alerts_go_only_to_channels_this_deployment_runs(sim: Simulator) -> None:
    # Preferring Telegram, and last seen there: neither counts while Telegram is not run.
    await give_officer_telegram(sim, prefers="telegram")
    await report(sim, EMERGENCY_REPORT)
    assert await channels_of(sim, "officer", "alert") == ["web"]
    assert "VT-2026-0001" in (await sim["officer"].last())["text"]
    # Nobody had to climb the chain.
    assert [k for k, kind in await sent(sim) if kind == "escalation"] == []


async def test_a_team_member_with_no_channel_run_here_sends_the_case_up_at_once(
        sim: Simulator) -> None:
    await give_officer_telegram(sim, prefers=None, web_unreachable=True)
    # The background workers run, so nothing but the new case wakes the timer sweeper.
    await sim.app.start()
    await report(sim, EMERGENCY_REPORT)
    assert await channels_of(sim, "officer", "alert") == []
    # No minute has passed, yet level 2 has the case (and no row waits on Telegram).
    async def escalated() -> bool:
        return any(kind == "escalation" for _, kind in await sent(sim))

    await eventually(escalated)
    assert sorted(k for k, kind in await sent(sim) if kind == "escalation") == [
        "officer2", "police_chief"]
    async with sim.app.database.read() as s:
        case = await cases.case_by_code(s, "VT-2026-0001")
        assert case is not None and case.escalation_level == 2
    assert [m for m in await messages(sim.app) if m.channel != "web"] == []


async def test_an_escalation_names_who_was_told_and_why(sim: Simulator) -> None:
    """Issue 13, item 8: people, not levels ("cấp 2"): nobody took it after 15 minutes, and
    these are the people told now."""
    await walk_report(sim, "citizen", [("text", "/start"), *EMERGENCY_REPORT])
    await sim.advance(16)
    chief = sim["police_chief"]
    climbed = next(m for m in await chief.inbox(all_=True) if m["kind"] == "escalation")
    assert climbed["ids"][0] == "alert.nobody_took"
    first_line = climbed["text"].splitlines()[0]
    assert "15 phút" in first_line and "cấp" not in climbed["text"].split("\n\n")[0]
    told = climbed["text"].split("\n\n")[0]
    assert "Đã báo thêm" in told and "Anh Dũng (Trưởng Công an xã)" in told


async def test_whoever_takes_a_late_case_is_reminded_before_it_climbs(sim: Simulator) -> None:
    """Issue 13, item 8: an EMERGENCY nobody took for 11 hours (its first assessment is due
    at 12): the reminders of that deadline went to the team before anyone took it, so the
    officer who takes it now is reminded at half and nine tenths of the hour left."""
    await walk_report(sim, "citizen", [("text", "/start"), *EMERGENCY_REPORT])
    for _ in range(11):
        await sim.advance(60)
    officer = sim["officer"]
    await officer.tap("case:ack:1")
    await officer.inbox()
    await sim.advance(58)  # not yet the deadline itself
    reminded = [m for m in await officer.inbox() if m["kind"] == "reminder"]
    assert len(reminded) == 2, [m["ids"] for m in reminded]
    assert all(m["ids"] == ["reminder.deadline"] for m in reminded)
    assert "case:assess:1" in choice_ids(reminded[0])
