"""Officer actions beyond acknowledging: ask the reporter, hand over, progress, language."""

from __future__ import annotations

from datetime import timedelta

from storage import cases, deadlines, people
from tests.support.simulator import Simulator, choice_ids, walk_report
from tests.support.stories import REPORT_STEPS


async def test_question_is_relayed_and_anonymous_reporter_stays_anonymous(
        sim: Simulator) -> None:
    code = await walk_report(sim, "citizen", REPORT_STEPS)
    officer, citizen = sim["officer"], sim["citizen"]
    await officer.tap("case:ask:1")
    assert (await officer.last())["ids"] == ["ask.prompt"]
    await officer.text("Bé học lớp mấy, trường nào?")
    sent = await officer.last()
    assert sent["ids"] == ["case.question_sent"]
    assert choice_ids(sent) == ["case:ack:1", "case:ask:1"], "no dead end: take it, ask more"
    question = await citizen.last()
    assert "Bé học lớp mấy" in question["text"] and code in question["text"]
    assert choice_ids(question) == ["case:reply:1"]
    await citizen.tap("case:reply:1")
    await citizen.text("Lớp 7, trường THCS Vĩnh Thủy")
    assert (await citizen.last())["ids"] == ["reporter.answer_sent"]
    # The answer goes back to the officer who asked, with a way on.
    relayed = await officer.last()
    assert "Lớp 7" in relayed["text"]
    assert "Chị Lan" not in relayed["text"]
    assert choice_ids(relayed) == ["case:ack:1", "case:ask:1"]
    # Someone else cannot answer in the reporter's place.
    await sim["collaborator"].tap("case:reply:1")
    assert (await sim["collaborator"].last())["ids"] == ["case.not_allowed"]


async def test_the_answer_goes_to_whoever_asked_and_to_the_holder(sim: Simulator) -> None:
    await walk_report(sim, "citizen", REPORT_STEPS)
    officer, police, citizen = sim["officer"], sim["police"], sim["citizen"]
    await officer.tap("case:ack:1")
    await officer.inbox()
    await police.inbox()
    # The police officer asks; the officer holds the case.
    await police.tap("case:ask:1")
    await police.text("Cháu có bị thương không?")
    await citizen.tap("case:reply:1")
    await citizen.text("Cháu bị bầm tay.")
    for who in (police, officer):
        relayed = [m for m in await who.inbox() if m["ids"] == ["case.reporter_answered"]]
        assert len(relayed) == 1, who.key
        assert "Cháu bị bầm tay" in relayed[0]["text"]
        assert "case:ask:1" in choice_ids(relayed[0])
    # Someone on the team who neither asked nor holds it is not told.
    assert not [m for m in await sim["police_chief"].inbox(all_=True)
                if m["ids"] == ["case.reporter_answered"]]
    # A second question, by the officer this time: only the officer hears its answer.
    await officer.tap("case:ask:1")
    await officer.text("Bố mẹ cháu có nhà không?")
    await citizen.tap("case:reply:1")
    await citizen.text("Có mẹ ở nhà.")
    assert [m["ids"] for m in await officer.inbox()][-1] == ["case.reporter_answered"]
    assert not [m for m in await police.inbox() if m["ids"] == ["case.reporter_answered"]]


async def test_hand_over_moves_the_case_and_alerts_the_new_holder(sim: Simulator) -> None:
    await walk_report(sim, "citizen", REPORT_STEPS)
    officer = sim["officer"]
    await officer.tap("case:ack:1")
    await officer.tap("case:handover:1")
    prompt = await officer.last()
    async with sim.app.database.read() as s:
        colleague = await people.person_by_key(s, sim.app.directory.commune_id, "officer2")
        assert colleague is not None
    assert f"person:{colleague.id}" in choice_ids(prompt)
    await officer.tap(f"person:{colleague.id}")
    assert (await officer.last())["ids"] == ["case.handed_over"]
    handed = await sim["officer2"].last()
    assert handed["ids"][0] == "case.handed_to_you"
    assert "case:assess:1" in choice_ids(handed)
    async with sim.app.database.read() as s:
        case = await cases.case_by_id(s, 1)
        assert case is not None and case.assignee_id == colleague.id
    # The new holder can act on it now.
    await sim["officer2"].tap("case:progress:1")
    await sim["officer2"].tap("milestone:plan_drafted")
    assert (await sim["officer2"].last())["ids"] == ["case.progress_saved"]
    async with sim.app.database.read() as s:
        plan = await deadlines.deadline(s, 1, "plan_drafted")
        approval = await deadlines.deadline(s, 1, "plan_approved")
    assert plan is not None and plan.met_at is not None
    assert approval is not None and approval.met_at is None


async def test_english_speaker_gets_english(sim: Simulator) -> None:
    phone = sim["citizen"]
    await phone.text("/lang")
    await phone.tap("lang:en")
    changed = await phone.last()
    await phone.tap("menu:help")
    await phone.tap("help:hotlines")
    hotlines = next(m for m in await phone.inbox() if m["ids"] == ["help.hotlines"])
    assert "111" in hotlines["text"] and hotlines["phones"] == ["111", "113", "115"]
    await phone.text("/lang")
    await phone.tap("lang:vi")
    back = await phone.last()
    assert changed["text"] != back["text"]


async def test_a_draft_older_than_a_day_is_dropped(sim: Simulator) -> None:
    phone = sim["citizen"]
    await phone.tap("menu:report")
    await phone.tap("danger:no")
    sim.app.clock.advance(timedelta(hours=25))  # type: ignore[attr-defined]
    await phone.text("/start")
    msgs = await phone.inbox()
    assert msgs[-1]["ids"] == ["welcome", "menu.prompt"]


async def test_closing_is_deliberate(sim: Simulator) -> None:
    """Issue 13, item 9: no close button on a new alert; closing asks the outcome and a
    short note, shows what will be recorded and waits for a confirm; a saved assessment
    is shown back on one screen."""
    await walk_report(sim, "citizen", REPORT_STEPS)
    officer = sim["officer"]
    alert = next(m for m in await officer.inbox(all_=True) if m["kind"] == "alert")
    assert "case:ack:1" in choice_ids(alert) and "case:close:1" not in choice_ids(alert)
    await officer.tap("case:ack:1")
    await officer.tap("case:assess:1")
    # Not high: a high-risk case would wait for the chairman (tests/test_close_approval.py).
    await officer.tap("risk:medium")
    await officer.text("Đưa bé về nhà bà ngoại.")
    await officer.tap("form:sexual_abuse")
    await officer.tap("setting:family")
    saved = await officer.last()
    assert saved["ids"] == ["case.assessment_saved", "case.assessment_summary"]
    assert "Đưa bé về nhà bà ngoại." in saved["text"]
    await officer.tap("case:close:1")
    await officer.tap("outcome:supported")
    assert (await officer.last())["ids"] == ["close.note.prompt"]
    await officer.text("Bé đã đi học lại, mẹ đã được hỗ trợ.")
    review = await officer.last()
    assert review["ids"] == ["close.review"]
    assert "Bé đã đi học lại" in review["text"] and choice_ids(review)[0] == "close:confirm"
    async with sim.app.database.read() as s:
        case = await cases.case_by_id(s, 1)
        assert case is not None and case.status != "closed", "not before the confirm"
    await officer.tap("close:confirm")
    async with sim.app.database.read() as s:
        case = await cases.case_by_id(s, 1)
        assert case is not None and case.status == "closed"
        assert (case.outcome, case.closing_note) == ("supported",
                                                     "Bé đã đi học lại, mẹ đã được hỗ trợ.")
