"""The bot on Zalo end to end: people post signed events to our webhook over HTTP, the bot
answers through the OA API of the fake Zalo server; officers on the fake Telegram Bot API or
on Zalo too. The core story, flows on Zalo, and reaching officers when Zalo cannot."""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from bot.handlers.web import make_app
from bot.handlers.zalo_api import ZaloSettings
from bot.handlers.zalo_channel import ZaloConnection, connect_zalo
from sqlalchemy import select

from bot import i18n
from bot.app import Engine, build_engine
from bot.clock import FakeClock
from bot.config import DEMO_CONFIG, parse_commune
from bot.handlers.telegram import (
    TelegramAdapter,
    TelegramChannel,
    TelegramPoller,
    make_application,
)
from bot.handlers.zalo import WebhookSettings
from bot.services.outbox import Channel
from storage import cases, outbox, people
from storage.models import Case, Outbox
from tests.support.fake_telegram import TOKEN, FakeTelegram, Sent
from tests.support.fake_zalo import FakeZalo, ZaloSent

CITIZEN = "7001000000000000001"
ZALO = {"officer": "7001000000000000002", "police": "7001000000000000003",
        "officer2": "7001000000000000004", "police_chief": "7001000000000000005"}
TELEGRAM = {"officer": 6002, "police": 6003, "officer2": 6004, "police_chief": 6005}
PHOTO = "https://photo-zaloapp.zadn.vn/w1280/8c1d2e.jpg"


@dataclass
class ZaloWorld:
    fake: FakeZalo
    engine: Engine
    clock: FakeClock
    zalo: ZaloConnection
    tg: FakeTelegram | None = None
    poller: TelegramPoller | None = None
    mark: int = 0
    closers: list[Callable[[], Any]] = field(default_factory=list)

    async def pump(self) -> None:
        """A person takes a couple of seconds per tap: move the clock, handle what came in
        (webhook events, Telegram updates), deliver what is due, fire due timers."""
        self.clock.advance(timedelta(seconds=2))
        if self.tg is not None and self.poller is not None:
            while self.tg.updates and await self.poller.poll_once():
                pass
        assert self.engine.inbound is not None
        while await self.engine.inbound.handle_due():
            pass
        while await self.engine.outbox.deliver_due() or await self.engine.sweeper.fire_due():
            pass

    async def act(self, status: int) -> None:
        assert status == 200
        await self.pump()

    def begin(self) -> None:
        self.mark = len(self.fake.sent)

    async def say(self, user: str, text: str) -> None:
        self.begin()
        await self.act(await self.fake.users.send_text(user, text))

    async def press(self, user: str, choice: str) -> None:
        """Tap a button the bot sent this person (like Zalo, only one that exists)."""
        payload = f"#{choice}"
        assert any(payload in m.payloads for m in self.fake.sent_to(user)), (user, choice)
        self.begin()
        await self.act(await self.fake.users.press(user, payload))

    async def tg_press(self, user: int, data: str) -> None:
        assert self.tg is not None
        self.begin()
        self.tg.press(user, data)
        await self.pump()

    def latest(self, user: str) -> list[ZaloSent]:
        """What this person got since the last thing anyone did."""
        return [m for m in self.fake.sent[self.mark:] if m.user_id == user]

    def text(self, user: str) -> str:
        return "\n".join(m.text for m in self.latest(user))

    def tg_last(self, user: int) -> Sent:
        assert self.tg is not None
        return self.tg.inbox(user)[-1]

    async def report(self, user: str, description: str, confirm: bool = True) -> None:
        await self.say(user, "/start")
        for choice in ("menu:report", "danger:no", "type:violence", "types:done"):
            await self.press(user, choice)
        await self.say(user, "Thôn Tây")
        for choice in ("age:6-10", "sex:boy", "skip", "count:1"):
            await self.press(user, choice)
        await self.say(user, description)
        for choice in ("photos:done", "contact:anonymous", *(("confirm",) if confirm else ())):
            await self.press(user, choice)


def choices(messages: list[ZaloSent]) -> list[str]:
    return [p[1:] for m in messages for p in m.payloads]


async def make_world(db_url: str, clock: FakeClock, officers: str,
                     prefers: dict[str, str] | None = None) -> ZaloWorld:
    """officers: "telegram" (citizen on Zalo, staff on Telegram), "zalo" (everyone on
    Zalo) or "both" (staff have both; Zalo preferred once they have written there)."""
    fake = FakeZalo(now=clock.now)
    await fake.start()
    raw = tomllib.loads(DEMO_CONFIG.read_text(encoding="utf-8"))
    for person in raw["people"]:
        if person["key"] in ZALO and officers in ("zalo", "both"):
            person["zalo_id"] = ZALO[person["key"]]
        if person["key"] in TELEGRAM and officers in ("telegram", "both"):
            person["telegram_id"] = TELEGRAM[person["key"]]
        if person["key"] in (prefers or {}):
            person["prefers"] = (prefers or {})[person["key"]]
    channels: dict[str, Channel] = {}
    tg = application = None
    if officers != "zalo":
        tg = FakeTelegram(now=lambda: clock.now().timestamp())
        await tg.start()
        for user in TELEGRAM.values():
            tg.add_user(user)
        application = make_application(TOKEN, base_url=tg.base_url, read_timeout=2.0)
        await application.initialize()
        channels["telegram"] = TelegramChannel(application.bot)
    engine = await build_engine(db_url, parse_commune(raw), clock, channels)
    _, refresh = fake.authorise()
    settings = ZaloSettings.from_env(fake.env(refresh))
    assert settings is not None
    # A request the fake leaves hanging costs this long; room left for a loaded machine.
    settings = dataclasses.replace(settings, timeout=2.0)
    zalo = connect_zalo(engine, settings, WebhookSettings(fake.app_id, fake.oa_secret_key))
    server = TestServer(make_app(engine, zalo.routes()), host="127.0.0.1")
    await server.start_server()
    fake.users.webhook_url = str(server.make_url("/zalo/webhook"))
    world = ZaloWorld(fake, engine, clock, zalo, tg)
    if application is not None:
        world.poller = TelegramPoller(TelegramAdapter(application, engine.conversations),
                                      long_poll=0)
        world.closers.append(application.shutdown)
    world.closers[:0] = [server.close, zalo.close, engine.close, fake.stop]
    if tg is not None:
        world.closers.append(tg.stop)
    return world


async def close_world(world: ZaloWorld) -> None:
    for close in world.closers:
        await close()


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
    assert "«Vị trí»" in w.text(CITIZEN)
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
    await w.tg_press(TELEGRAM["officer"], "risk:high")
    assert w.tg is not None
    w.tg.user_text(TELEGRAM["officer"], "Đã báo nhà trường và công an.")
    await w.pump()
    for data in ("form:sexual_abuse", "setting:school", "case:close:1", "outcome:referred"):
        await w.tg_press(TELEGRAM["officer"], data)

    status = await citizen_checks_status(w)
    assert "VT-2026-0001" in status and "cổng trường" not in status
    assert i18n.t("status.closed", "vi", code="VT-2026-0001") in status
    async with w.engine.database.read() as s:
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
    await w.press(officer, "risk:high")
    await w.say(officer, "Đã báo nhà trường và công an.")
    await w.press(officer, "form:sexual_abuse")
    await w.press(officer, "setting:school")
    await w.press(officer, "case:close:1")
    await w.press(officer, "outcome:referred")
    assert "VT-2026-0001" in w.text(officer)

    status = await citizen_checks_status(w)
    assert i18n.t("status.closed", "vi", code="VT-2026-0001") in status
    assert "cổng trường" not in status
    async with w.engine.database.read() as s:
        case = await cases.case_by_code(s, "VT-2026-0001")
        rows = await outbox.of_case(s, case.id) if case else []
    assert case is not None and (case.status, case.outcome) == ("closed", "referred")
    # Every alert went out on Zalo, once.
    alerts = [r for r in rows if r.kind == "alert"]
    assert sorted((r.channel, r.status) for r in alerts) == [("zalo", "sent")] * 2
    # A message never carries more buttons than Zalo allows, and all are ours.
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
    assert lists[0].text == i18n.t("report.types.prompt", "vi")
    assert choices(lists)[:8] == [f"type:{t}" for t in (
        "violence", "sexual_abuse", "abandonment", "injury", "exploitation", "trafficking",
        "child_marriage", "other")]
    # A button on the second message works like any other.
    await w.press(CITIZEN, "type:other")
    await w.press(CITIZEN, "types:done")
    assert "village:tay" in choices(w.latest(CITIZEN))

    # Typing a village's name, or a lower-case word, is text, not a button.
    await w.say(CITIZEN, "thôn tây")
    assert i18n.t("report.age.prompt", "vi") in w.text(CITIZEN)


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
    async with w.engine.database.read() as s:
        case = await cases.case_by_code(s, "VT-2026-0001")
        assert case is not None
        rows = [r for r in await outbox.of_case(s, case.id) if r.kind == "alert"]
        person = (await people.identity(s, "zalo", officer))
    assert person is not None and person.unreachable_at is not None
    mine = [r for r in rows if r.person_id == person.person_id]
    # The alert record shows where it failed and which channel delivered it.
    assert [(r.channel, r.status) for r in mine] == [("zalo", "failed"), ("telegram", "sent")]
    assert "-230" in (mine[0].last_error or "")
    assert mine[1].dedupe_key == f"reroute:{mine[0].id}"
    # Nobody climbed the chain: the officer was reached.
    assert case.escalation_level == 1
    await w.tg_press(TELEGRAM["officer"], "case:ack:1")
    async with w.engine.database.read() as s:
        case = await cases.case_by_code(s, "VT-2026-0001")
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
    async with w.engine.database.read() as s:
        case = (await s.scalars(select(Case))).one()
        rows = (await s.scalars(select(Outbox).where(Outbox.case_id == case.id,
                                                     Outbox.kind == "escalation"))).all()
        level2 = {(await people.identity(s, "zalo", ZALO[k])).person_id  # type: ignore[union-attr]
                  for k in ("officer2", "police_chief")}
    assert case.escalation_level == 2
    assert sorted((r.channel, r.status) for r in rows if r.person_id in level2) == [
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
        # The alert's six buttons took two messages; the second also arrived once.
        assert len([m for m in w.fake.sent_to(user) if "#case:close:1" in m.payloads]) == 1
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
        assert w.tg is not None and w.poller is not None
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
    assert w.tg is not None and w.engine.broadcasts is not None
    collab_zalo, collab_tg = "7001000000000000009", 6009
    async with w.engine.database.transaction() as s:
        person = await people.person_by_key(s, w.engine.directory.commune_id, "collaborator")
        assert person is not None
        await people.bind_identity(s, person.id, "zalo", collab_zalo)
        await people.bind_identity(s, person.id, "telegram", str(collab_tg))
        for ident in await people.identities_of(s, person.id):
            if ident.channel == "zalo":
                ident.last_seen_at = w.clock.now()
    w.tg.add_user(collab_tg)
    w.fake.close_window(collab_zalo)
    officer = ZALO["officer"]
    text = "Họp cộng tác viên lúc 8 giờ sáng thứ Hai tại nhà văn hóa xã."
    await w.say(officer, f"/broadcast {text}")
    await w.press(officer, "broadcast:send")
    for _ in range(5):
        await w.pump()
        while await w.engine.broadcasts.track_due():
            await w.pump()
    assert any(text in m.text for m in w.tg.inbox(collab_tg))
    assert w.fake.sent_to(collab_zalo) == []
    async with w.engine.database.read() as s:
        rows = (await s.scalars(select(Outbox).where(Outbox.kind == "broadcast")
                                .order_by(Outbox.id))).all()
    assert [(r.channel, r.status) for r in rows] == [("zalo", "failed"), ("telegram", "sent")]
    assert rows[0].broadcast_id == rows[1].broadcast_id is not None
    summary = i18n.t("broadcast.summary", "vi", total=1, sent=1, unreachable=0)
    assert any(m.text == summary for m in w.fake.sent_to(officer))
