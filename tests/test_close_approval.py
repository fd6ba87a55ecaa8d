"""Issue 13, item 9: closing a case assessed at high risk before its support plan is
approved needs the chairman's approval (the commune file's `[closing]`). Whoever else
closes it sends the chairman a request; the case stays open until the chairman approves
(it closes with what was proposed) or refuses (it stays open). Only the chairman answers,
once; every step is in the audit trail; a request outlives a restart."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from bot import i18n
from bot.clock import FakeClock
from bot.config import DEMO_CONFIG, ConfigError, parse_commune
from storage import cases
from storage.cases import AuditEntry
from tests.support.processes import serve_refused
from tests.support.simulator import Phone, Simulator, choice_ids, simulator, walk_report
from tests.support.stories import EMERGENCY_REPORT, REPORT_STEPS

DEMO = tomllib.loads(DEMO_CONFIG.read_text(encoding="utf-8"))
NOTE = "Bé đã về ở với bà ngoại, mẹ đã được hỗ trợ."
APPROVE, REFUSE = "case:close_ok:1:1", "case:close_no:1:1"


def demo_with(**closing: Any) -> dict[str, Any]:
    raw = copy.deepcopy(DEMO)
    raw["closing"] = {**raw.get("closing", {}), **closing}
    return raw


async def assess_high(sim: Simulator, who: str = "officer", case_id: int = 1) -> None:
    phone = sim[who]
    for choice in (f"case:assess:{case_id}", "risk:high", "measures:none", "form:sexual_abuse",
                   "setting:family"):
        await phone.tap(choice)
    assert (await phone.last())["ids"][0] == "case.assessment_saved"


async def close(phone: Phone, case_id: int = 1, outcome: str = "supported",
                note: str = NOTE) -> dict[str, Any]:
    """Walk the close flow to its confirm; the answer to the confirm."""
    await phone.tap(f"case:close:{case_id}")
    await phone.tap(f"outcome:{outcome}")
    await phone.text(note)
    assert (await phone.last())["ids"] == ["close.review"]
    await phone.tap("close:confirm")
    return await phone.last()


async def reported_and_assessed(sim: Simulator) -> str:
    """A report the officer takes and assesses at high risk; its code."""
    code = await walk_report(sim, "citizen", REPORT_STEPS)
    await sim["officer"].tap("case:ack:1")
    await assess_high(sim)
    return code


async def case_state(sim: Simulator, case_id: int = 1) -> tuple[str, str | None, str | None]:
    async with sim.app.database.read() as s:
        case = await cases.case_by_id(s, case_id)
    assert case is not None
    return case.status, case.outcome, case.closing_note


async def audit(sim: Simulator, case_id: int = 1) -> list[AuditEntry]:
    async with sim.app.database.read() as s:
        return await cases.case_events(s, case_id)


def actions(events: list[AuditEntry]) -> list[str]:
    return [e.action for e in events]


async def requests_to(sim: Simulator, key: str) -> list[dict[str, Any]]:
    return [m for m in await sim[key].inbox(all_=True) if m["ids"] == ["close.request"]]


async def test_closing_a_high_risk_case_before_the_plan_is_approved_asks_the_chairman(
        sim: Simulator) -> None:
    code = await reported_and_assessed(sim)
    answer = await close(sim["officer"])
    assert answer["ids"] == ["close.needs_chairman"]
    assert "Cần chủ tịch xã đồng ý. Đã gửi đề nghị." in answer["text"] and code in answer["text"]
    assert "case:close:1" in choice_ids(answer), "no dead end: the case's actions go on"
    assert await case_state(sim) == ("assessed", None, None)

    [request] = await requests_to(sim, "chairman")
    assert code in request["text"] and NOTE in request["text"]
    assert i18n.t("outcome.supported", "vi") in request["text"]
    assert "Anh Hòa" in request["text"], "who proposes it"
    assert choice_ids(request) == [APPROVE, REFUSE]
    # Only the chairman is asked: not the vice-chairman, nor the team.
    for key in ("leader", "police", "province"):
        assert await requests_to(sim, key) == [], key

    events = await audit(sim)
    assert "closed" not in actions(events)
    [asked] = [e for e in events if e.action == "close_requested"]
    assert asked.detail["outcome"] == "supported" and asked.detail["request"] == 1
    assert NOTE not in str(asked.detail), "the audit trail never holds what was written"
    # The citizen has not been told it is closed.
    assert not [m for m in await sim["citizen"].inbox(all_=True)
                if m["ids"] == ["reporter.closed"]]


async def test_the_chairman_approves_and_the_case_closes_as_proposed(sim: Simulator) -> None:
    code = await reported_and_assessed(sim)
    await close(sim["officer"], outcome="referred")
    chairman = sim["chairman"]
    await chairman.tap(APPROVE)
    answer = await chairman.last()
    assert answer["ids"] == ["case.closed"] and code in answer["text"]
    assert choice_ids(answer), "no dead end"
    assert await case_state(sim) == ("closed", "referred", NOTE)

    # The closer and the rest of the team are told who agreed, once each.
    for key in ("officer", "police"):
        told = [m for m in await sim[key].inbox(all_=True) if m["ids"] == ["close.approved"]]
        assert len(told) == 1, key
        assert "Ông Sơn" in told[0]["text"] and code in told[0]["text"]
    assert [m for m in await sim["citizen"].inbox(all_=True)
            if m["ids"] == ["reporter.closed"]]
    # The chairman's request lost its buttons.
    [request] = [m for m in await chairman.inbox(all_=True)
                 if m["ids"] in (["close.request"], ["close.approved"])]
    assert request["ids"] == ["close.approved"] and choice_ids(request) == []

    events = actions(await audit(sim))
    assert events[-2:] == ["close_approved", "closed"]
    # Pressed again (a double tap, an old copy): nothing more happens.
    await chairman.tap(APPROVE)
    assert (await chairman.last())["ids"] == ["case.already_closed"]
    await chairman.tap(REFUSE)
    assert (await chairman.last())["ids"] == ["case.already_closed"]
    assert actions(await audit(sim)) == events


async def test_the_chairman_refuses_and_the_case_stays_open(sim: Simulator) -> None:
    code = await reported_and_assessed(sim)
    officer, chairman = sim["officer"], sim["chairman"]
    await close(officer)
    await chairman.tap(REFUSE)
    answer = await chairman.last()
    assert answer["ids"] == ["close.you_refused"] and choice_ids(answer)
    assert await case_state(sim) == ("assessed", None, None)
    told = await officer.last()
    assert told["ids"] == ["close.refused"] and code in told["text"]
    assert "case:progress:1" in choice_ids(told), "the officer works on"
    assert actions(await audit(sim))[-1] == "close_refused"

    # The refused request's buttons are stale; the case is still open.
    await chairman.tap(APPROVE)
    assert (await chairman.last())["ids"] == ["error.stale_button"]
    assert await case_state(sim) == ("assessed", None, None)

    # A second proposal is a new request, with buttons of its own.
    await close(officer, outcome="referred", note="Đã chuyển cho trung tâm công tác xã hội.")
    latest = (await requests_to(sim, "chairman"))[-1]
    assert choice_ids(latest) == ["case:close_ok:1:2", "case:close_no:1:2"]
    await chairman.tap("case:close_ok:1:2")
    assert await case_state(sim) == ("closed", "referred",
                                     "Đã chuyển cho trung tâm công tác xã hội.")


async def test_only_the_chairman_may_answer_and_a_refusal_is_audited(sim: Simulator) -> None:
    await reported_and_assessed(sim)
    await close(sim["officer"])
    for key in ("leader", "officer", "police", "citizen", "admin"):
        await sim[key].tap(APPROVE)
        assert (await sim[key].last())["ids"] == ["close.only_chairman"], key
    await sim["leader"].tap(REFUSE)
    assert (await sim["leader"].last())["ids"] == ["close.only_chairman"]
    assert await case_state(sim) == ("assessed", None, None)
    refused = [e for e in await audit(sim) if e.action == "refused"]
    assert [e.detail["button"] for e in refused] == ["close_ok"] * 5 + ["close_no"]
    assert "close_approved" not in actions(await audit(sim))
    # The request still waits for the chairman.
    await sim["chairman"].tap(APPROVE)
    assert await case_state(sim) == ("closed", "supported", NOTE)


async def test_forged_and_stale_answers_are_refused(sim: Simulator) -> None:
    await reported_and_assessed(sim)
    await walk_report(sim, "citizen", REPORT_STEPS)  # case 2, never proposed for closing
    officer, chairman = sim["officer"], sim["chairman"]
    await close(officer)
    await close(officer, outcome="referred")  # asked again before an answer: request 2
    for forged in ("case:close_ok:1", "case:close_ok:1:99", "case:close_ok:2:2",
                   "case:close_ok:99:2", "case:close_ok:1:x", APPROVE):
        await chairman.tap(forged)
        assert (await chairman.last())["ids"] == ["error.stale_button"], forged
    assert await case_state(sim) == ("assessed", None, None)
    assert (await case_state(sim, 2))[0] == "new"
    await chairman.tap("case:close_ok:1:2")
    assert await case_state(sim) == ("closed", "referred", NOTE)


async def test_a_case_whose_plan_is_approved_or_whose_risk_is_not_high_closes_at_once(
        sim: Simulator) -> None:
    await reported_and_assessed(sim)
    officer = sim["officer"]
    await officer.tap("case:progress:1")
    await officer.tap("milestone:plan_approved")
    assert (await close(officer))["ids"] == ["case.closed"]
    assert await case_state(sim) == ("closed", "supported", NOTE)

    await walk_report(sim, "citizen", REPORT_STEPS)
    await officer.tap("case:ack:2")
    for choice in ("case:assess:2", "risk:medium", "measures:none", "form:violence",
                   "setting:family"):
        await officer.tap(choice)
    assert (await close(officer, case_id=2))["ids"] == ["case.closed"]
    assert (await case_state(sim, 2))[0] == "closed"
    assert await requests_to(sim, "chairman") == []


async def test_the_chairman_closes_such_a_case_himself_at_once(sim: Simulator) -> None:
    for kind, value in EMERGENCY_REPORT:
        await sim["citizen"].step(kind, value)
    # Nobody takes the emergency: every 15 minutes it climbs, to the chairman at 45.
    for _ in range(3):
        await sim.advance(15)
    chairman = sim["chairman"]
    assert "case:ack:1" in choice_ids((await chairman.inbox(all_=True))[-1])
    await chairman.tap("case:ack:1")
    await assess_high(sim, "chairman")
    assert (await close(chairman))["ids"] == ["case.closed"]
    assert await case_state(sim) == ("closed", "supported", NOTE)
    assert "close_requested" not in actions(await audit(sim))


async def test_a_request_outlives_a_restart(db_url: str, clock: FakeClock) -> None:
    config = parse_commune(DEMO)
    async with simulator(db_url, clock, config) as sim:
        await reported_and_assessed(sim)
        assert (await close(sim["officer"]))["ids"] == ["close.needs_chairman"]
    async with simulator(db_url, clock, config) as sim:
        await sim["chairman"].tap(APPROVE)
        assert (await sim["chairman"].last())["ids"] == ["case.closed"]
        assert await case_state(sim) == ("closed", "supported", NOTE)


async def test_with_the_setting_off_a_high_risk_case_closes_at_once(
        db_url: str, clock: FakeClock) -> None:
    config = parse_commune(demo_with(high_risk_needs_chairman=False))
    assert not config.closing.high_risk_needs_chairman
    async with simulator(db_url, clock, config) as sim:
        await reported_and_assessed(sim)
        assert (await close(sim["officer"]))["ids"] == ["case.closed"]
        assert await case_state(sim) == ("closed", "supported", NOTE)
        assert await requests_to(sim, "chairman") == []
        assert "close_requested" not in actions(await audit(sim))


# ---- the commune file ---------------------------------------------------------------------


def test_without_the_table_the_chairman_is_needed() -> None:
    raw = copy.deepcopy(DEMO)
    raw.pop("closing")
    closing = parse_commune(raw).closing
    assert (closing.high_risk_needs_chairman, closing.chairman) == (True, "leader#chairman")


@pytest.mark.parametrize(("change", "message"), [
    ({"high_risk_needs_chairmen": True},
     "closing: unknown field(s) high_risk_needs_chairmen; did you mean "
     "high_risk_needs_chairman?"),
    ({"chairman": "leader#chairmen"},
     "closing: chairman: unknown recipient 'leader#chairmen'; did you mean "
     "'leader#chairman'?"),
    ({"high_risk_needs_chairman": "yes"},
     "closing: 'high_risk_needs_chairman' must be true or false, not 'yes'"),
    ({"chairman": 7}, "closing: 'chairman' must be a text like"),
])
def test_a_mistake_in_closing_is_refused_with_the_nearest(change: dict[str, Any],
                                                          message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_commune(demo_with(**change))
    assert str(caught.value).startswith(message)


def test_on_without_a_chairman_is_refused_and_off_needs_none() -> None:
    raw = copy.deepcopy(DEMO)
    raw.pop("closing")
    next(p for p in raw["people"] if p["key"] == "chairman")["tags"] = []
    raw["escalation"]["levels"][3] = ["leader#province"]
    with pytest.raises(ConfigError, match="closing: nobody is 'leader#chairman'"):
        parse_commune(raw)
    raw["closing"] = {"high_risk_needs_chairman": False}
    assert not parse_commune(raw).closing.high_risk_needs_chairman


def test_serve_refuses_a_misspelt_closing_field_in_one_line(tmp_path: Path) -> None:
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    assert "high_risk_needs_chairman = true" in text
    config = tmp_path / "commune.toml"
    config.write_text(text.replace("high_risk_needs_chairman = true",
                                   "high_risk_need_chairman = true"), encoding="utf-8")
    refused = serve_refused({"SAFECHILD_CONFIG": str(config),
                             "SAFECHILD_DB": str(tmp_path / "safechild.db")})
    assert refused.returncode == 2
    assert refused.stderr == ("safechild: closing: unknown field(s) high_risk_need_chairman; "
                              "did you mean high_risk_needs_chairman?\n")
