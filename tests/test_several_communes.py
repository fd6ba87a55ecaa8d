"""One person with roles in several communes (issue 14, item 4): a police officer covering
two communes is one account, each commune's alert reaches the same chat and names its
commune, and each action is checked against the case's commune. The province's own staff
see and act on every commune's cases. Through the simulator, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.config import ConfigError, load_province
from bot.domain.province import ProvinceConfig
from bot.services.directory import sync_province
from storage import cases, people
from tests.support.database import read
from tests.support.fake_telegram import FakeTelegram
from tests.support.province import commune_files, write_province
from tests.support.simulator import Simulator, WalkIn, choice_ids, simulator
from tests.support.telegram import TelegramWorld, telegram_app

# tests/support/province.py: commune n's on-duty police officer has Telegram id
# 10_000_000 + 100 n + 4.
POLICE_A, POLICE_B = 10_000_004, 10_000_104


@pytest.fixture
def province(tmp_path: Path) -> ProvinceConfig:
    """Two communes whose on-duty police officer is the same man (the same Telegram id
    in both files)."""
    path = write_province(tmp_path, communes=2)
    second = commune_files(tmp_path)[1]
    text = second.read_text(encoding="utf-8")
    assert f"telegram_id = {POLICE_B}\n" in text
    second.write_text(text.replace(f"telegram_id = {POLICE_B}\n",
                                   f"telegram_id = {POLICE_A}\n"), encoding="utf-8")
    return load_province(path)


@pytest.fixture
async def sim(db_url: str, clock: FakeClock,
              province: ProvinceConfig) -> AsyncIterator[Simulator]:
    async with simulator(db_url, clock, province) as found:
        yield found


def phone(province: ProvinceConfig, n: int, key: str) -> str:
    return f"{province.communes[n].key}.{key}"


async def police_rows(sim: Simulator, province: ProvinceConfig) -> tuple[int, int]:
    a, b = (sim.app.communes.by_code(str(c.official_code)) for c in province.communes)
    assert a is not None and b is not None
    async with sim.app.database.read() as tx:
        row_a = await people.person_by_key(tx, a.commune_id, "police")
        row_b = await people.person_by_key(tx, b.commune_id, "police")
    assert row_a is not None and row_b is not None
    return row_a.id, row_b.id


async def report_in(sim: Simulator, province: ProvinceConfig, n: int, who: str,
                    village: str = "v1") -> str:
    """A citizen of commune n reports a child hurt and in danger now; the case's code."""
    commune = province.communes[n]
    citizen = WalkIn(sim, who)
    await citizen.say("text", f"/start c-{commune.official_code}")
    for value in ("menu:report", "danger:yes", "type:injury", f"village:{village}"):
        await citizen.say("choice", value)
    return f"{commune.code_prefix}-2026-0001"


async def test_someone_named_in_two_commune_files_is_one_account(
        sim: Simulator, province: ProvinceConfig) -> None:
    row_a, row_b = await police_rows(sim, province)
    async with sim.app.database.read() as tx:
        a = await people.person(tx, row_a)
        b = await people.person(tx, row_b)
        own_a = await people.identities_for(tx, [row_a, row_b])
        telegram = await people.identity(tx, "telegram", str(POLICE_A))
    assert a is not None and b is not None
    assert a.account_id is None and b.account_id == row_a and b.account == a.account
    # The addresses are the account's: any row's message goes to the same chats.
    assert telegram is not None and telegram.person_id == row_a
    assert [i.external_id for i in own_a[row_b]] == [i.external_id for i in own_a[row_a]]
    assert {i.channel for i in own_a[row_a]} == {"web", "telegram"}
    # A restart changes nothing.
    async with sim.app.database.transaction() as tx:
        await sync_province(tx, province, sim.app.clock.now())
    async with sim.app.database.read() as tx:
        again = await people.person(tx, row_b)
        telegram = await people.identity(tx, "telegram", str(POLICE_A))
    assert again is not None and again.account_id == row_a
    assert telegram is not None and telegram.person_id == row_a


async def test_each_communes_alert_reaches_them_and_they_act_as_that_communes_police(
        sim: Simulator, province: ProvinceConfig) -> None:
    a, b = province.communes
    row_a, row_b = await police_rows(sim, province)
    code_a = await report_in(sim, province, 0, "walk-in-a")
    code_b = await report_in(sim, province, 1, "walk-in-b")
    police = sim[phone(province, 0, "police")]
    got = [m for m in await police.inbox(all_=True) if "alert.new" in m["ids"]]
    # Both communes' alerts, in the one chat, each naming its commune.
    assert len(got) == 2, [m["ids"] for m in got]
    by_code = {code: next(m for m in got if code in m["text"]) for code in (code_a, code_b)}
    assert f"({a.name})" in by_code[code_a]["text"]
    assert f"({b.name})" in by_code[code_b]["text"]
    case_b = await read(sim.app, cases.case_by_code, code_b)
    assert case_b is not None
    team = {m.person_id for m in await read(sim.app, cases.team_of, case_b.id)}
    assert row_b in team and row_a not in team

    # Taking B's case: they hold it as B's police, and the audit names that row.
    await police.tap(f"case:ack:{case_b.id}")
    assert (await police.last())["ids"][0] == "case.you_took"
    taken = await read(sim.app, cases.case_by_id, case_b.id)
    assert taken is not None and taken.assignee_id == row_b
    events = await read(sim.app, cases.case_events, case_b.id)
    assert any(e.action == "acknowledged" and e.actor_id == row_b for e in events)

    # Handing B's case over offers B's colleagues, never A's.
    await police.tap(f"case:handover:{case_b.id}")
    offered = [c for c in choice_ids(await police.last()) if c.startswith("person:")]
    assert offered
    rows = await read(sim.app, people.people_by_id, [int(c.split(":")[1]) for c in offered])
    assert {p.commune_id for p in rows.values()} == {case_b.commune_id}
    await police.tap("cancel")

    # Their lists have both communes' cases: each was routed to them, in its commune.
    await police.text("/cases")
    listed = (await police.last())["text"]
    assert code_a in listed and code_b in listed
    await police.tap("menu:my_cases")
    mine = (await police.last())["text"]
    assert code_a in mine and code_b in mine


async def test_someone_of_one_commune_only_is_still_refused_the_other(
        sim: Simulator, province: ProvinceConfig) -> None:
    code_b = await report_in(sim, province, 1, "walk-in-b")
    case_b = await read(sim.app, cases.case_by_code, code_b)
    assert case_b is not None
    officer_a = sim[phone(province, 0, "officer")]
    await officer_a.tap(f"case:ack:{case_b.id}")
    assert (await officer_a.last())["ids"] == ["case.not_allowed"]
    fresh = await read(sim.app, cases.case_by_id, case_b.id)
    assert fresh is not None and fresh.assignee_id is None


async def test_the_provinces_staff_see_and_act_on_every_communes_cases(
        sim: Simulator, province: ProvinceConfig) -> None:
    code_a = await report_in(sim, province, 0, "walk-in-a")
    code_b = await report_in(sim, province, 1, "walk-in-b")
    cpu = sim["province.cpu"]
    await cpu.text("/cases")
    listed = (await cpu.last())["text"]
    assert code_a in listed and code_b in listed
    case_b = await read(sim.app, cases.case_by_code, code_b)
    assert case_b is not None
    await cpu.tap(f"case:view:{case_b.id}")
    card = await cpu.last()
    assert card["ids"][0] == "case.card" and code_b in card["text"]
    cpu_id = (await read(sim.app, people.identity, "web", "province.cpu"))
    assert cpu_id is not None
    events = await read(sim.app, cases.case_events, case_b.id)
    assert any(e.action == "viewed" and e.actor_id == cpu_id.person_id for e in events)


async def test_staff_of_one_commune_invited_into_another_keep_both_roles(
        sim: Simulator, province: ProvinceConfig) -> None:
    b = province.communes[1]
    admin = sim["province.province_admin"]
    await admin.text(f"/invite police {b.name}")
    made = await admin.last()
    assert made["ids"] == ["invite.created"], made
    code = made["text"].split("\n")[1].strip()
    officer = sim[phone(province, 0, "officer2")]
    await officer.text(f"/start {code}")
    answers = [i for m in await officer.inbox() for i in m["ids"]]
    assert "invite.joined_also" in answers and "invite.joined" not in answers
    ident = await read(sim.app, people.identity, "web", phone(province, 0, "officer2"))
    assert ident is not None
    async with sim.app.database.read() as tx:
        rows = await people.rows_of_account(tx, ident.person_id)
    assert [(sim.app.communes.of(r.commune_id).config.key, r.role) for r in rows] == [
        (province.communes[0].key, "officer"), (b.key, "police")]
    # Their new commune's cases are theirs to see now.
    code_b = await report_in(sim, province, 1, "walk-in-b")
    await officer.text("/cases")
    assert code_b in (await officer.last())["text"]


def test_one_person_twice_in_one_commune_file_is_refused(tmp_path: Path) -> None:
    path = write_province(tmp_path, communes=1)
    first = commune_files(tmp_path)[0]
    text = first.read_text(encoding="utf-8")
    first.write_text(text.replace("telegram_id = 10000004\n", "telegram_id = 10000001\n"),
                     encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_province(path)
    message = str(refused.value)
    assert "\n" not in message and "telegram_id 10000001" in message
    assert "police" in message and "officer" in message


async def test_a_case_without_a_village_still_names_its_commune(
        sim: Simulator, province: ProvinceConfig) -> None:
    """Someone of several communes must know whose case an alert is, also when the
    reporter named a place that is no village."""
    b = province.communes[1]
    citizen = WalkIn(sim, "walk-in-b")
    await citizen.say("text", f"/start c-{b.official_code}")
    for value in ("menu:report", "danger:yes", "type:injury"):
        await citizen.say("choice", value)
    await citizen.say("text", "Chợ đầu cầu")
    police = sim[phone(province, 0, "police")]
    (alert,) = [m for m in await police.inbox(all_=True) if "alert.new" in m["ids"]]
    assert f"Chợ đầu cầu ({b.name})" in alert["text"]
    await police.text("/cases")
    assert f"({b.name})" in (await police.last())["text"]


async def test_on_telegram_both_communes_alerts_reach_the_one_chat(
        db_url: str, clock: FakeClock, province: ProvinceConfig) -> None:
    """Over the fake Bot API: one Telegram chat gets each commune's alert, and its take
    button on B's alert makes B's police officer the case's holder."""
    fake = FakeTelegram()
    await fake.start()
    citizens = (5001, 5002)
    for user in (*citizens, POLICE_A):
        fake.add_user(user)
    try:
        async with telegram_app(db_url, clock, fake, province) as (app, plugin):
            world = TelegramWorld(fake, app, plugin, clock)
            for user, commune in zip(citizens, province.communes, strict=True):
                await world.say(user, f"/start c-{commune.official_code}")
                await world.press(user, "menu:report")
                for data in ("danger:yes", "type:injury"):
                    await world.press(user, data)
                await world.say(user, "Thôn 1")
            a, b = province.communes
            got = [m for m in fake.inbox(POLICE_A) if "2026-0001" in m.text]
            assert [m for m in got if f"{a.code_prefix}-2026-0001" in m.text]
            (alert_b,) = [m for m in got if f"{b.code_prefix}-2026-0001" in m.text
                          and any(d.startswith("case:ack:") for d in m.callback_data)]
            assert f"({b.name})" in alert_b.text
            take = next(d for d in alert_b.callback_data if d.startswith("case:ack:"))
            await world.press(POLICE_A, take)
            async with app.database.read() as tx:
                case = await cases.case_by_code(tx, f"{b.code_prefix}-2026-0001")
                holder = await people.person(tx, case.assignee_id or 0) if case else None
            assert holder is not None and holder.account_id is not None
            assert app.communes.of(holder.commune_id).config.key == b.key
    finally:
        await fake.stop()


async def test_a_leader_of_two_communes_reads_each_ones_statistics(
        tmp_path: Path, db_url: str, clock: FakeClock) -> None:
    """Statistics are read commune by commune, where the person's role there allows: the
    leader of both gets both communes' reports, each naming its commune and its own
    count; the police officer of both (no statistics for the police) gets neither."""
    path = write_province(tmp_path, communes=2)
    second = commune_files(tmp_path)[1]
    text = second.read_text(encoding="utf-8")
    # Commune n's vice-chairman (leader) has Telegram id 10_000_000 + 100 n + 7.
    assert "telegram_id = 10000107\n" in text
    second.write_text(text.replace("telegram_id = 10000107\n", "telegram_id = 10000007\n"),
                      encoding="utf-8")
    province = load_province(path)
    async with simulator(db_url, clock, province) as sim:
        await report_in(sim, province, 1, "walk-in-b")
        leader = sim[phone(province, 0, "leader")]
        await leader.text("/stats 2026-11")
        tables = [m for m in await leader.inbox() if m["ids"][:1] == ["stats.chat.title"]]
        assert [province.communes[0].name in tables[0]["text"],
                province.communes[1].name in tables[1]["text"]] == [True, True], tables
        assert "stats.chat.no_cases" in tables[0]["ids"]
        assert "stats.chat.summary" in tables[1]["ids"]
        police = sim[phone(province, 0, "police")]
        await police.text("/stats 2026-11")
        assert (await police.last())["ids"] == ["stats.not_allowed"]
