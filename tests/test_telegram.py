"""The bot on Telegram against the fake Bot API server: python-telegram-bot over real HTTP."""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.app import Engine, build_engine
from bot.clock import FakeClock
from bot.config import DEMO_CONFIG, parse_commune
from bot.handlers.telegram import (
    TelegramAdapter,
    TelegramChannel,
    TelegramPoller,
    make_application,
)
from storage import repo
from tests.fake_telegram import TOKEN, FakeTelegram, Sent

CITIZEN, OFFICER, POLICE, OFFICER2, CHIEF = 5001, 5002, 5003, 5004, 5005
ADMIN, NEWCOMER, LATECOMER = 5006, 5007, 5008
IDS = {"officer": OFFICER, "police": POLICE, "officer2": OFFICER2, "police_chief": CHIEF,
       "admin": ADMIN}


class TelegramWorld:
    def __init__(self, fake: FakeTelegram, engine: Engine, poller: TelegramPoller,
                 clock: FakeClock) -> None:
        self.fake, self.engine, self.poller, self.clock = fake, engine, poller, clock

    async def pump(self) -> None:
        """A person takes a couple of seconds per tap: move the clock, fetch and handle
        every pending update, then deliver what is due."""
        self.clock.advance(timedelta(seconds=2))
        while self.fake.updates and await self.poller.poll_once():
            pass
        while await self.engine.outbox.deliver_due() or await self.engine.sweeper.fire_due():
            pass

    async def say(self, user: int, text: str) -> None:
        self.fake.user_text(user, text)
        await self.pump()

    async def press(self, user: int, data: str) -> None:
        self.fake.press(user, data)
        await self.pump()

    def last(self, user: int) -> Sent:
        return self.fake.inbox(user)[-1]


@pytest.fixture
async def world(db_url: str, clock: FakeClock) -> AsyncIterator[TelegramWorld]:
    fake = FakeTelegram(now=lambda: clock.now().timestamp())
    await fake.start()
    for user in (CITIZEN, OFFICER, POLICE, OFFICER2, CHIEF, ADMIN, NEWCOMER, LATECOMER):
        fake.add_user(user)
    raw = tomllib.loads(DEMO_CONFIG.read_text(encoding="utf-8"))
    for person in raw["people"]:
        if person["key"] in IDS:
            person["telegram_id"] = IDS[person["key"]]
    application = make_application(TOKEN, base_url=fake.base_url, read_timeout=2.0)
    await application.initialize()
    engine = await build_engine(db_url, parse_commune(raw), clock,
                                {"telegram": TelegramChannel(application.bot)})
    poller = TelegramPoller(TelegramAdapter(application, engine.conversations), long_poll=0)
    engine.conversations.invites.links["telegram"] = (
        f"https://t.me/{application.bot.username}?start=")
    yield TelegramWorld(fake, engine, poller, clock)
    await engine.close()
    await application.shutdown()
    await fake.stop()


async def test_story_over_telegram(world: TelegramWorld) -> None:
    w = world
    await w.say(CITIZEN, "/start")
    assert "menu:report" in w.last(CITIZEN).callback_data
    for data in ("menu:report", "danger:no", "type:sexual_abuse", "types:done"):
        await w.press(CITIZEN, data)
    # The where step asks for a location with a reply keyboard: share one.
    assert w.last(CITIZEN).reply_markup and "keyboard" in w.last(CITIZEN).reply_markup
    w.fake.user_location(CITIZEN, 19.81, 105.77)
    await w.pump()
    for data in ("age:11-15", "sex:girl", "skip", "count:1"):
        await w.press(CITIZEN, data)
    await w.say(CITIZEN, "Một người lạ nhiều lần chờ bé ở cổng trường.")
    for data in ("photos:done", "contact:anonymous", "confirm"):
        await w.press(CITIZEN, data)
    assert "VT-2026-0001" in w.last(CITIZEN).text

    officer_alert, police_alert = w.last(OFFICER), w.last(POLICE)
    for alert in (officer_alert, police_alert):
        assert "VT-2026-0001" in alert.text and "cổng trường" in alert.text
        assert "case:ack:1" in alert.callback_data
        assert all(len(d.encode()) <= 64 for d in alert.callback_data)
    # Every button press was answered, so no spinner is left turning.
    assert len(w.fake.answered) == 11

    # A citizen who forges an officer's button gets a polite refusal; nothing changes.
    w.fake.forge(CITIZEN, "case:ack:1", w.last(CITIZEN))
    await w.pump()
    assert "chỉ dành cho" in w.last(CITIZEN).text

    await w.press(POLICE, "case:ack:1")
    assert "VT-2026-0001" in w.last(POLICE).text
    assert "Anh Tuấn" in w.last(OFFICER).text
    # Every copy of the alert now says who took it and has lost its acknowledge button.
    for alert in (officer_alert, police_alert):
        assert len(alert.edits) == 1 and "case:ack:1" not in alert.callback_data
        assert "case:assess:1" in alert.callback_data
        assert "Anh Tuấn" in alert.text and "cổng trường" in alert.text
    # A late press on the officer's (stale) copy changes nothing.
    w.fake.forge(OFFICER, "case:ack:1", officer_alert)
    await w.pump()
    assert "Anh Tuấn" in w.last(OFFICER).text

    await w.press(OFFICER, "case:assess:1")
    for data in ("risk:high",):
        await w.press(OFFICER, data)
    await w.say(OFFICER, "Đã báo nhà trường và công an.")
    await w.press(OFFICER, "form:sexual_abuse")
    await w.press(OFFICER, "setting:school")
    await w.press(OFFICER, "case:close:1")
    await w.press(OFFICER, "outcome:referred")

    await w.say(CITIZEN, "/status")
    await w.say(CITIZEN, "VT-2026-0001")
    status = w.last(CITIZEN).text
    assert "VT-2026-0001" in status and "cổng trường" not in status
    async with w.engine.sessions() as s:
        case = await repo.case_by_code(s, "VT-2026-0001")
    assert case is not None and case.status == "closed" and case.setting == "school"


async def test_update_delivered_twice_is_handled_once(world: TelegramWorld) -> None:
    w = world
    w.fake.user_text(CITIZEN, "/start")
    duplicate = dict(w.fake.updates[-1])
    await w.pump()
    # Telegram redelivers the same update (e.g. our confirmation was lost).
    w.fake.updates.append(duplicate)
    await w.pump()
    assert len(w.fake.inbox(CITIZEN)) == 1


async def test_faults_429_then_5xx_then_blocked(world: TelegramWorld, clock: FakeClock) -> None:
    w = world
    # Two answers for one chat in the same instant: the second gets 429 and waits.
    w.fake.per_chat_burst = 1
    w.fake.user_text(CITIZEN, "/start")
    w.fake.user_text(CITIZEN, "/lang")
    await w.pump()
    assert w.fake.rejected_429 == 1 and len(w.fake.inbox(CITIZEN)) == 1
    await w.pump()
    assert len(w.fake.inbox(CITIZEN)) == 2
    w.fake.sent.clear()

    w.fake.fail_next.extend([500, 502])
    w.fake.user_text(CITIZEN, "/help")
    await w.pump()
    assert w.fake.inbox(CITIZEN) == []
    for _ in range(5):
        clock.advance(timedelta(seconds=10))
        await w.pump()
    assert len(w.fake.inbox(CITIZEN)) == 1

    # A person who blocked the bot is marked unreachable on Telegram.
    w.fake.blocked.add(CITIZEN)
    await w.say(CITIZEN, "/help")
    async with w.engine.sessions() as s:
        ident = await repo.identity(s, "telegram", str(CITIZEN))
    assert ident is not None and ident.unreachable_at is not None


async def test_forged_callback_changes_nothing(world: TelegramWorld) -> None:
    w = world
    await w.say(CITIZEN, "/start")
    # A citizen forges an officer's button on a message of their own.
    w.fake.forge(CITIZEN, "case:close:1", w.last(CITIZEN))
    await w.pump()
    assert "không còn dùng được" in w.last(CITIZEN).text
    w.fake.forge(CITIZEN, "x" * 64, w.last(CITIZEN))
    await w.pump()
    assert "không hiểu" in w.last(CITIZEN).text or "chọn" in w.last(CITIZEN).text
    async with w.engine.sessions() as s:
        assert await repo.case_by_id(s, 1) is None


async def test_webhook_checks_the_secret_and_stores_before_answering(
        world: TelegramWorld) -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestServer
    from sqlalchemy import func, select

    from bot.handlers.telegram import TelegramWebhook, webhook_secret
    from bot.handlers.web import make_app
    from storage.models import InboundKey

    w = world
    hook = TelegramWebhook(w.poller.adapter, webhook_secret(TOKEN, None))
    server = TestServer(make_app(w.engine, [web.post("/telegram/webhook", hook.handle)]),
                        host="127.0.0.1")
    await server.start_server()
    try:
        await hook.register(str(server.make_url("/telegram/webhook")))
        update_id = w.fake.user_text(CITIZEN, "/start")
        assert await w.fake.post_webhook(update_id, secret="wrong-secret") == 403
        assert await w.fake.post_webhook(update_id, secret="") == 403
        async with w.engine.sessions() as s:
            assert await s.scalar(select(func.count()).select_from(InboundKey)) == 0
        duplicate = dict(w.fake.updates[-1])
        assert await w.fake.post_webhook(update_id) == 200
        # Telegram retries the same update (say our 200 was lost): handled once.
        assert await w.fake.post_webhook(body=duplicate) == 200
        await w.pump()
        assert len(w.fake.inbox(CITIZEN)) == 1
        async with w.engine.sessions() as s:
            assert await s.scalar(select(func.count()).select_from(InboundKey)) == 1
    finally:
        await server.close()


async def test_blocked_officer_hands_the_alert_up_the_chain_at_once(
        world: TelegramWorld) -> None:
    w = world
    w.fake.blocked.add(OFFICER)
    await w.say(CITIZEN, "/start")
    for data in ("menu:report", "danger:no", "type:violence", "types:done"):
        await w.press(CITIZEN, data)
    await w.say(CITIZEN, "Thôn Tây")
    for data in ("age:6-10", "sex:boy", "skip", "count:1"):
        await w.press(CITIZEN, data)
    await w.say(CITIZEN, "Bố đánh bé bằng roi, bé chạy sang nhà hàng xóm.")
    for data in ("photos:done", "contact:anonymous", "confirm"):
        await w.press(CITIZEN, data)
    assert w.fake.inbox(OFFICER) == []
    assert "case:ack:1" in w.last(POLICE).callback_data
    # No deadline has passed, yet level 2 already has it: the on-duty officer is unreachable.
    for user in (OFFICER2, CHIEF):
        assert "case:ack:1" in w.last(user).callback_data
    async with w.engine.sessions() as s:
        case = await repo.case_by_id(s, 1)
        ident = await repo.identity(s, "telegram", str(OFFICER))
    assert case is not None and case.escalation_level == 2
    assert ident is not None and ident.unreachable_at is not None


async def test_invite_link_binds_a_collaborator_who_reports_with_village_prefilled(
        world: TelegramWorld) -> None:
    w = world
    await w.say(CITIZEN, "/invite collaborator Thôn Tây")
    assert "chỉ" in w.last(CITIZEN).text.casefold()  # only an admin may invite
    await w.say(ADMIN, "/invite collaborator Thôn Tây")
    text = w.last(ADMIN).text
    link = next(word for word in text.split() if word.startswith("https://t.me/"))
    assert link.startswith("https://t.me/safechild_bot?start=")
    code = link.split("start=", 1)[1]
    assert 1 <= len(code) <= 64

    await w.say(NEWCOMER, f"/start {code}")
    async with w.engine.sessions() as s:
        ident = await repo.identity(s, "telegram", str(NEWCOMER))
        assert ident is not None
        person = await repo.person(s, ident.person_id)
    assert person is not None and person.role == "collaborator"
    assert person.village_id == w.engine.directory.village_ids["tay"]

    # Single use: the same link does nothing for someone else.
    await w.say(LATECOMER, f"/start {code}")
    assert "không dùng được" in w.fake.inbox(LATECOMER)[0].text

    # The new collaborator reports: after the case types, the bot skips the village.
    for data in ("menu:report", "danger:no", "type:child_marriage", "types:done"):
        await w.press(NEWCOMER, data)
    assert "age:11-15" in w.last(NEWCOMER).callback_data
    for data in ("age:16-17", "sex:girl", "skip", "count:1"):
        await w.press(NEWCOMER, data)
    await w.say(NEWCOMER, "Gia đình định cho em lấy chồng tháng sau.")
    for data in ("photos:done", "contact:anonymous", "confirm"):
        await w.press(NEWCOMER, data)
    async with w.engine.sessions() as s:
        case = await repo.case_by_id(s, 1)
    assert case is not None and case.village_id == w.engine.directory.village_ids["tay"]
