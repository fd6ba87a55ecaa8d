"""Bad input: each gets a clear, kind answer and changes nothing it should not."""

from __future__ import annotations

from typing import Any

import pytest

from storage import cases, conversations, people
from tests.support.database import count, read
from tests.support.simulator import Simulator, choice_ids, walk_report
from tests.support.stories import REPORT_STEPS


async def state_of(sim: Simulator, key: str) -> dict:
    async with sim.app.database.read() as s:
        person = await people.person_by_key(s, sim.app.directory.commune_id, key)
        assert person is not None
        conv = await conversations.conversation(s, person.id)
        return dict(conv.state) if conv else {}


async def ids_of_last(sim: Simulator, key: str) -> list[str]:
    msgs = await sim[key].inbox()
    assert msgs, f"{key} got no answer"
    return [i for m in msgs for i in m["ids"]]


async def test_free_text_where_a_button_was_expected(sim: Simulator) -> None:
    phone = sim["citizen"]
    await phone.tap("menu:report")
    await phone.inbox()
    before = await state_of(sim, "citizen")
    await phone.text("không biết nữa 🤷")
    assert await ids_of_last(sim, "citizen") == ["error.use_buttons", "report.danger.prompt"]
    assert await state_of(sim, "citizen") == before


async def test_typing_the_number_or_label_of_a_button_works(sim: Simulator) -> None:
    phone = sim["citizen"]
    await phone.tap("menu:report")
    await phone.text("2")  # the second option: "no"
    assert (await state_of(sim, "citizen"))["data"]["danger"] == "no"


async def test_unknown_command(sim: Simulator) -> None:
    phone = sim["citizen"]
    await phone.tap("menu:report")
    await phone.inbox()
    before = await state_of(sim, "citizen")
    await phone.text("/hack everything")
    assert await ids_of_last(sim, "citizen") == ["error.unknown_command", "report.danger.prompt"]
    assert await state_of(sim, "citizen") == before


async def test_ten_thousand_character_description_is_kept_whole(sim: Simulator) -> None:
    long_text = ("Cháu bị đánh nhiều lần. " * 500)[:10_000]
    steps = [(k, long_text if k == "text" and v.startswith("Một người") else v)
             for k, v in REPORT_STEPS]
    code = await walk_report(sim, "citizen", steps)
    async with sim.app.database.read() as s:
        case = await cases.case_by_code(s, code)
        assert case is not None and case.description == long_text.strip()
    alert = await sim["officer"].last()
    # The alert stays readable on a phone (and within Telegram's 4096 characters).
    assert len(alert["text"]) < 4096


async def test_emoji_only_description_is_refused_kindly(sim: Simulator) -> None:
    phone = sim["citizen"]
    for kind, value in REPORT_STEPS[:10]:
        await (phone.text(value) if kind == "text" else phone.tap(value))
    await phone.inbox()
    await phone.text("😢😢😢")
    assert await ids_of_last(sim, "citizen") == ["report.description.too_short",
                                                 "report.description.prompt"]
    await phone.text("Bé khóc suốt đêm 😢, bố say rượu đánh bé")
    assert (await state_of(sim, "citizen"))["step"] == "photos"


async def test_stale_and_forged_buttons(sim: Simulator) -> None:
    phone = sim["citizen"]
    await phone.tap("menu:report")
    await phone.tap("danger:no")
    await phone.inbox()
    before = await state_of(sim, "citizen")
    await phone.tap("danger:yes")  # a button from an earlier message
    assert (await ids_of_last(sim, "citizen"))[0] == "error.stale_button"
    await phone.tap("type:nuclear")  # never offered
    assert (await ids_of_last(sim, "citizen"))[0] == "error.stale_button"
    await phone.tap("case:ack:999")  # a case that does not exist
    assert (await ids_of_last(sim, "citizen")) == ["error.stale_button"]
    assert await state_of(sim, "citizen") == before


async def test_citizen_pressing_an_officer_button_changes_nothing(sim: Simulator) -> None:
    code = await walk_report(sim, "citizen", REPORT_STEPS)
    for action in ("ack", "close", "assess", "handover"):
        await sim["citizen"].tap(f"case:{action}:1")
        assert await ids_of_last(sim, "citizen") == ["case.not_allowed"]
    # Neither may an officer of the commune who was not alerted (the leader, level 3).
    await sim["leader"].tap("case:ack:1")
    assert await ids_of_last(sim, "leader") == ["case.not_allowed"]
    async with sim.app.database.read() as s:
        case = await cases.case_by_code(s, code)
        assert case is not None and case.status == "new" and case.assignee_id is None
        refused = [e for e in await cases.case_events(s, case.id) if e.action == "refused"]
    assert len(refused) == 5


async def test_same_message_delivered_twice_is_processed_once(sim: Simulator) -> None:
    phone = sim["citizen"]
    await phone.send(kind="choice", choice="menu:report", id="dup-1")
    await phone.send(kind="choice", choice="danger:yes", id="dup-2")
    again = await phone.send(kind="choice", choice="danger:yes", id="dup-2")
    assert again["duplicate"] is True
    assert (await state_of(sim, "citizen"))["step"] == "types"


async def test_back_cancel_and_resume(sim: Simulator) -> None:
    phone = sim["citizen"]
    await phone.tap("menu:report")
    await phone.tap("danger:no")
    await phone.tap("type:violence")
    await phone.tap("types:done")
    await phone.tap("back")
    assert (await state_of(sim, "citizen"))["step"] == "types"
    # Asking for help in the middle keeps the draft; /start offers to resume it.
    await phone.tap("menu:help")
    await phone.tap("help:hotlines")
    await phone.text("/start")
    msgs = await phone.inbox()
    assert "resume:yes" in choice_ids(msgs[-1])
    await phone.tap("resume:yes")
    state = await state_of(sim, "citizen")
    assert state["step"] == "types" and state["data"]["types"] == ["violence"]
    await phone.tap("cancel")
    assert (await state_of(sim, "citizen")).get("flow") is None
    assert await count(sim.app, "cases") == 0
    assert await count(sim.app, "people") > 0


@pytest.mark.parametrize(("typed", "kept"), [
    ("Bé bị đánh \ud800 nhiều lần ở nhà", "Bé bị đánh \ufffd nhiều lần ở nhà"),
    ("Bé bị\x00 đánh nhiều lần ở nhà", "Bé bị đánh nhiều lần ở nhà"),
])
async def test_text_no_database_could_keep_still_makes_a_report(
        sim: Simulator, typed: str, kept: str) -> None:
    """A lone surrogate (refused by SQLite and PostgreSQL) or a NUL (PostgreSQL) made
    Confirm answer 500 on every try, so the report could never be sent."""
    steps = [(k, typed if v.startswith("Một người") else v) for k, v in REPORT_STEPS]
    code = await walk_report(sim, "citizen", steps)
    case = await read(sim.app, cases.case_by_code, code)
    assert case is not None and case.description == kept
    assert kept in (await sim["officer"].last())["text"]


async def post(sim: Simulator, path: str, body: bytes | str,
               content_type: str = "application/json") -> tuple[int, dict[str, Any]]:
    async with sim.http.post(sim.base + path, data=body,
                             headers={"Content-Type": content_type}) as r:
        return r.status, await r.json(content_type=None)


@pytest.mark.parametrize("body", ["[1, 2]", "42", '"hello"', "null", "{not json", "",
                                  '{"kind": "location", "latitude": "x"}',
                                  '{"kind": "location"}',
                                  '{"kind": "text", "text": "hi", "id": "' + "x" * 129 + '"}',
                                  '{"kind": "text", "text": "hi", "id": [1]}',
                                  "[" * 5000 + "]" * 5000])
async def test_a_malformed_message_body_gets_a_400_with_a_reason(
        sim: Simulator, body: str) -> None:
    status, answer = await post(sim, "/api/phones/citizen/send", body)
    assert status == 400, answer
    assert isinstance(answer["error"], str) and answer["error"] and "\n" not in answer["error"]
    # Nothing was taken from it: the phone shows no bubble and the bot no answer.
    assert await sim["citizen"].inbox(all_=True) == []


@pytest.mark.parametrize("after", ["abc", "-1", "1.5", "9" * 40])
async def test_a_bad_after_gets_a_400(sim: Simulator, after: str) -> None:
    async with sim.http.get(f"{sim.base}/api/phones/citizen/messages",
                            params={"after": after}) as r:
        assert r.status == 400
        assert "after" in (await r.json())["error"]


@pytest.mark.parametrize("body", ['{"minutes": "x"}', '{"minutes": 1e300}',
                                  '{"minutes": NaN}', '{"minutes": -5}', '{"minutes": true}',
                                  "[15]", "not json"])
async def test_a_bad_clock_move_gets_a_400_and_the_clock_stays(
        sim: Simulator, body: str) -> None:
    before = sim.app.clock.now()
    status, answer = await post(sim, "/api/clock", body)
    assert status == 400 and "\n" not in answer["error"]
    assert sim.app.clock.now() == before


async def test_a_case_id_past_any_integer_column_is_a_stale_button(sim: Simulator) -> None:
    await walk_report(sim, "citizen", REPORT_STEPS)
    await sim["officer"].inbox()  # the alert
    for huge in (2 ** 63, 2 ** 64 + 5, 10 ** 30):
        await sim["officer"].tap(f"case:ack:{huge}")
        assert await ids_of_last(sim, "officer") == ["error.stale_button"]


async def test_confirm_pressed_again_answers_with_the_case_it_made(sim: Simulator) -> None:
    """Pressed twice (once per update), Confirm opened a second case: the same case twice
    in the officer's hands. Now the second press answers with the first one's code."""
    code = await walk_report(sim, "citizen", REPORT_STEPS)
    await sim["citizen"].tap("confirm")
    again = await sim["citizen"].last()
    assert again["ids"] == ["report.already_sent"] and code in again["text"]
    assert again["phones"] == ["111"]
    assert await count(sim.app, "cases") == 1
    # Still so after other things were done in between.
    await sim["citizen"].tap("menu:help")
    await sim["citizen"].tap("confirm")
    assert (await sim["citizen"].last())["ids"] == ["report.already_sent"]
    # A new report's own Confirm makes a new case.
    code2 = await walk_report(sim, "citizen", REPORT_STEPS[1:])
    assert code2 != code and await count(sim.app, "cases") == 2


async def test_a_broadcast_sent_again_is_not_sent_twice(sim: Simulator) -> None:
    officer = sim["officer"]
    await officer.text("/broadcast Họp cộng tác viên sáng thứ Hai")
    await officer.tap("broadcast:send")
    await officer.tap("broadcast:send")
    assert (await officer.last())["ids"] == ["broadcast.already_sent"]
    assert await count(sim.app, "broadcasts") == 1
