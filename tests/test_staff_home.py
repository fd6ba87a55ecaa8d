"""Officers, police and leaders have their own home (issue 13, item 6), through the
simulator's HTTP API (and Zalo's webhook): /start and /help show a staff menu with their
cases first, then report and what their role may use (statistics, broadcast, calendar);
the commune's open cases are listed one line each (code, urgency, village, holder, time
left) with a button that opens the case's card for its team only; /cases does the same;
/report typed by staff asks which report they mean."""

from __future__ import annotations

from bot.clock import FakeClock
from tests.support.simulator import Simulator, choice_ids, walk_report
from tests.support.stories import REPORT_STEPS
from tests.support.zalo import CITIZEN, make_world, zalo_choices
from tests.support.zalo import ZALO_STAFF as ZALO


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


async def test_the_office_finds_statistics_broadcast_and_calendar_at_home(
        sim: Simulator) -> None:
    officer = sim["officer"]
    await officer.text("/start")
    assert choice_ids(await officer.last()) == [
        "menu:my_cases", "menu:cases", "menu:report", "menu:stats", "menu:broadcast",
        "menu:calendar", "menu:help", "menu:lang"]

    # A tap does what the command does with nothing after it.
    for tap, command in (("menu:calendar", "/calendar"), ("menu:stats", "/stats")):
        await officer.tap(tap)
        tapped = await officer.last()
        await officer.text(command)
        typed = await officer.last()
        assert tapped["ids"] == typed["ids"], tap
        assert choice_ids(tapped) == choice_ids(typed), tap
    assert (await officer.inbox(all_=True))[-3]["ids"][0] == "calendar.list.head"

    # The statistics offer this month, this quarter, the last one and this year (the
    # demo clock says 23 November 2026); a tap is the period's report.
    assert typed["ids"] == ["stats.usage"]
    assert choice_ids(typed) == ["stats:2026-11", "stats:2026-Q4", "stats:2026-Q3",
                                 "stats:2026"]
    assert "Quý 3/2026" in [c["label"] for c in typed["choices"]]
    await officer.tap("stats:2026-Q3")
    table = (await officer.inbox())[0]
    assert table["ids"][0] == "stats.chat.title" and "2026-Q3" in table["text"]

    await officer.tap("menu:broadcast")
    assert (await officer.last())["ids"][-1] == "broadcast.prompt"


async def test_the_police_home_has_only_what_the_police_may_use(sim: Simulator) -> None:
    police = sim["police"]
    await police.text("/start")
    assert choice_ids(await police.last()) == [
        "menu:my_cases", "menu:cases", "menu:report", "menu:help", "menu:lang"]
    # A forged tap on the office's buttons is refused by the services, as the commands are.
    await police.tap("menu:stats")
    assert (await police.last())["ids"] == ["stats.not_allowed"]
    await police.tap("stats:2026-Q3")
    assert (await police.last())["ids"] == ["stats.not_allowed"]
    await police.tap("menu:broadcast")
    assert (await police.last())["ids"] == ["broadcast.not_allowed"]


async def test_report_typed_by_staff_asks_which_report_they_mean(sim: Simulator) -> None:
    police = sim["police"]
    await police.text("/report")
    asked = await police.last()
    assert asked["ids"] == ["report.which"], "no citizen questionnaire started unasked"
    assert choice_ids(asked) == ["menu:report", "menu:my_cases"]
    await police.tap("menu:report")
    assert (await police.last())["ids"][-1] == "report.danger.prompt"

    officer = sim["officer"]
    await officer.text("/report")
    assert choice_ids(await officer.last()) == ["menu:report", "menu:my_cases",
                                                "menu:stats"]
    await officer.text("/report 2026-Q3")  # the old spelling of /stats still works
    assert (await officer.inbox())[0]["ids"][0] == "stats.chat.title"

    # A citizen's /report is the report, as ever.
    citizen = sim["citizen"]
    await citizen.text("/report")
    assert (await citizen.last())["ids"][-1] == "report.danger.prompt"


async def test_help_for_staff_is_their_home(sim: Simulator) -> None:
    officer = sim["officer"]
    await officer.text("/help")
    home = await officer.last()
    assert home["ids"] == ["help.staff", "menu.prompt"]
    assert choice_ids(home)[:2] == ["menu:my_cases", "menu:cases"]
    # Where to get help is one tap away.
    await officer.tap("menu:help")
    assert (await officer.last())["ids"] == ["help.prompt"]

    citizen = sim["citizen"]
    await citizen.text("/help")
    assert (await citizen.last())["ids"] == ["help.prompt"]


async def test_on_zalo_the_staff_menu_is_buttons(db_url: str, clock: FakeClock) -> None:
    """Zalo has no command list: the same menu comes as buttons (five to a message), and
    the case list's buttons open the card there too."""
    w = await make_world(db_url, clock, "zalo")
    try:
        await w.report(CITIZEN, "Hàng xóm đánh cháu bé.")
        officer = ZALO["officer"]
        await w.say(officer, "/start")
        assert zalo_choices(w.latest(officer)) == [
            "menu:my_cases", "menu:cases", "menu:report", "menu:stats", "menu:broadcast",
            "menu:calendar", "menu:help", "menu:lang"]
        await w.press(officer, "menu:cases")
        assert "VT-2026-0001" in w.text(officer)
        await w.press(officer, "case:view:1")
        assert "case:ack:1" in zalo_choices(w.latest(officer))
    finally:
        await w.close()
