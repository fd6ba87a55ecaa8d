"""The emergency fast path (issue 13, item 1): a child in danger now is alerted as soon as
the bot knows what happened and where; the reporter is told at once to call 113; the rest
of the questions add to the case, and the team gets the additions in one message, never a
new alert per answer. Over the simulator's HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from bot import i18n
from storage import cases
from tests.support.database import read
from tests.support.simulator import Simulator, choice_ids

STORY = "Cháu bé rơi xuống ao, đang được hàng xóm sơ cứu."


def with_id(msgs: list[dict[str, Any]], text_id: str) -> list[dict[str, Any]]:
    return [m for m in msgs if text_id in m["ids"]]


async def alerts_of(sim: Simulator, who: str) -> list[dict[str, Any]]:
    return with_id(await sim[who].inbox(all_=True), "alert.new")


async def test_an_emergency_is_alerted_at_the_fourth_answer(sim: Simulator) -> None:
    citizen = sim["citizen"]
    await citizen.text("/start")
    answers = 0
    for choice in ("menu:report", "danger:yes", "type:injury"):
        await citizen.tap(choice)
        answers += 1
        assert not await alerts_of(sim, "officer"), f"alerted after {answers} answers"
    told = await citizen.inbox()
    await citizen.tap("village:dong")
    answers += 1
    # One tap for what happened (no "done" to press), one for where: the team knows now.
    assert answers == 4
    for who in ("officer", "police"):
        (alert,) = await alerts_of(sim, who)
        assert "VT-2026-0001" in alert["text"]
        assert i18n.t("alert.no_description", "vi") in alert["text"]
        assert "case:ack:1" in choice_ids(alert)
    told = await citizen.inbox()
    (alerted,) = with_id(told, "report.emergency.alerted")
    assert "VT-2026-0001" in alerted["text"] and "113" in alerted["phones"]
    # The questions go on: the child's age comes next, and nothing before can be undone.
    assert told[-1]["ids"] == ["report.age.prompt"]
    assert "back" not in choice_ids(told[-1])
    case = await read(sim.app, cases.case_by_code, "VT-2026-0001")
    assert case is not None and case.urgency == "EMERGENCY" and case.description is None

    for choice in ("age:0-5", "sex:boy", "skip", "count:1"):
        await citizen.tap(choice)
    await citizen.text(STORY)
    # Each answer is in the case at once: nothing is lost if the reporter stops here.
    case = await read(sim.app, cases.case_by_code, "VT-2026-0001")
    assert case is not None
    assert (case.age_band, case.sex, case.description) == ("0-5", "boy", STORY)
    officer_before = await sim["officer"].inbox(all_=True)
    assert not with_id(officer_before, "alert.additions"), "no message per answer"

    await citizen.tap("photos:done")
    await citizen.tap("contact:anonymous")
    (thanks,) = with_id(await citizen.inbox(), "report.additions.done")
    assert "VT-2026-0001" in thanks["text"] and choice_ids(thanks), "never a dead end"
    for who in ("officer", "police"):
        got = await sim[who].inbox(all_=True)
        (more,) = with_id(got, "alert.additions")
        assert STORY in more["text"] and "case:ack:1" in choice_ids(more)
        assert len(with_id(got, "alert.new")) == 1, "one alert, never a new one per answer"
    events = [e.action for e in await read(sim.app, cases.case_events, 1)]
    assert events.count("opened") == 1 and "reporter_added" in events
    assert events.count("additions_sent") == 1
    # Nothing waits for a review any more: a "confirm" now opens nothing.
    await citizen.tap("confirm")
    async with sim.app.database.read() as tx:
        assert await cases.case_by_code(tx, "VT-2026-0002") is None


async def test_stopping_after_the_alert_keeps_the_case_and_tells_the_team(
        sim: Simulator) -> None:
    citizen = sim["citizen"]
    for choice in ("menu:report", "danger:yes", "type:violence", "village:tay", "age:6-10"):
        await citizen.tap(choice)
    await citizen.text("/cancel")
    last = await citizen.last()
    assert last["ids"][0] == "report.additions.done"
    assert "menu:report" in choice_ids(last)
    (more,) = with_id(await sim["officer"].inbox(all_=True), "alert.additions")
    assert "6" in more["text"] and "10" in more["text"]
    case = await read(sim.app, cases.case_by_code, "VT-2026-0001")
    assert case is not None and not case.closed and case.age_band == "6-10"
    # A new report is a new report, not more of this one.
    await citizen.tap("menu:report")
    assert (await citizen.last())["ids"] == ["report.danger.prompt"]


async def test_a_standard_report_still_waits_for_the_review(sim: Simulator) -> None:
    citizen = sim["citizen"]
    for choice in ("menu:report", "danger:no", "type:violence", "types:done", "village:tay",
                   "age:6-10", "sex:boy", "skip", "count:1"):
        await citizen.tap(choice)
    await citizen.text("Hàng xóm thấy cháu bị đánh nhiều lần.")
    await citizen.tap("photos:done")
    await citizen.tap("contact:anonymous")
    assert (await citizen.last())["ids"][0] == "report.review"
    assert not await alerts_of(sim, "officer")
    await citizen.tap("confirm")
    assert len(await alerts_of(sim, "officer")) == 1


async def test_a_collaborator_in_danger_is_alerted_at_the_type(sim: Simulator) -> None:
    """The collaborator's own village is known: what happened is all it takes."""
    mate = sim["collaborator"]
    for choice in ("menu:report", "danger:yes", "type:abandonment"):
        await mate.tap(choice)
    assert len(await alerts_of(sim, "officer")) == 1
    assert (await mate.last())["ids"] == ["report.age.prompt"]


async def test_starting_afresh_after_the_alert_sends_what_was_told(sim: Simulator) -> None:
    citizen = sim["citizen"]
    for choice in ("menu:report", "danger:yes", "type:injury", "village:dong", "age:0-5"):
        await citizen.tap(choice)
    await citizen.text("/start")
    assert (await citizen.last())["ids"] == ["report.resume.prompt"]
    await citizen.tap("resume:no")
    assert (await citizen.last())["ids"] == ["report.danger.prompt"]
    (more,) = with_id(await sim["officer"].inbox(all_=True), "alert.additions")
    assert "VT-2026-0001" in more["text"]


async def test_a_reporter_who_goes_quiet_still_reaches_the_team(sim: Simulator) -> None:
    """A frightened reporter may run to the child mid-questions: three minutes without an
    answer, and what they said so far goes to the team; answering on adds only news."""
    citizen = sim["citizen"]
    for choice in ("menu:report", "danger:yes", "type:injury", "village:dong", "age:0-5",
                   "sex:boy", "skip", "count:1"):
        await citizen.tap(choice)
    await citizen.text(STORY)
    await sim.advance(2)
    assert not with_id(await sim["officer"].inbox(all_=True), "alert.additions")
    await sim.advance(1.5)
    for who in ("officer", "police"):
        (more,) = with_id(await sim[who].inbox(all_=True), "alert.additions")
        assert STORY in more["text"]
    # Back at the phone: nothing new in "no photos" and "anonymous", so nothing again.
    await citizen.tap("photos:done")
    await citizen.tap("contact:anonymous")
    assert (await citizen.last())["ids"][0] == "report.additions.done"
    await sim.advance(10)
    assert len(with_id(await sim["officer"].inbox(all_=True), "alert.additions")) == 1


async def test_news_after_a_quiet_send_goes_in_one_more_message(sim: Simulator) -> None:
    citizen = sim["citizen"]
    for choice in ("menu:report", "danger:yes", "type:injury", "village:dong", "age:0-5"):
        await citizen.tap(choice)
    await sim.advance(4)
    (first,) = with_id(await sim["officer"].inbox(all_=True), "alert.additions")
    for choice in ("sex:girl", "skip", "count:1"):
        await citizen.tap(choice)
    await citizen.text(STORY)
    for choice in ("photos:done", "contact:anonymous"):
        await citizen.tap(choice)
    got = with_id(await sim["officer"].inbox(all_=True), "alert.additions")
    assert len(got) == 2 and STORY in got[1]["text"] and STORY not in first["text"]
    await sim.advance(10)
    assert len(with_id(await sim["officer"].inbox(all_=True), "alert.additions")) == 2
