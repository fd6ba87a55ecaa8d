"""One bot for a province (issue 14): two communes of Thanh Hóa on one process and one
database, through the simulator channel. Each citizen reaches their own commune (a poster's
deep link; a name typed without marks; a shared location, nearest a village of theirs),
each commune's team alone is alerted, and an officer of one commune can neither see nor act
on the other's case."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser

from bot.clock import FakeClock
from bot.config import load_province
from bot.domain.commune import CommuneConfig
from bot.domain.folding import without_marks
from bot.domain.province import ProvinceConfig
from storage import cases, people
from tests.support.database import read, rows
from tests.support.fake_telegram import FakeTelegram
from tests.support.province import FAR_AWAY, commune_files, village_point, write_province
from tests.support.simulator import Simulator, WalkIn, choice_ids, simulator
from tests.support.telegram import TelegramWorld, telegram_app
from tests.support.zalo import open_hook


@pytest.fixture
def province(tmp_path: Path) -> ProvinceConfig:
    return load_province(write_province(tmp_path, communes=2))


@pytest.fixture
async def two(db_url: str, clock: FakeClock,
              province: ProvinceConfig) -> AsyncIterator[Simulator]:
    async with simulator(db_url, clock, province) as sim:
        yield sim


def phone(province: ProvinceConfig, n: int, key: str) -> str:
    return f"{province.communes[n].key}.{key}"


async def alerts(sim: Simulator, who: str) -> list[dict[str, Any]]:
    return [m for m in await sim[who].inbox(all_=True) if "alert.new" in m["ids"]]


async def urgent_report_in_each(sim: Simulator, communes: Sequence[CommuneConfig]) -> None:
    """A walk-in of each commune reports a child beaten (URGENT: an hour per level)."""
    for n, commune in enumerate(communes):
        walk_in = WalkIn(sim, f"walk-in-{n}")
        await walk_in.say("text", f"/start c-{commune.official_code}")
        for value in ("menu:report", "danger:no", "type:violence", "types:done",
                      "village:v1", "age:6-10", "sex:boy", "skip", "count:1"):
            await walk_in.say("choice", value)
        await walk_in.say("text", "Hàng xóm thấy cháu bị đánh nhiều lần.")
        for value in ("photos:done", "contact:anonymous", "confirm"):
            await walk_in.say("choice", value)


async def test_each_citizen_reaches_their_own_commune_and_only_its_team(
        two: Simulator, province: ProvinceConfig) -> None:
    sim = two
    a, b = province.communes
    # A poster's link: the citizen is of commune A at once, and its home says so.
    first = WalkIn(sim, "walk-in-1")
    await first.say("text", f"/start c-{a.official_code}")
    home = await first.last()
    assert a.name in home["text"] and "menu:report" in choice_ids(home)
    for value in ("menu:report", "danger:no", "type:violence", "types:done", "village:v1",
                  "age:6-10", "sex:boy", "skip", "count:1"):
        await first.say("choice", value)
    await first.say("text", "Hàng xóm thấy cháu bị đánh nhiều lần.")
    for value in ("photos:done", "contact:anonymous"):
        await first.say("choice", value)
    review = await first.last()
    assert review["ids"] == ["report.review"] and f"Thôn 1 ({a.name})" in review["text"]
    await first.say("choice", "confirm")
    assert f"{a.code_prefix}-2026-0001" in (await first.last())["text"]

    # Someone else types their commune's name without marks, in lower case.
    second = WalkIn(sim, "walk-in-2")
    await second.say("choice", "menu:report")
    assert (await second.last())["ids"] == ["commune.ask"]
    await second.say("text", without_marks(b.name).lower())
    asked = await second.last()
    assert asked["ids"] == ["report.danger.prompt"], asked
    for value in ("danger:yes", "type:injury", "village:v2"):
        await second.say("choice", value)
    assert f"{b.code_prefix}-2026-0001" in " ".join(
        m["text"] for m in await sim["walk-in-2"].inbox(all_=True))

    # A third shares their location, a few hundred metres from a village of B's.
    third = WalkIn(sim, "walk-in-3")
    await third.say("choice", "menu:report")
    assert (await third.last())["request"] == "location"
    lat, lon = village_point(1, 3)
    await third.say("location", (lat + 0.002, lon - 0.002))
    chosen, asked = (await sim["walk-in-3"].inbox(all_=True))[-2:]
    assert chosen["ids"] == ["commune.chosen"] and b.name in chosen["text"], chosen
    assert asked["ids"] == ["report.danger.prompt"], asked
    for value in ("danger:yes", "type:injury"):
        await third.say("choice", value)
    # The village question offers B's villages, and the case is B's.
    assert choice_ids(await third.last())[:len(b.villages)] == [
        f"village:{key}" for key, _ in b.villages]
    await third.say("choice", "village:v3")
    assert f"{b.code_prefix}-2026-0002" in " ".join(
        m["text"] for m in await sim["walk-in-3"].inbox(all_=True))

    # Each commune's officer has their own commune's alerts, and only those.
    (alert_a,) = await alerts(sim, phone(province, 0, "officer"))
    alert_b, alert_b2 = await alerts(sim, phone(province, 1, "officer"))
    assert f"{a.code_prefix}-2026-0001" in alert_a["text"]
    assert f"{b.code_prefix}-2026-0001" in alert_b["text"]
    assert f"{b.code_prefix}-2026-0002" in alert_b2["text"]
    # Each alert names its commune with the village.
    assert f"Thôn 1 ({a.name})" in alert_a["text"] and f"Thôn 2 ({b.name})" in alert_b["text"]
    assert f"Thôn 3 ({b.name})" in alert_b2["text"]
    async with sim.app.database.read() as tx:
        case_a = await cases.case_by_code(tx, f"{a.code_prefix}-2026-0001")
        case_b = await cases.case_by_code(tx, f"{b.code_prefix}-2026-0001")
        case_b2 = await cases.case_by_code(tx, f"{b.code_prefix}-2026-0002")
    assert case_a is not None and case_b is not None and case_b2 is not None
    assert case_a.commune_id != case_b.commune_id == case_b2.commune_id
    assert sim.app.communes.of(case_a.commune_id).config.key == a.key
    commune_b = sim.app.communes.of(case_b2.commune_id)
    assert commune_b.config.key == b.key and case_b2.village_id == commune_b.village_ids["v3"]

    # The other commune's officer presses a forged take button naming B's case: refused,
    # audited, and the case is still nobody's.
    officer_a = sim[phone(province, 0, "officer")]
    await officer_a.tap(f"case:ack:{case_b.id}")
    await officer_a.tap(f"case:view:{case_b.id}")
    fresh = await read(sim.app, cases.case_by_id, case_b.id)
    assert fresh is not None and fresh.assignee_id is None
    events = await read(sim.app, cases.case_events, case_b.id)
    assert sum(e.action == "refused" for e in events) >= 2
    # Their case list is their commune's alone.
    await officer_a.text("/cases")
    listed = (await officer_a.last())["text"]
    assert case_a.code in listed and case_b.code not in listed


async def test_a_typed_name_that_fits_several_offers_buttons_and_none_asks_again(
        two: Simulator, province: ProvinceConfig) -> None:
    sim = two
    walk_in = WalkIn(sim, "walk-in-3")
    await walk_in.say("choice", "menu:report")
    await walk_in.say("text", "qwxzqwxz")
    assert (await walk_in.last())["ids"] == ["commune.ask"]
    texts = [m["ids"][0] for m in await sim["walk-in-3"].inbox(all_=True)]
    assert "commune.not_found" in texts
    # A forged commune button: not one of ours.
    await walk_in.say("choice", "commune:99999")
    assert (await walk_in.last())["ids"] == ["commune.unknown"]
    async with sim.app.database.read() as tx:
        ident = await people.identity(tx, "web", "walk-in-3")
        assert ident is not None
        person = await people.person(tx, ident.person_id)
    assert person is not None and person.commune_id == sim.app.communes.home_id


async def test_a_location_far_from_every_village_is_answered_and_asked_again(
        two: Simulator, province: ProvinceConfig) -> None:
    """Hà Nội is no commune of Thanh Hóa's: the kind "not near" answer, the question again
    (never a dead end), still of no commune; then a location in A's village finds A."""
    sim = two
    a = province.communes[0]
    walk_in = WalkIn(sim, "walk-in-far")
    await walk_in.say("choice", "menu:report")
    await walk_in.say("location", FAR_AWAY)
    answer, again = (await sim["walk-in-far"].inbox(all_=True))[-2:]
    assert answer["ids"] == ["commune.not_near"]
    assert again["ids"] == ["commune.ask"] and again["request"] == "location"
    assert "cancel" in choice_ids(again)
    async with sim.app.database.read() as tx:
        ident = await people.identity(tx, "web", "walk-in-far")
        assert ident is not None
        person = await people.person(tx, ident.person_id)
    assert person is not None and person.commune_id == sim.app.communes.home_id
    await walk_in.say("location", village_point(0, 7))
    chosen, asked = (await sim["walk-in-far"].inbox(all_=True))[-2:]
    assert chosen["ids"] == ["commune.chosen"] and a.name in chosen["text"], chosen
    assert asked["ids"] == ["report.danger.prompt"]


async def test_the_simulators_phone_shares_where_its_person_lives(
        two: Simulator, province: ProvinceConfig) -> None:
    """The web phone's location tool sends its person's village (the first of their commune
    when they have none): B's citizen asked for their commune (/commune) finds B by it."""
    sim = two
    b = province.communes[1]
    async with sim.http.get(f"{sim.base}/api/phones") as r:
        shown = {p["key"]: p for p in (await r.json())["phones"]}
    assert shown[phone(province, 1, "ctv4_1")]["where"] == list(village_point(1, 4))
    assert shown[phone(province, 1, "citizen")]["where"] == list(village_point(1, 1))
    assert shown["province.cpu"]["where"] is None
    citizen = sim[phone(province, 1, "citizen")]
    await citizen.text("/commune")
    asked = await citizen.last()
    assert asked["ids"] == ["commune.ask"] and asked["request"] == "location"
    lat, lon = shown[citizen.key]["where"]
    await citizen.send(kind="location", latitude=lat, longitude=lon)
    chosen = await citizen.last()
    assert chosen["ids"] == ["commune.chosen"] and b.name in chosen["text"], chosen


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_simulator_pages_location_tool_answers_which_commune(
        two: Simulator, province: ProvinceConfig, browser: Browser) -> None:
    """On the page, in headless Chromium: B's citizen types /commune and taps 📍."""
    b = province.communes[1]
    key = phone(province, 1, "citizen")
    page = await browser.new_page()
    await page.goto(f"{two.base}/?phones={key}")
    view = page.locator(f'[id="phone-{key}"]')
    await view.locator("input[name=text]").fill("/commune")
    await view.locator("input[name=text]").press("Enter")
    await view.locator(".msg.out").first.wait_for(timeout=10_000)
    await view.locator("button[data-tool=location]").click()
    await view.locator(".msg.out", has_text=b.name).wait_for(timeout=10_000)
    assert (await two[key].last())["ids"] == ["commune.chosen"]


ACTIONS = ("ack", "ask", "handover", "assess", "progress", "close", "view", "reply",
           "close_ok", "close_no")
ROLES = ("officer", "officer2", "police", "police_chief", "leader", "chairman", "admin",
         "ctv1_1", "citizen")


async def test_nobody_of_one_commune_reads_or_acts_on_the_other_communes_case(
        two: Simulator, province: ProvinceConfig) -> None:
    """Issue 14, item 5: every case button, by every role of commune A, on a case of
    commune B (forged: nobody in A was ever shown it), and B's case code typed: each
    refused, each audited, nothing of B's case shown to anyone in A."""
    sim = two
    b = province.communes[1]
    reporter = WalkIn(sim, "walk-in-b")
    await reporter.say("text", f"/start c-{b.official_code}")
    for value in ("menu:report", "danger:yes", "type:injury", "village:v1"):
        await reporter.say("choice", value)
    case = await read(sim.app, cases.case_by_code, f"{b.code_prefix}-2026-0001")
    assert case is not None
    before = len(await read(sim.app, cases.case_events, case.id))
    presses = 0
    for role in ROLES:
        who = sim[phone(province, 0, role)]
        for action in ACTIONS:
            ref = ":1" if action.startswith("close_") else ""
            await who.tap(f"case:{action}:{case.id}{ref}")
            presses += 1
        await who.text(case.code)  # a status lookup by the code
        presses += 1
        for m in await who.inbox(all_=True):
            assert case.code not in m["text"] or m["ids"] == ["status.not_found"], (role, m)
    fresh = await read(sim.app, cases.case_by_id, case.id)
    assert fresh is not None and fresh.assignee_id is None and not fresh.closed
    events = (await read(sim.app, cases.case_events, case.id))[before:]
    refused = [e for e in events if e.action == "refused"]
    assert len(refused) == presses, sorted({(e.detail.get("button"), e.actor_id)
                                            for e in refused})
    assert {e.action for e in events} == {"refused"}


async def test_a_province_admin_invites_into_a_named_commune(
        two: Simulator, province: ProvinceConfig) -> None:
    """Issue 14, item 7: `/invite officer <commune> [village]` by the province's admin;
    the invited person joins that commune and gets its alerts."""
    sim = two
    b = province.communes[1]
    admin = sim["province.province_admin"]
    await admin.text("/invite officer")
    assert (await admin.last())["ids"] == ["invite.usage_province"]
    await admin.text(f"/invite officer {without_marks(b.name).upper()} Thôn 2")
    made = await admin.last()
    assert made["ids"] == ["invite.created"] and b.name in made["text"], made
    code = made["text"].split("\n")[1].strip()
    newcomer = WalkIn(sim, "walk-in-officer")
    await newcomer.say("text", f"/start {code}")
    async with sim.app.database.read() as tx:
        ident = await people.identity(tx, "web", "walk-in-officer")
        assert ident is not None
        person = await people.person(tx, ident.person_id)
    assert person is not None and person.role == "officer"
    commune = sim.app.communes.of(person.commune_id)
    assert commune.config.key == b.key
    assert commune.village_names[person.village_id or 0] == "Thôn 2"
    assert "menu:my_cases" in choice_ids(await newcomer.last())


async def test_the_province_hears_of_both_communes_cases_in_one_digest(
        two: Simulator, province: ProvinceConfig) -> None:
    """Issue 14, item 3: nobody acts on an urgent case in either commune; both climb to
    the top, the province's child-protection unit: one digest naming both, not a message
    per case."""
    sim = two
    a, b = province.communes
    await urgent_report_in_each(sim, (a, b))
    codes = [f"{c.code_prefix}-2026-0001" for c in (a, b)]
    for _ in range(5):  # an hour per level: the top after three
        await sim.advance(60)
    got = await sim["province.cpu"].inbox(all_=True)
    digests = [m for m in got if m["ids"][:1] == ["digest.top"]]
    assert len(digests) == 1, [m["ids"] for m in got]
    assert all(code in digests[0]["text"] for code in codes)
    assert not [m for m in got if "alert.escalated" in m["ids"] or "alert.nobody_took"
                in m["ids"]], "no message per case"
    # The commune's own chairman, at the same top, still hears of their case at once.
    chairman = await sim[phone(province, 0, "chairman")].inbox(all_=True)
    assert any(codes[0] in m["text"] and "alert.nobody_took" in m["ids"] for m in chairman)


async def test_the_province_hears_of_cases_wherever_its_people_sit_in_a_chain(
        tmp_path: Path, db_url: str, clock: FakeClock) -> None:
    """The province's unit is at level 2 of one commune's chain and at the top of another's
    shorter one: its digests list both cases once they reach it. (It used to look only at
    cases at the first commune's top level, so it never heard of the other commune's.)"""
    path = write_province(tmp_path, communes=2)
    first, second = commune_files(tmp_path)
    for file, old, new in (
            (first, '["officer", "police#chief"],',
             '["officer", "police#chief", "leader#province"],'),
            (second, '  ["leader#vice_chairman"],\n', '')):
        text = file.read_text(encoding="utf-8")
        assert old in text
        file.write_text(text.replace(old, new), encoding="utf-8")
    province = load_province(path)
    assert [len(c.levels) for c in province.communes] == [4, 3]
    async with simulator(db_url, clock, province) as sim:
        await urgent_report_in_each(sim, province.communes)
        # An hour per level: A at level 2 after one, B at its top after two; the digest
        # comes daily.
        for _ in range(3):
            await sim.advance(60)
        await sim.advance(24 * 60)
        got = await sim["province.cpu"].inbox(all_=True)
    listed = " ".join(m["text"] for m in got if m["ids"][:1] == ["digest.top"])
    for commune in province.communes:
        assert f"{commune.code_prefix}-2026-0001" in listed, [m["ids"] for m in got]


async def test_the_province_file_sets_its_peoples_digest_pace(
        tmp_path: Path, db_url: str, clock: FakeClock) -> None:
    """`[digest] per_day = 3` in the province file: the unit hears again eight hours after
    its first digest (a commune's pace, once a day, used to be theirs)."""
    path = write_province(tmp_path, communes=2)
    path.write_text(path.read_text(encoding="utf-8") + "\n[digest]\nper_day = 3\n",
                    encoding="utf-8")
    province = load_province(path)
    assert province.digest.per_day == 3
    async with simulator(db_url, clock, province) as sim:
        await urgent_report_in_each(sim, province.communes)
        for _ in range(4):  # both reach the top (the unit) after three hours
            await sim.advance(60)
        first = [m for m in await sim["province.cpu"].inbox(all_=True)
                 if m["ids"][:1] == ["digest.top"]]
        await sim.advance(8 * 60)
        later = [m for m in await sim["province.cpu"].inbox(all_=True)
                 if m["ids"][:1] == ["digest.top"]]
    assert len(first) == 1 and len(later) == 2, (first, later)


async def test_two_communes_on_one_telegram_bot(
        db_url: str, clock: FakeClock, province: ProvinceConfig) -> None:
    """The same story over the fake Bot API: a poster's deep link for one citizen, a name
    typed without marks for another, a shared location near a village of B's for a third;
    each commune's officer alone gets their alerts."""
    fake = FakeTelegram()
    await fake.start()
    citizens = (5001, 5002, 5003)
    # tests/support/province.py: commune n's officer has Telegram id 10_000_000 + 100 n + 1.
    officers = (10_000_001, 10_000_101)
    cpu = 9_000_001  # the province's child-protection unit, at the top of every chain
    for user in (*citizens, *officers, cpu):
        fake.add_user(user)
    try:
        async with telegram_app(db_url, clock, fake, province) as (app, plugin):
            world = TelegramWorld(fake, app, plugin, clock)
            a, b = province.communes
            await world.say(citizens[0], f"/start c-{a.official_code}")
            assert a.name in world.last(citizens[0]).text
            await world.press(citizens[0], "menu:report")
            await world.say(citizens[1], "/report")
            await world.say(citizens[1], without_marks(b.name))
            await world.say(citizens[2], "/report")
            # The question's reply keyboard has Telegram's share-location button.
            keyboard = world.last(citizens[2]).reply_markup or {}
            assert any(button.get("request_location") for row in keyboard.get("keyboard", [])
                       for button in row), keyboard
            lat, lon = village_point(1, 5)
            fake.user_location(citizens[2], lat - 0.003, lon + 0.001)
            await world.pump()
            assert b.name in fake.inbox(citizens[2])[-2].text
            for user in citizens:
                for data in ("danger:yes", "type:injury"):
                    await world.press(user, data)
                await world.say(user, "Thôn 1")  # a reply keyboard's button on Telegram
            codes = {officers[0]: [f"{a.code_prefix}-2026-0001"],
                     officers[1]: [f"{b.code_prefix}-2026-0001", f"{b.code_prefix}-2026-0002"]}
            for commune, officer in zip((a, b), officers, strict=True):
                for code in codes[officer]:
                    mine = [m for m in fake.inbox(officer) if code in m.text]
                    assert mine and any(d.startswith("case:ack:")
                                        for d in mine[0].callback_data), code
                other = (b if commune is a else a).code_prefix
                assert not [m for m in fake.inbox(officer) if f"{other}-2026" in m.text]
            async with app.database.read() as tx:
                by_location = await cases.case_by_code(tx, f"{b.code_prefix}-2026-0002")
            assert by_location is not None
            assert app.communes.of(by_location.commune_id).config.key == b.key

            # Nobody takes them: each climbs its commune's chain to the province, who
            # hears of all three (emergencies reach the top at once, not in a digest).
            for _ in range(16):
                clock.advance(timedelta(minutes=15))
                await world.pump()
            heard = " ".join(m.text for m in fake.inbox(cpu))
            assert all(code in heard for found in codes.values() for code in found), heard
            # The province's /stats: both communes, with their exact numbers.
            await world.say(cpu, f"/stats {clock.now().year}-Q{(clock.now().month + 2) // 3}")
            lines = next(m.text for m in fake.inbox(cpu) if "Số vụ của từng xã" in m.text)
            assert f"{a.name}: 1" in lines and f"{b.name}: 2" in lines, lines
    finally:
        await fake.stop()


async def test_on_zalo_a_shared_location_finds_the_commune(
        db_url: str, clock: FakeClock, province: ProvinceConfig) -> None:
    """Zalo's `user_send_location` on the commune question: the same path, B's commune."""
    a, b = province.communes
    h = await open_hook(db_url, clock, "3608465249409039", "3886132808788086",
                        "oa-secret-key-for-tests", config=province)
    user = "2468458835291979"
    try:
        await h.say(user, "#menu:report")
        asked = (await h.replies(user))[-1]
        assert [t["id"] for t in asked["texts"]] == ["commune.ask"]
        assert asked["request"] == "location"
        assert await h.users.share_location(user, *village_point(1, 8)) == 200
        await h.handle()
        chosen, danger = (await h.replies(user))[-2:]
        assert [t["id"] for t in chosen["texts"]] == ["commune.chosen"]
        assert chosen["texts"][0]["params"]["commune"] == b.name
        assert [t["id"] for t in danger["texts"]] == ["report.danger.prompt"]
        await h.say(user, "#danger:yes", "#type:injury", "#village:v8")
        async with h.app.database.read() as tx:
            case = await cases.case_by_code(tx, f"{b.code_prefix}-2026-0001")
        assert case is not None and h.app.communes.of(case.commune_id).config.key == b.key
        for n, commune in enumerate((a, b)):
            got = [r.payload["reply"] for r in await rows(
                h.app, "outbox", channel="web", address=phone(province, n, "officer"))]
            alerted = [r for r in got if any(t["id"] == "alert.new" for t in r["texts"])]
            assert len(alerted) == (1 if commune is b else 0), commune.key
    finally:
        await h.close()


async def test_the_provinces_own_staff_are_pointed_to_the_commune_to_report(
        two: Simulator, province: ProvinceConfig) -> None:
    cpu = two["province.cpu"]
    await cpu.tap("menu:report")
    answer = await cpu.last()
    assert answer["ids"][0] == "report.province_staff" and choice_ids(answer)
    async with two.app.database.read() as tx:
        assert await cases.case_by_id(tx, 1) is None


async def test_commune_commands_by_the_provinces_admin_get_a_kind_answer(
        two: Simulator, province: ProvinceConfig) -> None:
    admin = two["province.province_admin"]
    # (/calendar is the province's own calendar: tests/test_province_reminders.py.)
    for command in ("/broadcast Họp cộng tác viên", "/cases"):
        await admin.text(command)
        answer = await admin.last()
        assert answer["ids"][0] in ("province.commune_only", "cases.none"), (command, answer)
        assert choice_ids(answer), "never a dead end"


async def test_a_poster_of_another_commune_never_moves_staff(
        two: Simulator, province: ProvinceConfig) -> None:
    """An officer of A who opens B's poster (or taps a forged commune button) stays A's:
    a link must not make anyone part of another commune's team."""
    sim = two
    a, b = province.communes
    officer = sim[phone(province, 0, "officer")]
    await officer.text(f"/start c-{b.official_code}")
    assert (await officer.last())["ids"][0] == "commune.yours_stays"
    await officer.tap(f"commune:{b.official_code}")
    await officer.text("/commune")
    async with sim.app.database.read() as tx:
        ident = await people.identity(tx, "web", phone(province, 0, "officer"))
        assert ident is not None
        person = await people.person(tx, ident.person_id)
    assert person is not None and sim.app.communes.of(person.commune_id).config.key == a.key


async def test_someone_of_no_commune_yet_is_not_given_a_communes_officer(
        two: Simulator, province: ProvinceConfig) -> None:
    """Help for someone the province's bot has not placed: the hotlines, never the phone
    of a commune they may not live in; once placed, their own commune's officer."""
    sim = two
    walk_in = WalkIn(sim, "walk-in-help")
    await walk_in.say("choice", "menu:help")
    await walk_in.say("choice", "help:officer")
    (answer,) = [m for m in await sim["walk-in-help"].inbox()
                 if m["ids"][0].startswith("help.officer")]
    assert answer["ids"] == ["help.officer.none"] and "111" in answer["phones"]
    await walk_in.say("text", f"/start c-{province.communes[1].official_code}")
    await walk_in.say("choice", "menu:help")
    await walk_in.say("choice", "help:officer")
    (placed,) = [m for m in await sim["walk-in-help"].inbox()
                 if m["ids"][0].startswith("help.officer")]
    assert placed["ids"] == ["help.officer"]
    assert placed["phones"] == [province.communes[1].officer_phone]
