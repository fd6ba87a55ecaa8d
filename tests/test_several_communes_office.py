"""A commune's own commands for someone who works in several communes (issue 14, item 4):
an admin or leader of two communes broadcasts, invites, prints a poster and keeps the
calendar of the commune they name or pick, never of the first one by chance; what they
typed waits while they pick. Through the simulator and the fake Bot API, on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.config import load_province
from bot.domain.province import ProvinceConfig
from storage import calendar
from tests.support.database import rows
from tests.support.fake_telegram import FakeTelegram
from tests.support.province import commune_files, write_province
from tests.support.simulator import Simulator, choice_ids, simulator
from tests.support.telegram import TelegramWorld, telegram_app

# tests/support/province.py: commune n's people have Telegram ids 10_000_000 + 100 n + k;
# the vice-chairman (leader) is k = 7, the commune's admin k = 9.
LEADER, ADMIN = 10_000_007, 10_000_009


@pytest.fixture
def province(tmp_path: Path) -> ProvinceConfig:
    """Two communes with the same leader and the same admin (one Telegram id each)."""
    path = write_province(tmp_path, communes=2)
    second = commune_files(tmp_path)[1]
    text = second.read_text(encoding="utf-8")
    for own in (LEADER, ADMIN):
        assert f"telegram_id = {own + 100}\n" in text
        text = text.replace(f"telegram_id = {own + 100}\n", f"telegram_id = {own}\n")
    second.write_text(text, encoding="utf-8")
    return load_province(path)


@pytest.fixture
async def sim(db_url: str, clock: FakeClock,
              province: ProvinceConfig) -> AsyncIterator[Simulator]:
    async with simulator(db_url, clock, province) as found:
        yield found


def phone(province: ProvinceConfig, n: int, key: str) -> str:
    return f"{province.communes[n].key}.{key}"


def commune_id(sim: Simulator, province: ProvinceConfig, n: int) -> int:
    found = sim.app.communes.by_code(str(province.communes[n].official_code))
    assert found is not None
    return found.commune_id


async def invites_of(sim: Simulator) -> list[tuple[int, str, int | None]]:
    return [(r.commune_id, r.role, r.village_id) for r in await rows(sim.app, "invites")]


async def test_an_admin_of_two_communes_is_asked_which_and_invites_there(
        sim: Simulator, province: ProvinceConfig) -> None:
    a, b = province.communes
    admin = sim[phone(province, 0, "admin")]
    await admin.text("/invite officer")
    asked = await admin.last()
    assert asked["ids"] == ["place.which"]
    # One button per commune of theirs, and a way out.
    assert choice_ids(asked) == [f"place:{a.official_code}", f"place:{b.official_code}",
                                 "cancel"]
    assert await invites_of(sim) == [], "nothing is made before they pick"
    await admin.tap(f"place:{b.official_code}")
    made = await admin.last()
    assert made["ids"][:1] == ["invite.created"] and b.name in made["text"], made
    assert await invites_of(sim) == [(commune_id(sim, province, 1), "officer", None)]
    # Named in the command, with a village: no question, and the village is B's.
    await admin.text(f"/invite collaborator {a.name} Thôn 3")
    made = await admin.last()
    assert made["ids"][:1] == ["invite.created"] and a.name in made["text"], made
    village = sim.app.communes.of(commune_id(sim, province, 0)).village_ids["v3"]
    assert (await invites_of(sim))[-1] == (commune_id(sim, province, 0), "collaborator",
                                           village)


async def test_a_leader_of_two_communes_broadcasts_to_the_one_they_pick(
        sim: Simulator, province: ProvinceConfig) -> None:
    """The text typed with /broadcast waits while they pick; only B's collaborators get it,
    and the broadcast is B's."""
    leader = sim[phone(province, 0, "leader")]
    await leader.text("/broadcast Họp thôn lúc 8 giờ sáng mai")
    asked = await leader.last()
    assert asked["ids"] == ["place.which"]
    await leader.tap(f"place:{province.communes[1].official_code}")
    confirm = await leader.last()
    assert "Họp thôn lúc 8 giờ sáng mai" in confirm["text"], confirm
    assert "broadcast:send" in choice_ids(confirm)
    await leader.tap("broadcast:send")
    await sim.advance(1)
    got_b = [m for m in await sim[phone(province, 1, "ctv1_1")].inbox(all_=True)
             if "broadcast.message" in m["ids"]]
    got_a = [m for m in await sim[phone(province, 0, "ctv1_1")].inbox(all_=True)
             if "broadcast.message" in m["ids"]]
    assert len(got_b) == 1 and province.communes[1].name in got_b[0]["text"]
    assert got_a == []


async def test_the_calendar_is_the_named_communes(
        sim: Simulator, province: ProvinceConfig) -> None:
    """/calendar lists the commune picked; a pause naming B pauses B's event, not A's."""
    a_id, b_id = commune_id(sim, province, 0), commune_id(sim, province, 1)
    leader = sim[phone(province, 0, "leader")]
    await leader.text("/calendar")
    assert (await leader.last())["ids"] == ["place.which"]
    await leader.tap(f"place:{province.communes[1].official_code}")
    listing = await leader.last()
    assert listing["ids"][0] == "calendar.list.head"
    assert province.communes[1].name in listing["text"]
    async with sim.app.database.read() as tx:
        key = (await calendar.events_of(tx, b_id))[0].key
    admin = sim[phone(province, 0, "admin")]
    await admin.text(f"/calendar {province.communes[1].name} pause {key}")
    async with sim.app.database.read() as tx:
        b_event = await calendar.event_by_key(tx, b_id, key)
        a_event = await calendar.event_by_key(tx, a_id, key)
    assert b_event is not None and b_event.paused
    assert a_event is not None and not a_event.paused


async def test_the_police_of_two_communes_still_may_not_broadcast(
        tmp_path: Path, db_url: str, clock: FakeClock) -> None:
    """A role that may not broadcast in either commune is refused, not asked which."""
    path = write_province(tmp_path, communes=2)
    second = commune_files(tmp_path)[1]
    text = second.read_text(encoding="utf-8")
    second.write_text(text.replace("telegram_id = 10000104\n", "telegram_id = 10000004\n"),
                      encoding="utf-8")
    province = load_province(path)
    async with simulator(db_url, clock, province) as found:
        police = found[phone(province, 0, "police")]
        await police.text("/broadcast Họp thôn")
        assert (await police.last())["ids"] == ["broadcast.not_allowed"]


async def test_on_telegram_an_admin_of_two_communes_prints_the_picked_ones_poster(
        db_url: str, clock: FakeClock, province: ProvinceConfig) -> None:
    fake = FakeTelegram()
    await fake.start()
    fake.add_user(ADMIN)
    b = province.communes[1]
    try:
        async with telegram_app(db_url, clock, fake, province) as (app, plugin):
            world = TelegramWorld(fake, app, plugin, clock)
            await world.say(ADMIN, "/poster")
            asked = world.last(ADMIN)
            assert f"place:{b.official_code}" in asked.callback_data
            await world.press(ADMIN, f"place:{b.official_code}")
            sent = world.last(ADMIN)
            assert sent.media is not None and sent.media[0] == "document"
            assert f"start=c-{b.official_code}" in sent.text and b.name in sent.text
    finally:
        await fake.stop()
