"""Officers, police and leaders have their own home (issue 13, item 6), through the
simulator's HTTP API: /start shows a staff menu with their cases first; the commune's
open cases are listed one line each (code, urgency, village, holder, time left) with a
button that opens the case's card for its team only; /cases does the same."""

from __future__ import annotations

from tests.support.simulator import Simulator, choice_ids, walk_report
from tests.support.stories import REPORT_STEPS


async def test_staff_see_their_cases_from_their_home(sim: Simulator) -> None:
    code = await walk_report(sim, "citizen", REPORT_STEPS)
    officer = sim["officer"]
    await officer.text("/start")
    home = await officer.last()
    assert choice_ids(home)[:3] == ["menu:my_cases", "menu:cases", "menu:report"]

    await officer.tap("menu:cases")
    listed = await officer.last()
    assert listed["ids"][:2] == ["cases.title", "cases.line"]
    line = listed["text"].split("\n\n")[1]
    assert code in line and "Thôn Tây" in line and "chưa ai nhận" in line and "còn" in line
    assert "dụ bé" not in listed["text"], "the description stays on the card"
    assert choice_ids(listed) == ["case:view:1"]

    await officer.tap("case:view:1")
    card = await officer.last()
    assert card["ids"][0] == "case.card" and "dụ bé" in card["text"]
    assert "case:ack:1" in choice_ids(card)

    await officer.tap("case:ack:1")
    await officer.text("/cases mine")
    mine = await officer.last()
    assert mine["ids"][0] == "cases.title_mine" and code in mine["text"]
    assert "Anh Hòa" in mine["text"].split("\n\n")[1], "the holder is named"


async def test_a_case_card_is_for_its_team_only(sim: Simulator) -> None:
    await walk_report(sim, "citizen", REPORT_STEPS)
    # The chairman is on no team of this case yet: the list, but not the card.
    chairman = sim["chairman"]
    await chairman.text("/cases")
    assert (await chairman.last())["ids"][0] == "cases.title"
    await chairman.tap("case:view:1")
    assert (await chairman.last())["ids"][0] == "case.not_allowed"
    # A citizen has no such list.
    citizen = sim["citizen"]
    await citizen.text("/cases")
    assert (await citizen.last())["ids"][0] == "case.not_allowed"
    await citizen.text("/start")
    assert choice_ids(await citizen.last())[0] == "menu:report"
