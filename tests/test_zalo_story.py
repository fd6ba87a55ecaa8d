"""The bot on Zalo end to end: people post signed events to our webhook over HTTP, the bot
answers through the OA API of the fake Zalo server; officers on the fake Telegram Bot API or
on Zalo too. The core story, flows on Zalo, and reaching officers when Zalo cannot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot import i18n
from bot.clock import FakeClock
from storage import cases, outbox, people
from tests.support.database import change, read, rows, write
from tests.support.messages import shows
from tests.support.zalo import CITIZEN, ZaloWorld, make_world
from tests.support.zalo import TELEGRAM_STAFF as TELEGRAM
from tests.support.zalo import ZALO_STAFF as ZALO
from tests.support.zalo import zalo_choices as choices

PHOTO = "https://photo-zaloapp.zadn.vn/w1280/8c1d2e.jpg"


async def close_world(world: ZaloWorld) -> None:
    await world.close()


@pytest.fixture
async def mixed(db_url: str, clock: FakeClock) -> AsyncIterator[ZaloWorld]:
    world = await make_world(db_url, clock, "telegram")
    yield world
    await close_world(world)


@pytest.fixture
async def on_zalo(db_url: str, clock: FakeClock) -> AsyncIterator[ZaloWorld]:
    world = await make_world(db_url, clock, "zalo")
    yield world
    await close_world(world)


@pytest.fixture
async def both(db_url: str, clock: FakeClock) -> AsyncIterator[ZaloWorld]:
    world = await make_world(db_url, clock, "both")
    yield world
    await close_world(world)


async def citizen_reports_on_zalo(w: ZaloWorld) -> None:
    """The citizen's half of the story: a sexual-abuse report with a shared location and a
    photo, anonymous, through Zalo's buttons."""
    await w.say(CITIZEN, "/start")
    assert "menu:report" in choices(w.latest(CITIZEN))
    for choice in ("menu:report", "danger:no", "type:sexual_abuse", "types:done"):
        await w.press(CITIZEN, choice)
    # No share-location button on Zalo: the question says how to send one.
    assert shows(w.text(CITIZEN), "zalo.share_location")
    w.begin()
    await w.act(await w.fake.users.share_location(CITIZEN, 19.81, 105.77))
    assert i18n.t("report.age.prompt", "vi") in w.text(CITIZEN)
    for choice in ("age:11-15", "sex:girl", "skip", "count:1"):
        await w.press(CITIZEN, choice)
    await w.say(CITIZEN, "Một người lạ nhiều lần chờ bé ở cổng trường.")
    w.begin()
    await w.act(await w.fake.users.send_image(CITIZEN, PHOTO))
    assert i18n.t("report.photo_saved", "vi") in w.text(CITIZEN)
    for choice in ("photos:done", "contact:anonymous", "confirm"):
        await w.press(CITIZEN, choice)
    received = w.latest(CITIZEN)
    assert "VT-2026-0001" in w.text(CITIZEN)
    assert "111" in [p for m in received for p in m.phones]


async def citizen_checks_status(w: ZaloWorld) -> str:
    await w.say(CITIZEN, "/status")
    await w.say(CITIZEN, "VT-2026-0001")
    return w.text(CITIZEN)


async def test_story_citizen_on_zalo_officers_on_telegram(mixed: ZaloWorld) -> None:
    w = mixed
    await citizen_reports_on_zalo(w)
    officer_alert, police_alert = w.tg_last(TELEGRAM["officer"]), w.tg_last(TELEGRAM["police"])
    for alert in (officer_alert, police_alert):
        assert "VT-2026-0001" in alert.text and "cổng trường" in alert.text
        assert "case:ack:1" in alert.callback_data
    # The photo's Zalo URL means nothing on Telegram: the alert counts it, no file follows.
    assert w.tg is not None and not [m for m in w.tg.sent if m.media]
    assert i18n.t("alert.attachments", "vi", count=1) in officer_alert.text

    await w.tg_press(TELEGRAM["police"], "case:ack:1")
    assert "Anh Tuấn" in w.tg_last(TELEGRAM["officer"]).text
    assert officer_alert.edits and officer_alert.callback_data == []
    await w.tg_press(TELEGRAM["officer"], "case:assess:1")
    # Not high: closing a high-risk case would wait for the chairman (test_close_approval).
    await w.tg_press(TELEGRAM["officer"], "risk:medium")
    assert w.tg is not None
    w.tg.user_text(TELEGRAM["officer"], "Đã báo nhà trường và công an.")
    await w.pump()
    for data in ("form:sexual_abuse", "setting:school", "case:close:1", "outcome:referred"):
        await w.tg_press(TELEGRAM["officer"], data)
    w.tg.user_text(TELEGRAM["officer"], "Đã chuyển hồ sơ cho công an huyện.")
    await w.pump()
    await w.tg_press(TELEGRAM["officer"], "close:confirm")

    status = await citizen_checks_status(w)
    assert "VT-2026-0001" in status and "cổng trường" not in status
    assert i18n.t("status.closed", "vi", code="VT-2026-0001") in status
    async with w.app.database.read() as s:
        case = await cases.case_by_code(s, "VT-2026-0001")
        assert case is not None
        files = await cases.attachments_of(s, case.id)
    assert (case.status, case.setting, case.latitude) == ("closed", "school", 19.81)
    assert [(f.channel, f.file_ref) for f in files] == [("zalo", PHOTO)]


async def test_story_everyone_on_zalo(on_zalo: ZaloWorld) -> None:
    w = on_zalo
    officer, police = ZALO["officer"], ZALO["police"]
    await citizen_reports_on_zalo(w)
    for user in (officer, police):
        got = w.latest(user)
        assert "VT-2026-0001" in "\n".join(m.text for m in got)
        assert "case:ack:1" in choices(got)
        # The reporter's photo follows the alert, by its URL, to the case team only.
        assert [m.image_url for m in got if m.image_url] == [PHOTO]
    assert not [m for m in w.fake.sent if m.image_url and m.user_id not in (officer, police)]

    await w.press(police, "case:ack:1")
    assert "case:assess:1" in choices(w.latest(police))
    # Zalo cannot edit the officer's alert: a new short message says who took the case.
    taken = i18n.t("case.taken_by", "vi", code="VT-2026-0001", name="Anh Tuấn (Công an xã)")
    assert taken in [m.text for m in w.latest(officer)]
    assert "Anh Tuấn" in w.text(officer)

    await w.press(officer, "case:assess:1")
    # Not high: closing a high-risk case would wait for the chairman (test_close_approval).
    await w.press(officer, "risk:medium")
    await w.say(officer, "Đã báo nhà trường và công an.")
    await w.press(officer, "form:sexual_abuse")
    await w.press(officer, "setting:school")
    await w.press(officer, "case:close:1")
    await w.press(officer, "outcome:referred")
    await w.say(officer, "Đã chuyển hồ sơ cho công an huyện.")
    await w.press(officer, "close:confirm")
    assert "VT-2026-0001" in w.text(officer)

    status = await citizen_checks_status(w)
    assert i18n.t("status.closed", "vi", code="VT-2026-0001") in status
    assert "cổng trường" not in status
    async with w.app.database.read() as s:
        case = await cases.case_by_code(s, "VT-2026-0001")
        queued = await outbox.of_case(s, case.id) if case else []
    assert case is not None and (case.status, case.outcome) == ("closed", "referred")
    # Every alert went out on Zalo, once.
    alerts = [r for r in queued if r.kind == "alert"]
    assert sorted((r.channel, r.status) for r in alerts) == [("zalo", "sent")] * 2
    # A message never carries more buttons than Zalo allows, and all are ours.
    assert w.zalo.api is not None
    assert all(len(m.buttons) <= w.zalo.api.max_buttons for m in w.fake.sent)


async def test_flows_on_zalo(on_zalo: ZaloWorld) -> None:
    w = on_zalo
    await w.say(CITIZEN, "/start")
    await w.press(CITIZEN, "menu:help")
    await w.press(CITIZEN, "help:hotlines")
    calls = [b for m in w.latest(CITIZEN) for b in m.buttons if b["type"] == "oa.open.phone"]
    assert [(b["payload"]["phone_code"], b["title"]) for b in calls] == [
        ("111", "📞 Gọi 111"), ("113", "📞 Gọi 113"), ("115", "📞 Gọi 115")]
    await w.press(CITIZEN, "help:officer")
    assert [p for m in w.latest(CITIZEN) for p in m.phones] == ["0912345678"]

    # Danger now: the call buttons come at once, then the (long) list of case types,
    # split across messages of at most five buttons.
    await w.press(CITIZEN, "menu:report")
    await w.press(CITIZEN, "danger:yes")
    got = w.latest(CITIZEN)
    assert got[0].phones == ["113", "115", "111"]
    lists = [m for m in got[1:] if m.buttons]
    assert [len(m.buttons) for m in lists] == [5, 5]
    assert lists[0].text == i18n.t("report.types.prompt_one", "vi")
    assert choices(lists)[:8] == [f"type:{t}" for t in (
        "violence", "sexual_abuse", "abandonment", "injury", "exploitation", "trafficking",
        "child_marriage", "other")]
    # A button on the second message works like any other (one tap, in danger).
    await w.press(CITIZEN, "type:other")
    assert "village:tay" in choices(w.latest(CITIZEN))

    # Typing a village's name, or a lower-case word, is text, not a button; with it the
    # team is alerted, and the questions go on.
    await w.say(CITIZEN, "thôn tây")
    assert i18n.t("report.age.prompt", "vi") in w.text(CITIZEN)
    assert "VT-2026-0001" in w.text(CITIZEN)


async def test_unknown_events_and_stickers_get_a_kind_word(on_zalo: ZaloWorld) -> None:
    w = on_zalo
    await w.say(CITIZEN, "/start")
    w.begin()
    await w.act(await w.fake.users.post(w.fake.users.sticker_event(CITIZEN)))
    assert i18n.t("error.not_understood", "vi") in w.text(CITIZEN)
    w.begin()
    await w.act(await w.fake.users.post(w.fake.users.receipt_event(CITIZEN)))
    assert w.latest(CITIZEN) == []


async def test_officer_outside_the_zalo_window_is_reached_on_telegram(both: ZaloWorld) -> None:
    w = both
    officer = ZALO["officer"]
    # The officer last wrote on Zalo, so Zalo is where alerts look for them first...
    await w.say(officer, "/start")
    # ...but that was long ago: Zalo now refuses to deliver (-230).
    w.fake.close_window(officer)
    await w.report(CITIZEN, "Bố đánh bé bằng roi, bé chạy sang nhà hàng xóm.")
    assert w.latest(officer) == []
    tg_alert = w.tg_last(TELEGRAM["officer"])
    assert "VT-2026-0001" in tg_alert.text and "case:ack:1" in tg_alert.callback_data
    async with w.app.database.read() as s:
        case = await cases.case_by_code(s, "VT-2026-0001")
        assert case is not None
        person = (await people.identity(s, "zalo", officer))
    # The outbox rows as stored (their last error too).
    alerts = await rows(w.app, "outbox", case_id=case.id, kind="alert")
    assert person is not None and person.unreachable_at is not None
    mine = [r for r in alerts if r.person_id == person.person_id]
    # The alert record shows where it failed and which channel delivered it.
    assert [(r.channel, r.status) for r in mine] == [("zalo", "failed"), ("telegram", "sent")]
    assert "-230" in (mine[0].last_error or "")
    assert mine[1].dedupe_key == f"reroute:{mine[0].id}"
    # Nobody climbed the chain: the officer was reached.
    assert case.escalation_level == 1
    await w.tg_press(TELEGRAM["officer"], "case:ack:1")
    case = await read(w.app, cases.case_by_code, "VT-2026-0001")
    assert case is not None and case.assignee_id == person.person_id

    # Writing on Zalo again (later that day) opens the window: the next alert goes there.
    w.clock.advance(timedelta(hours=1))
    await w.say(officer, "/start")
    await w.report(CITIZEN, "Lại có người đánh bé ở nhà bên cạnh, bé khóc cả đêm.")
    assert "case:ack:2" in choices(w.latest(officer))


async def test_no_channel_left_alerts_the_next_level_at_once(on_zalo: ZaloWorld) -> None:
    w = on_zalo
    officer = ZALO["officer"]
    w.fake.close_window(officer)  # the officer has Zalo only, and Zalo refuses
    await w.report(CITIZEN, "Bố đánh bé bằng roi, bé chạy sang nhà hàng xóm.")
    # No deadline passed, yet level 2 has the case already.
    for user in (ZALO["officer2"], ZALO["police_chief"]):
        assert any("#case:ack:1" in m.payloads for m in w.fake.sent_to(user)), user
    (case,) = await rows(w.app, "cases")
    escalations = await rows(w.app, "outbox", case_id=case.id, kind="escalation")
    async with w.app.database.read() as s:
        level2 = {(await people.identity(s, "zalo", ZALO[k])).person_id  # type: ignore[union-attr]
                  for k in ("officer2", "police_chief")}
    assert case.escalation_level == 2
    assert sorted((r.channel, r.status) for r in escalations if r.person_id in level2) == [
        ("zalo", "sent"), ("zalo", "sent")]


async def test_zalo_rate_limit_and_outage_delay_but_never_double(on_zalo: ZaloWorld) -> None:
    w = on_zalo
    await w.report(CITIZEN, "Bố đánh bé bằng roi, bé chạy sang nhà hàng xóm.", confirm=False)
    # Zalo struggles: a rate limit, server errors, a request that hangs until we give up.
    w.fake.fail_next.extend([-32, 500, 502, "timeout"])
    await w.press(CITIZEN, "confirm")
    for _ in range(10):
        w.clock.advance(timedelta(seconds=30))
        await w.pump()
    assert not w.fake.fail_next, "every fault was served"
    for user in (ZALO["officer"], ZALO["police"]):
        alerts = [m for m in w.fake.sent_to(user) if "#case:ack:1" in m.payloads]
        assert len(alerts) == 1, user
        # The alert's five buttons (no "close" before anyone took it) fit one message.
        assert alerts[0].payloads[-1].endswith("#case:progress:1"), alerts[0].payloads
    confirmations = [m for m in w.fake.sent_to(CITIZEN) if "VT-2026-0001" in m.text]
    assert len(confirmations) == 1


async def test_a_reply_cut_short_sends_only_its_missing_part(on_zalo: ZaloWorld) -> None:
    w = on_zalo
    await w.say(CITIZEN, "/start")
    # Zalo's per-minute limit is reached right after the first part of the next reply.
    w.fake.per_minute = sum(c.startswith("message/cs") for c in w.fake.calls) + 1
    await w.press(CITIZEN, "menu:help")
    first = w.latest(CITIZEN)
    assert [len(m.buttons) for m in first] == [5] and w.fake.rejected_rate == 1
    w.clock.advance(timedelta(seconds=61))
    w.begin()
    await w.pump()
    rest = w.latest(CITIZEN)
    assert [(m.text, choices([m])) for m in rest] == [("Chọn tiếp:", ["menu:report", "cancel"])]
    prompts = [m for m in w.fake.sent_to(CITIZEN) if m.text == i18n.t("help.prompt", "vi")]
    assert len(prompts) == 1
    await w.press(CITIZEN, "cancel")
    assert "menu:report" in choices(w.latest(CITIZEN))


async def test_an_officer_who_prefers_zalo_is_alerted_there_first(db_url: str,
                                                                  clock: FakeClock) -> None:
    """The commune file says the officer wants alerts on Zalo: they go there even though
    the officer last wrote on Telegram; the police chief, with no preference, gets them
    where they last wrote (Zalo). Zalo failing still falls back to Telegram."""
    w = await make_world(db_url, clock, "both", prefers={"officer": "zalo"})
    try:
        officer = ZALO["officer"]
        await w.say(officer, "/start")
        await w.say(ZALO["police"], "/start")
        assert w.tg is not None and w.telegram is not None
        clock.advance(timedelta(minutes=10))
        w.tg.user_text(TELEGRAM["officer"], "/start")  # the officer's latest word: Telegram
        w.tg.user_text(TELEGRAM["police"], "/start")
        await w.pump()
        await w.report(CITIZEN, "Bố đánh bé bằng roi, bé chạy sang nhà hàng xóm.")
        assert "case:ack:1" in choices(w.latest(officer))
        assert not any("case:ack:1" in m.callback_data
                       for m in w.tg.inbox(TELEGRAM["officer"]))
        # No preference: where the police officer last wrote (Telegram), not Zalo.
        assert any("case:ack:1" in m.callback_data
                   for m in w.tg.inbox(TELEGRAM["police"]))
        assert "case:ack:1" not in choices(w.latest(ZALO["police"]))

        w.fake.close_window(officer)
        await w.report(CITIZEN, "Lại có người đánh bé ở nhà bên cạnh, bé khóc cả đêm.")
        assert "case:ack:2" not in choices(w.latest(officer))
        assert "case:ack:2" in w.tg_last(TELEGRAM["officer"]).callback_data
    finally:
        await close_world(w)


async def test_a_broadcast_copy_zalo_cannot_deliver_goes_to_telegram(both: ZaloWorld) -> None:
    """A collaborator last seen on Zalo, long ago (outside the window), also has Telegram:
    the broadcast reaches them there, and the summary counts them as reached."""
    w = both
    assert w.tg is not None
    broadcasts = w.app.scheduler.worker("broadcasts")
    collab_zalo, collab_tg = "7001000000000000009", 6009
    person = await read(w.app, people.person_by_key, w.app.directory.commune_id,
                        "collaborator")
    assert person is not None
    await write(w.app, people.bind_identity, person.id, "zalo", collab_zalo)
    await write(w.app, people.bind_identity, person.id, "telegram", str(collab_tg))
    await change(w.app, "identities", {"last_seen_at": w.clock.now()}, person_id=person.id,
                 channel="zalo")
    w.tg.add_user(collab_tg)
    w.fake.close_window(collab_zalo)
    officer = ZALO["officer"]
    text = "Họp cộng tác viên lúc 8 giờ sáng thứ Hai tại nhà văn hóa xã."
    await w.say(officer, f"/broadcast {text}")
    await w.press(officer, "broadcast:send")
    for _ in range(5):
        await w.pump()
        while await broadcasts.run_due(w.clock.now()):
            await w.pump()
    assert any(text in m.text for m in w.tg.inbox(collab_tg))
    assert w.fake.sent_to(collab_zalo) == []
    copies = await rows(w.app, "outbox", kind="broadcast")
    assert [(r.channel, r.status) for r in copies] == [("zalo", "failed"),
                                                       ("telegram", "sent")]
    assert copies[0].broadcast_id == copies[1].broadcast_id is not None
    summary = i18n.t("broadcast.summary", "vi", total=1, sent=1, unreachable=0)
    assert any(m.text == summary for m in w.fake.sent_to(officer))
