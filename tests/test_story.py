"""The whole story end to end through the simulator's HTTP interface, on a real database."""

from __future__ import annotations

from storage import cases
from tests.support.database import rows
from tests.support.simulator import Simulator, choice_ids, walk_report
from tests.support.stories import REPORT_STEPS


async def test_anonymous_sexual_abuse_report_goes_to_officer_and_police(sim: Simulator) -> None:
    code = await walk_report(sim, "citizen", REPORT_STEPS)
    assert code == "VT-2026-0001"

    officer_alert = await sim["officer"].last()
    police_alert = await sim["police"].last()
    for alert in (officer_alert, police_alert):
        assert code in alert["text"]
        assert "dụ bé vào nhà" in alert["text"]
        # Anonymous: neither the reporter's name nor their phone reaches the team.
        assert "Chị Lan" not in alert["text"]
        assert "case:ack:1" in choice_ids(alert)
    # The collaborator of another village hears nothing; a STANDARD-free police case reaches
    # the police on duty but not the leader yet.
    assert await sim["collaborator"].inbox() == []
    assert await sim["leader"].inbox() == []

    # The police acknowledges first: the officer is told who took it.
    await sim["police"].tap("case:ack:1")
    took = await sim["police"].last()
    assert code in took["text"]
    assert "case:assess:1" in choice_ids(took)
    told = await sim["officer"].last()
    assert "Anh Tuấn" in told["text"] and code in told["text"]

    # A late press by the officer does not steal the case.
    await sim["officer"].tap("case:ack:1")
    late = await sim["officer"].last()
    assert "Anh Tuấn" in late["text"]

    # The officer records the initial assessment, then closes the case.
    officer = sim["officer"]
    await officer.tap("case:assess:1")
    assert "risk:high" in choice_ids(await officer.last())
    await officer.tap("risk:high")
    await officer.text("Đã đưa bé về ở với bà ngoại, báo công an.")
    await officer.tap("form:sexual_abuse")
    await officer.tap("setting:community")
    saved = await officer.last()
    assert code in saved["text"]
    await officer.tap("case:close:1")
    await officer.tap("outcome:referred")
    await officer.text("Đã chuyển cho công an huyện và trung tâm công tác xã hội.")
    review = await officer.last()
    assert review["ids"] == ["close.review"] and "trung tâm công tác xã hội" in review["text"]
    await officer.tap("close:confirm")
    asked = await officer.last()
    assert asked["ids"] == ["close.needs_chairman"] and code in asked["text"]
    # A high-risk case whose plan is not approved closes when the chairman agrees.
    await sim["chairman"].tap("case:close_ok:1:1")
    assert code in (await officer.last())["text"]

    async with sim.app.database.read() as s:
        case = await cases.case_by_code(s, code)
        assert case is not None
        assert (case.status, case.risk, case.confirmed_form, case.setting, case.outcome) == (
            "closed", "high", "sexual_abuse", "community", "referred")
        assert case.closing_note == "Đã chuyển cho công an huyện và trung tâm công tác xã hội."
        assert case.reporter_anonymous and case.reporter_phone is None
        actions = [e.action for e in await cases.case_events(s, case.id)]
    for expected in ("opened", "alerted", "acknowledged", "assessed", "close_requested",
                     "close_approved", "closed"):
        assert expected in actions

    # The citizen sees only the coarse status, by code.
    citizen = sim["citizen"]
    await citizen.inbox()
    await citizen.tap("menu:status")
    await citizen.text(code.lower())
    status = await citizen.last()
    assert code in status["text"]
    assert "status.closed" not in status["text"]  # rendered, not a raw id
    assert "dụ bé" not in status["text"] and "Anh Tuấn" not in status["text"]


async def test_status_of_someone_elses_case_is_not_found(sim: Simulator) -> None:
    code = await walk_report(sim, "citizen", REPORT_STEPS)
    other = sim["collaborator"]
    await other.tap("menu:status")
    await other.text(code)
    answer = await other.last()
    async with sim.app.database.read() as s:
        case = await cases.case_by_code(s, code)
        assert case is not None
        events = [e.action for e in await cases.case_events(s, case.id)]
    assert "status_viewed" not in events
    assert code in answer["text"]


async def test_alert_rows_are_written_with_the_case(sim: Simulator) -> None:
    await walk_report(sim, "citizen", REPORT_STEPS)
    (case,) = await rows(sim.app, "cases")
    alerts = await rows(sim.app, "outbox", case_id=case.id, kind="alert")
    assert sorted(r.address for r in alerts) == ["officer", "police"]
    assert all(r.status == "sent" for r in alerts)
