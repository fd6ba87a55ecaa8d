"""The whole story end to end through the simulator's HTTP interface, on a real database."""

from __future__ import annotations

from sqlalchemy import select

from storage import repo
from storage.models import Case, Outbox
from tests.conftest import Simulator, choice_ids

REPORT_STEPS: list[tuple[str, str]] = [
    ("text", "/start"), ("choice", "menu:report"), ("choice", "danger:no"),
    ("choice", "type:sexual_abuse"), ("choice", "types:done"), ("choice", "village:tay"),
    ("choice", "age:11-15"), ("choice", "sex:girl"), ("choice", "skip"), ("choice", "count:1"),
    ("text", "Một người đàn ông trong xóm nhiều lần dụ bé vào nhà."),
    ("choice", "photos:done"), ("choice", "contact:anonymous"), ("choice", "confirm"),
]


async def walk_report(sim: Simulator, who: str, steps: list[tuple[str, str]]) -> str:
    phone = sim[who]
    for kind, value in steps:
        if kind == "text":
            await phone.text(value)
        else:
            await phone.tap(value)
    msgs = await phone.inbox()
    received = [m for m in msgs if "VT-2026-" in m["text"]]
    assert received, "the reporter got no case code"
    code = next(w for w in received[-1]["text"].replace("*", " ").split() if w.startswith("VT-"))
    return code.strip(".,:")


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
    assert code in (await officer.last())["text"]

    async with sim.engine.sessions() as s:
        case = await repo.case_by_code(s, code)
        assert case is not None
        assert (case.status, case.risk, case.confirmed_form, case.setting, case.outcome) == (
            "closed", "high", "sexual_abuse", "community", "referred")
        assert case.reporter_anonymous and case.reporter_phone is None
        actions = [e.action for e in await repo.case_events(s, case.id)]
    for expected in ("opened", "alerted", "acknowledged", "assessed", "closed"):
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
    async with sim.engine.sessions() as s:
        case = await repo.case_by_code(s, code)
        assert case is not None
        events = [e.action for e in await repo.case_events(s, case.id)]
    assert "status_viewed" not in events
    assert code in answer["text"]


async def test_alert_rows_are_written_with_the_case(sim: Simulator) -> None:
    await walk_report(sim, "citizen", REPORT_STEPS)
    async with sim.engine.sessions() as s:
        case = (await s.scalars(select(Case))).one()
        rows = (await s.scalars(select(Outbox).where(Outbox.case_id == case.id,
                                                     Outbox.kind == "alert"))).all()
    assert sorted(r.address for r in rows) == ["officer", "police"]
    assert all(r.status == "sent" for r in rows)
