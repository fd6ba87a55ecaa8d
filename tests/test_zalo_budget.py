"""Zalo's messaging window is a budget (8 replies within 48 hours of the person's last
message): the fake Zalo enforces it, and the bot spends none of it twice. Over the fake's
HTTP API and our webhook, end to end."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterable
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from bot import i18n
from bot.clock import FakeClock
from bot.handlers.zalo.inbound import CHOICE_PREFIX, KEEP_WINDOW
from storage import people
from tests.support.database import read
from tests.support.fake_zalo import FakeZalo
from tests.support.zalo import CITIZEN, ZaloWorld, make_world
from tests.support.zalo import TELEGRAM_STAFF as TELEGRAM
from tests.support.zalo import ZALO_STAFF as ZALO
from tests.support.zalo import zalo_choices as choices

KEEP = CHOICE_PREFIX + KEEP_WINDOW
TAKEN = i18n.t("case.taken_by", "vi", code="VT-2026-0001", name="Anh Tuấn (Công an xã)")
YOU_TOOK = i18n.t("case.you_took", "vi", code="VT-2026-0001")


@pytest.fixture
async def on_zalo(db_url: str, clock: FakeClock) -> AsyncIterator[ZaloWorld]:
    world = await make_world(db_url, clock, "zalo")
    yield world
    await world.close()


def repeated(w: ZaloWorld, users: Iterable[str] = ZALO.values()) -> dict[str, list[str]]:
    """Per staff member, every text they were sent more than once (should be nobody). The
    staff: what reaches them is mostly unasked for, each message spends their window. (A
    reporter ticking several case types gets the same question again with new ticks: an
    answer to their tap, which costs nothing; the report flow's business.)"""
    found: dict[str, list[str]] = {}
    for user in users:
        twice = [t for t, n in Counter(m.text for m in w.fake.sent_to(user)).items() if n > 1]
        if twice:
            found[user] = twice
    return found


# ---- the fake Zalo keeps the budget ------------------------------------------------------


async def test_the_fake_allows_eight_replies_within_48_hours_of_the_last_message(
        clock: FakeClock) -> None:
    fake = FakeZalo(now=clock.now)
    await fake.start()
    tokens = [fake.authorise()[0]]
    user = "7001000000000000042"

    async def send(http: aiohttp.ClientSession, text: str) -> dict[str, Any]:
        async with http.post(f"{fake.base_url}/v3.0/oa/message/cs",
                             headers={"access_token": tokens[-1]},
                             json={"recipient": {"user_id": user},
                                   "message": {"text": text}}) as resp:
            assert resp.status == 200  # Zalo's refusals are HTTP 200 with error != 0
            body: dict[str, Any] = await resp.json()
            return body

    try:
        async with aiohttp.ClientSession() as http:
            fake.open_window(user)  # the user wrote
            answers = [await send(http, f"tin {n}") for n in range(9)]
            assert [a["error"] for a in answers] == [0] * 8 + [-232]
            assert [m.text for m in fake.sent_to(user)] == [f"tin {n}" for n in range(8)]
            # Writing again gives eight more...
            clock.advance(timedelta(hours=1))
            fake.open_window(user)
            assert [(await send(http, f"lại {n}"))["error"] for n in range(3)] == [0, 0, 0]
            # ...for 48 hours only.
            clock.advance(timedelta(hours=48))
            tokens.append(fake.authorise()[0])  # the old access token has expired
            assert (await send(http, "muộn"))["error"] == -230
            assert fake.refused == [(user, -232), (user, -230)]
    finally:
        await fake.stop()


# ---- a taken case: each person told once ---------------------------------------------------


async def test_a_taken_case_is_told_once_and_the_taker_hears_only_that_he_took_it(
        on_zalo: ZaloWorld) -> None:
    w = on_zalo
    officer, police = ZALO["officer"], ZALO["police"]
    await w.report(CITIZEN, "Bố đánh bé bằng roi, bé chạy sang nhà hàng xóm.")
    await w.press(police, "case:ack:1")
    # The officer: one message says who took it, and it carries the case's buttons.
    told = [m for m in w.fake.sent_to(officer) if "VT-2026-0001" in m.text
            and "Anh Tuấn" in m.text]
    assert [m.text for m in told] == [TAKEN]
    assert "case:assess:1" in choices(told)
    # The police officer who took it: "you took it", never himself in the third person.
    got = w.latest(police)
    assert [m.text for m in got] == [YOU_TOOK]
    assert not [m for m in w.fake.sent_to(police) if "Anh Tuấn" in m.text]
    assert repeated(w) == {}


# ---- the window running low ---------------------------------------------------------------


async def test_ten_alerts_in_a_day_to_an_officer_on_zalo_alone_all_arrive(
        on_zalo: ZaloWorld) -> None:
    """Ten reports come in one morning; the officer and the police officer, on Zalo only,
    read them but do not answer, except for the one tap they are asked for when their
    window runs low. Every alert arrives, Zalo refuses nothing, nobody gets a text twice;
    later the officer takes a case and the police officer is told once."""
    w = on_zalo
    staff = (ZALO["officer"], ZALO["police"])
    asked: Counter[str] = Counter()
    for n in range(1, 11):
        citizen = f"70010000000001{n:05d}"
        await w.report(citizen, f"Bé trai ở xóm {n} bị bố đánh bằng roi nhiều lần.")
        ask = [user for user in staff if any(KEEP in m.payloads for m in w.latest(user))]
        for user in ask:
            asked[user] += 1
            w.begin()
            await w.act(await w.fake.users.press(user, KEEP))
            # The tap opens the window again and costs nothing: no answer.
            assert w.latest(user) == []
        w.clock.advance(timedelta(minutes=2))
    assert w.fake.refused == []
    for user in staff:
        alerts = [m for m in w.fake.sent_to(user) if any(
            p.startswith("#case:ack:") for p in m.payloads)]
        codes = [f"VT-2026-{n:04d}" for n in range(1, 11)]
        assert [next(c for c in codes if c in m.text) for m in alerts] == codes, user
        # Asked once per window, never with a message of its own.
        assert asked[user] == 1
        assert all(m.payloads != [KEEP] for m in w.fake.sent_to(user))
        assert len(w.fake.sent_to(user)) == 10
    await w.press(ZALO["officer"], "case:ack:1")
    assert [m.text for m in w.latest(ZALO["officer"])] == [YOU_TOOK]
    assert [m.text for m in w.latest(ZALO["police"])] == [i18n.t(
        "case.taken_by", "vi", code="VT-2026-0001", name="Anh Hòa (cán bộ Văn hóa - Xã hội)")]
    assert w.fake.refused == []
    assert repeated(w) == {}


async def test_without_the_tap_the_window_closes_and_the_case_climbs(
        on_zalo: ZaloWorld) -> None:
    """An officer who does not tap: Zalo refuses the ninth message, the bot stops writing
    there and the case goes up the chain at once (what an unreachable officer means)."""
    w = on_zalo
    officer = ZALO["officer"]
    for n in range(1, 10):
        await w.report(f"70010000000002{n:05d}", f"Bé gái ở xóm {n} bị đánh nhiều lần.")
    assert (officer, -232) in w.fake.refused
    assert len(w.fake.sent_to(officer)) == 8
    ident = await read(w.app, people.identity, "zalo", officer)
    assert ident is not None and ident.unreachable_at is not None
    # The ninth case reached the next level instead.
    assert any("#case:ack:9" in m.payloads for m in w.fake.sent_to(ZALO["officer2"]))


async def test_the_other_channel_takes_over_when_zalo_runs_low(db_url: str,
                                                               clock: FakeClock) -> None:
    """Staff on Zalo and Telegram who prefer Zalo: once six messages went there unanswered,
    alerts go to Telegram (no tap asked for); writing on Zalo brings them back."""
    w = await make_world(db_url, clock, "both", prefers={"officer": "zalo"})
    try:
        assert w.tg is not None
        officer = ZALO["officer"]
        await w.say(officer, "/start")
        sent = len(w.fake.sent_to(officer))
        for n in range(1, 8):
            await w.report(f"70010000000003{n:05d}", f"Bé ở xóm {n} bị đánh nhiều lần.")
        on_zalo = [m for m in w.fake.sent_to(officer)[sent:] if "#case:ack:" in
                   " ".join(m.payloads)]
        assert len(on_zalo) == 6 - sent
        assert not [m for m in w.fake.sent_to(officer) if KEEP in m.payloads]
        tg_alerts = [m for m in w.tg.inbox(TELEGRAM["officer"])
                     if any(d.startswith("case:ack:") for d in m.callback_data)]
        assert len(tg_alerts) == 7 - len(on_zalo)
        assert w.fake.refused == []
        await w.say(officer, "/start")
        await w.report("7001000000000300099", "Lại có bé bị đánh ở xóm bên.")
        assert "case:ack:8" in choices(w.latest(officer))
    finally:
        await w.close()
