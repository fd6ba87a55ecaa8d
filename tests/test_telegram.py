"""The bot on Telegram against the fake Bot API server: python-telegram-bot over real HTTP."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.clock import FakeClock
from bot.handlers.server import make_server
from bot.handlers.telegram import TelegramWebhook, webhook_secret
from storage import cases, outbox, people
from tests.support.database import count
from tests.support.fake_telegram import TOKEN
from tests.support.messages import shows
from tests.support.telegram import (
    ADMIN,
    CHIEF,
    CITIZEN,
    GROUP,
    LATECOMER,
    NEWCOMER,
    OFFICER,
    OFFICER2,
    POLICE,
    TelegramWorld,
    telegram_world,
)


@pytest.fixture
async def world(db_url: str, clock: FakeClock) -> AsyncIterator[TelegramWorld]:
    async with telegram_world(db_url, clock) as built:
        yield built


def webhook_server(w: TelegramWorld, hook: TelegramWebhook) -> TestServer:
    return TestServer(make_server(w.app.support.stored_file,
                                  [web.post("/telegram/webhook", hook.handle)]),
                      host="127.0.0.1")


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
    assert shows(w.last(CITIZEN).text, "case.not_allowed")

    await w.press(POLICE, "case:ack:1")
    assert "VT-2026-0001" in w.last(POLICE).text
    assert "Anh Tuấn" in w.last(OFFICER).text
    # Every copy of the alert now says who took it and has lost its acknowledge button.
    for alert in (officer_alert, police_alert):
        assert len(alert.edits) == 1 and alert.callback_data == []
        assert "Anh Tuấn" in alert.text and "cổng trường" in alert.text
    # The officer keeps a way in to the case: the team's notice carries the follow-up.
    assert "case:assess:1" in w.last(OFFICER).callback_data
    # A late press on the officer's (stale) copy changes nothing.
    w.fake.forge(OFFICER, "case:ack:1", officer_alert)
    await w.pump()
    assert "Anh Tuấn" in w.last(OFFICER).text

    await w.press(OFFICER, "case:assess:1")
    # Not high: closing a high-risk case would wait for the chairman (test_close_approval).
    for data in ("risk:medium",):
        await w.press(OFFICER, data)
    await w.say(OFFICER, "Đã báo nhà trường và công an.")
    await w.press(OFFICER, "form:sexual_abuse")
    await w.press(OFFICER, "setting:school")
    await w.press(OFFICER, "case:close:1")
    await w.press(OFFICER, "outcome:referred")
    await w.say(OFFICER, "Đã chuyển hồ sơ cho công an huyện.")
    await w.press(OFFICER, "close:confirm")

    await w.say(CITIZEN, "/status")
    await w.say(CITIZEN, "VT-2026-0001")
    status = w.last(CITIZEN).text
    assert "VT-2026-0001" in status and "cổng trường" not in status
    async with w.app.database.read() as s:
        case = await cases.case_by_code(s, "VT-2026-0001")
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


async def inbound_keys(world: TelegramWorld) -> int:
    return await count(world.app, "inbound_keys")


async def test_update_keys_outlive_redeliveries_then_go_so_a_reused_id_is_handled(
        world: TelegramWorld) -> None:
    w = world
    w.fake.user_text(CITIZEN, "/start")
    first = dict(w.fake.updates[-1])
    await w.pump()
    # Two days later the key is still there: a redelivery is recognised.
    w.clock.advance(timedelta(days=2))
    await w.app.scheduler.worker("inbound").run_due(w.clock.now())  # its hourly clean-up
    assert await inbound_keys(w) == 1
    w.fake.updates.append(dict(first))
    await w.pump()
    assert len(w.fake.inbox(CITIZEN)) == 1
    # After a week without updates Telegram numbers them from a random point, which may
    # meet an old number; the bot restarted meanwhile, so it asks from the start.
    w.clock.advance(timedelta(days=6))
    await w.app.scheduler.worker("inbound").run_due(w.clock.now())
    assert await inbound_keys(w) == 0
    w.fake.update_ids = itertools.count(first["update_id"])
    w.poller.offset = None
    w.fake.user_text(CITIZEN, "/start")
    await w.pump()
    assert len(w.fake.inbox(CITIZEN)) == 2  # answered, not dropped as a duplicate
    assert await inbound_keys(w) == 1


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
    async with w.app.database.read() as s:
        ident = await people.identity(s, "telegram", str(CITIZEN))
    assert ident is not None and ident.unreachable_at is not None


async def test_forged_callback_changes_nothing(world: TelegramWorld) -> None:
    w = world
    await w.say(CITIZEN, "/start")
    # A citizen forges an officer's button on a message of their own.
    w.fake.forge(CITIZEN, "case:close:1", w.last(CITIZEN))
    await w.pump()
    assert shows(w.last(CITIZEN).text, "error.stale_button")
    w.fake.forge(CITIZEN, "x" * 64, w.last(CITIZEN))
    await w.pump()
    assert shows(w.last(CITIZEN).text, "error.not_understood")
    async with w.app.database.read() as s:
        assert await cases.case_by_id(s, 1) is None


async def test_webhook_checks_the_secret_and_stores_before_answering(
        world: TelegramWorld) -> None:
    w = world
    hook = TelegramWebhook(w.updates, webhook_secret(TOKEN, None))
    server = webhook_server(w, hook)
    await server.start_server()
    try:
        await hook.register(str(server.make_url("/telegram/webhook")))
        update_id = w.fake.user_text(CITIZEN, "/start")
        assert await w.fake.post_webhook(update_id, secret="wrong-secret") == 403
        assert await w.fake.post_webhook(update_id, secret="") == 403
        assert await inbound_keys(w) == 0
        duplicate = dict(w.fake.updates[-1])
        assert await w.fake.post_webhook(update_id) == 200
        # Telegram retries the same update (say our 200 was lost): handled once.
        assert await w.fake.post_webhook(body=duplicate) == 200
        await w.pump()
        assert len(w.fake.inbox(CITIZEN)) == 1
        assert await inbound_keys(w) == 1
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
    async with w.app.database.read() as s:
        case = await cases.case_by_id(s, 1)
        ident = await people.identity(s, "telegram", str(OFFICER))
    assert case is not None and case.escalation_level == 2
    assert ident is not None and ident.unreachable_at is not None


async def test_invite_link_binds_a_collaborator_who_reports_with_village_prefilled(
        world: TelegramWorld) -> None:
    w = world
    await w.say(CITIZEN, "/invite collaborator Thôn Tây")
    assert shows(w.last(CITIZEN).text, "invite.not_allowed")
    await w.say(ADMIN, "/invite collaborator Thôn Tây")
    text = w.last(ADMIN).text
    link = next(word for word in text.split() if word.startswith("https://t.me/"))
    assert link.startswith("https://t.me/safechild_bot?start=")
    code = link.split("start=", 1)[1]
    assert 1 <= len(code) <= 64

    await w.say(NEWCOMER, f"/start {code}")
    async with w.app.database.read() as s:
        ident = await people.identity(s, "telegram", str(NEWCOMER))
        assert ident is not None
        person = await people.person(s, ident.person_id)
    assert person is not None and person.role == "collaborator"
    assert person.village_id == w.app.directory.village_ids["tay"]

    # Single use: the same link does nothing for someone else.
    await w.say(LATECOMER, f"/start {code}")
    assert shows(w.fake.inbox(LATECOMER)[0].text, "invite.invalid")

    # The new collaborator reports: after the case types, the bot skips the village.
    for data in ("menu:report", "danger:no", "type:child_marriage", "types:done"):
        await w.press(NEWCOMER, data)
    assert "age:11-15" in w.last(NEWCOMER).callback_data
    for data in ("age:16-17", "sex:girl", "skip", "count:1"):
        await w.press(NEWCOMER, data)
    await w.say(NEWCOMER, "Gia đình định cho em lấy chồng tháng sau.")
    for data in ("photos:done", "contact:anonymous", "confirm"):
        await w.press(NEWCOMER, data)
    async with w.app.database.read() as s:
        case = await cases.case_by_id(s, 1)
    assert case is not None and case.village_id == w.app.directory.village_ids["tay"]


async def test_staff_who_joined_by_invitation_are_alerted_like_those_the_file_names(
        world: TelegramWorld) -> None:
    """Routing and escalation choose among everyone who works in the commune, not only
    the people its file names: an invited collaborator hears of their village's case, and
    an invited officer is on the chain's second level ("officer": every officer)."""
    w = world
    invited = {}
    for user, args in ((NEWCOMER, "collaborator Thôn Tây"), (LATECOMER, "officer")):
        await w.say(ADMIN, f"/invite {args}")
        link = next(word for word in w.last(ADMIN).text.split()
                    if word.startswith("https://t.me/"))
        await w.say(user, f"/start {link.split('start=', 1)[1]}")
        invited[user] = len(w.fake.inbox(user))
    await w.report(CITIZEN, "Bố đánh bé bằng roi.")
    # The village's collaborator is told at once; the officer not yet (not on duty).
    assert any("VT-2026-0001" in m.text for m in w.fake.inbox(NEWCOMER)[invited[NEWCOMER]:])
    assert len(w.fake.inbox(LATECOMER)) == invited[LATECOMER]
    # Nobody takes it within the hour (URGENT): level 2 names every officer.
    w.clock.advance(timedelta(hours=1, minutes=1))
    await w.pump()
    later = w.fake.inbox(LATECOMER)[invited[LATECOMER]:]
    assert any("case:ack:1" in m.callback_data for m in later), later


async def test_alerts_arrive_once_through_429s_then_5xx_then_timeouts(
        world: TelegramWorld, clock: FakeClock) -> None:
    w = world
    await w.report(CITIZEN, "Bố đánh bé bằng roi, bé chạy sang nhà hàng xóm.", confirm=False)
    # Telegram struggles: rate limits for a while, then server errors, then requests that
    # hang until the client gives up (and are never carried out).
    w.fake.hang_seconds = 5
    w.fake.fail_next.extend([429] * 6 + [500, 502, 503, 500] + ["timeout"] * 3)
    w.fake.press(CITIZEN, "confirm")
    for _ in range(40):
        await w.pump()
        clock.advance(timedelta(seconds=5))
        async with w.app.database.read() as s:
            if not await outbox.pending_count(s):
                break
    assert not w.fake.fail_next, "every fault was served"
    assert sum(c.endswith(":timeout") for c in w.fake.calls) == 3
    for chat in (OFFICER, POLICE, GROUP):
        alerts = [m for m in w.fake.sent if m.chat_id == chat and "case:ack:1" in m.callback_data]
        assert len(alerts) == 1, chat
    confirmations = [m for m in w.fake.inbox(CITIZEN) if "VT-2026-0001" in m.text]
    assert len(confirmations) == 1
    async with w.app.database.read() as s:
        rows = await outbox.of_case(s, 1)
    assert {r.status for r in rows if r.kind == "alert"} == {"sent"}


async def test_alert_group_only_officers_and_police_may_take_a_case(
        world: TelegramWorld) -> None:
    w = world
    await w.report(CITIZEN, "Bé bị bỏ rơi trước cổng trạm y tế, khoảng 2 tuổi.")
    group_alert = next(m for m in w.fake.sent if m.chat_id == GROUP)
    assert "VT-2026-0001" in group_alert.text and group_alert.callback_data == ["case:ack:1"]
    # The group sees enough to act, not the child's details or the reporter.
    assert "cổng trạm y tế" not in group_alert.text

    # A group member who is no officer presses: a polite word on the button, nothing else.
    sent_before = len(w.fake.sent)
    w.fake.press_in_group(NEWCOMER, "case:ack:1", GROUP)
    await w.pump()
    assert shows(w.fake.notices[-1], "group.not_allowed")
    assert len(w.fake.sent) == sent_before and w.fake.inbox(NEWCOMER) == []
    async with w.app.database.read() as s:
        case = await cases.case_by_id(s, 1)
    assert case is not None and case.assignee_id is None

    # The second officer (not alerted in private: not on duty) takes it from the group.
    assert w.fake.inbox(OFFICER2) == []
    w.fake.press_in_group(OFFICER2, "case:ack:1", GROUP)
    await w.pump()
    assert "VT-2026-0001" in w.fake.notices[-1]
    assert "case:assess:1" in w.last(OFFICER2).callback_data  # details go to a private chat
    async with w.app.database.read() as s:
        case = await cases.case_by_id(s, 1)
        taker = await people.identity(s, "telegram", str(OFFICER2))
        events = [e.action for e in await cases.case_events(s, 1)]
    assert case is not None and taker is not None and case.assignee_id == taker.person_id
    assert "refused" in events and "acknowledged" in events
    # The group's copy and the private copies say who took it and lose their buttons.
    assert group_alert.edits and group_alert.callback_data == []
    assert "cổng trạm y tế" not in group_alert.text
    for user in (OFFICER,):
        first = next(m for m in w.fake.inbox(user) if "cổng trạm y tế" in m.text)
        assert first.edits and first.callback_data == []
    # A late press in the group by another officer: told it is taken, nothing changes.
    w.fake.forge(OFFICER, "case:ack:1", group_alert)
    await w.pump()
    assert shows(w.fake.notices[-1], "group.already_taken", code="VT-2026-0001")


async def test_group_messages_respect_twenty_a_minute(world: TelegramWorld,
                                                      clock: FakeClock) -> None:
    w = world
    w.fake.per_group_minute = 2
    for n, user in enumerate((CITIZEN, LATECOMER, ADMIN)):
        await w.report(user, f"Vụ thứ {n + 1}: trẻ bị đánh ở nhà.")
    in_group = [m for m in w.fake.sent if m.chat_id == GROUP]
    assert len(in_group) == 2 and w.fake.rejected_429 >= 1
    clock.advance(timedelta(seconds=61))
    await w.pump()
    in_group = [m for m in w.fake.sent if m.chat_id == GROUP]
    assert sorted(m.callback_data[0] for m in in_group) == [
        "case:ack:1", "case:ack:2", "case:ack:3"]


async def test_webhook_answers_a_button_press_in_its_response(world: TelegramWorld) -> None:
    w = world
    hook = TelegramWebhook(w.updates, webhook_secret(TOKEN, None))
    server = webhook_server(w, hook)
    await server.start_server()
    try:
        await hook.register(str(server.make_url("/telegram/webhook")))
        assert await w.fake.post_webhook(w.fake.user_text(CITIZEN, "/start")) == 200
        await w.pump()
        calls_before = w.fake.calls.count("answerCallbackQuery")
        assert await w.fake.post_webhook(w.fake.press(CITIZEN, "menu:report")) == 200
        # Answered inside the webhook's response: no extra request from the bot.
        assert w.fake.webhook_methods == ["answerCallbackQuery"]
        assert w.fake.calls.count("answerCallbackQuery") == calls_before + 1
        assert len(w.fake.answered) == 1
    finally:
        await server.close()


async def test_reporters_photos_and_voice_reach_the_case_team(world: TelegramWorld) -> None:
    w = world
    await w.say(CITIZEN, "/start")
    for data in ("menu:report", "danger:no", "type:injury", "types:done"):
        await w.press(CITIZEN, data)
    await w.say(CITIZEN, "Thôn Nam")
    for data in ("age:0-5", "sex:girl", "skip", "count:1"):
        await w.press(CITIZEN, data)
    w.fake.user_voice(CITIZEN, "voice-abc")  # the description, spoken
    await w.pump()
    w.fake.user_photo(CITIZEN, "photo-1")
    await w.pump()
    w.fake.user_photo(CITIZEN, "photo-2")
    await w.pump()
    for data in ("photos:done", "contact:anonymous", "confirm"):
        await w.press(CITIZEN, data)
    for user in (OFFICER,):
        files = [m.media for m in w.fake.inbox(user) if m.media is not None]
        assert files == [("photo", "photo-1"), ("photo", "photo-2"), ("voice", "voice-abc")]
        assert all("VT-2026-0001" in m.text for m in w.fake.inbox(user) if m.media)
    # The group never sees them; neither does anyone the case was not routed to.
    assert not [m for m in w.fake.sent if m.media and m.chat_id in (GROUP, OFFICER2, CITIZEN)]


async def test_a_webhook_body_that_is_no_update_gets_a_400(world: TelegramWorld) -> None:
    """Telegram only ever sends an Update object; anything else (past the secret) gets a
    400 saying why, never a 500, and nothing is stored."""
    w = world
    hook = TelegramWebhook(w.updates, webhook_secret(TOKEN, None))
    server = webhook_server(w, hook)
    await server.start_server()
    url = str(server.make_url("/telegram/webhook"))
    headers = {"X-Telegram-Bot-Api-Secret-Token": webhook_secret(TOKEN, None),
               "Content-Type": "application/json"}
    try:
        async with aiohttp.ClientSession() as http:
            for body in ("[1]", "7", '"x"', "null", "{oops", "", '{"update_id": "abc"}',
                         '{"update_id": 1, "message": 5}', "[" * 5000 + "]" * 5000):
                async with http.post(url, data=body, headers=headers) as r:
                    assert r.status == 400, body
                    assert "\n" not in (await r.json())["error"]
            # A real update with a lone surrogate and a NUL in its text goes through.
            assert not w.fake.updates
            w.fake.user_text(CITIZEN, "/start")
            raw = w.fake.updates.pop()
            raw["message"] = {**raw["message"], "text": "bé \ud800 bị\x00 đánh"}
            async with http.post(url, json=raw, headers=headers) as r:
                assert r.status == 200
        await w.pump()
        # "bé bị đánh", a child beaten: straight to the report's first question.
        assert shows(w.last(CITIZEN).text, "report.danger.prompt")
        assert await inbound_keys(w) == 1
    finally:
        await server.close()


async def test_confirm_tapped_twice_before_the_bot_answers_makes_one_case(
        world: TelegramWorld) -> None:
    """Both presses reach the bot in one batch (a double tap on a slow network)."""
    w = world
    await w.report(CITIZEN, "Bé bị đánh ở nhà hàng xóm.", confirm=False)
    review = w.last(CITIZEN)
    w.fake.press(CITIZEN, "confirm", review)
    w.fake.press(CITIZEN, "confirm", review)
    await w.pump()
    first, second = w.fake.inbox(CITIZEN)[-2:]
    assert "VT-2026-0001" in first.text
    assert shows(second.text, "report.already_sent", code="VT-2026-0001")
    async with w.app.database.read() as s:
        assert await cases.case_by_id(s, 2) is None
