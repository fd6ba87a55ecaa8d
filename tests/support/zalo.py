"""The Zalo channel in the tests: the bot's Zalo settings pointed at the fake Zalo platform
(tests/support/fake_zalo.py), a process (App) serving Zalo with its webhook on loopback
HTTP, the driver that plays people writing to the OA and moves the bot's workers, and the
few database-side helpers the Zalo tests need (a database that refuses, commits counted)."""

from __future__ import annotations

import contextlib
import dataclasses
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestServer
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.exc import OperationalError

from bot.app import App, Setup, build_app
from bot.clock import FakeClock
from bot.config import DEMO_CONFIG, load_commune, parse_commune
from bot.domain.commune import CommuneConfig
from bot.domain.message_kinds import Kind
from bot.domain.province import ProvinceConfig
from bot.handlers.plugin import ChannelPlugin
from bot.handlers.simulator import SimulatorPlugin
from bot.handlers.telegram import TelegramPlugin, TelegramSettings
from bot.handlers.zalo import ZaloPlugin
from bot.handlers.zalo.api import ZaloSettings
from bot.handlers.zalo.webhook import WEBHOOK_PATH, WebhookSettings
from bot.services.admin_alerts import AdminAlerts
from storage.db import Database
from tests.support.database import count, rows
from tests.support.fake_telegram import TOKEN, FakeTelegram, Sent
from tests.support.fake_zalo import FakeZalo, ZaloSent, ZaloUsers
from tests.support.stories import violence_in_thon_tay

# Room for a loaded machine: a request the fake leaves hanging costs this many seconds.
CLIENT_TIMEOUT = 2.0


def sends(fake: FakeZalo) -> int:
    """Calls of the OA's send API the fake received (refused ones too)."""
    return sum(1 for c in fake.calls if c.startswith("message/cs"))


def settings_for(fake: FakeZalo, refresh_token: str, **changes: Any) -> ZaloSettings:
    """The bot's Zalo settings for this fake (its ZALO_* environment), changed by `changes`."""
    settings = ZaloSettings.from_env(fake.env(refresh_token))
    assert settings is not None
    return dataclasses.replace(settings, **changes)


def zalo_plugin(fake: FakeZalo, refresh_token: str, webhook: WebhookSettings | None = None,
                **changes: Any) -> ZaloPlugin:
    """The Zalo channel against the fake: its OA API, and its webhook checking the fake's
    signatures (unless `webhook` says otherwise)."""
    changes.setdefault("timeout", CLIENT_TIMEOUT)
    return ZaloPlugin(settings_for(fake, refresh_token, **changes),
                      webhook or WebhookSettings(fake.app_id, fake.oa_secret_key))


def database_error(reason: str = "database went away") -> Exception:
    """What the database driver raises when a statement cannot be carried out."""
    return OperationalError("INSERT", {}, Exception(reason))


@contextlib.contextmanager
def commits_on(app: App) -> Iterator[list[object]]:
    """The commits made on the app's database while the block runs (one entry each)."""
    commits: list[object] = []

    def counted(conn: object) -> None:
        commits.append(conn)

    sync_engine = app.database.engine.sync_engine
    sqlalchemy_event.listen(sync_engine, "commit", counted)
    try:
        yield commits
    finally:
        sqlalchemy_event.remove(sync_engine, "commit", counted)


def token_lost_alerts(app: App, database: Database | None = None,
                      on_queued: Callable[[], None] | None = None
                      ) -> Callable[[int, int], Any]:
    """What ZaloApi's `alert_admins` is in a process: the app's admins told, on another
    channel, that the OA's authorisation is lost (as ZaloPlugin wires it); `on_queued` is
    called when an alert was queued (the delivery worker's wake-up)."""
    alerts = AdminAlerts(database or app.database, app.clock, app.outbox,
                         app.directory.commune_id, on_queued=on_queued)

    async def alert_admins(row_id: int, code: int) -> int:
        return int(await alerts.channel_authorisation_lost("zalo", row_id, code))

    return alert_admins


async def admin_alerts(app: App) -> Sequence[Any]:
    """The admins' alerts in the outbox, oldest first (raw rows)."""
    return await rows(app, "outbox", kind=Kind.ADMIN)


async def token_rows(app: App | Database) -> Sequence[Any]:
    """The OA's stored token pairs, oldest first (raw rows)."""
    return await rows(app, "zalo_tokens")


# ---- a process serving Zalo's webhook, and people writing to it ---------------------------


@dataclass
class Hooked:
    """A process (the demo commune, the simulator and Zalo) with its web server on loopback,
    and Zalo's users posting signed events to its webhook. Outbound messages are read from
    the outbox; nothing is delivered unless the test starts the workers."""

    app: App
    zalo: ZaloPlugin
    fake: FakeZalo
    clock: FakeClock
    server: TestServer

    @property
    def users(self) -> ZaloUsers:
        return self.fake.users

    @property
    def inbound(self) -> Any:
        """The process's inbound worker (bot.workers.inbound.InboundWorker)."""
        return self.app.scheduler.worker("inbound")

    async def handle(self) -> int:
        """Run the inbound worker until the queue is empty (the 200s went out before)."""
        total = 0
        while n := await self.inbound.run_due(self.clock.now()):
            total += n
        return total

    async def say(self, user: str, *texts: str) -> None:
        for text in texts:
            assert await self.users.send_text(user, text) == 200
            self.clock.advance(timedelta(seconds=2))
            await self.handle()

    async def replies(self, user: str) -> list[dict[str, Any]]:
        """What was queued for a Zalo user, oldest first (the Reply JSON of each row)."""
        return [r.payload["reply"] for r in await rows(self.app, "outbox", channel="zalo",
                                                        address=user)]

    async def counts(self) -> tuple[int, int, int]:
        """Stored webhook events, the conversations' inbound keys, outbox rows."""
        return (await count(self.app, "inbound_queue"), await count(self.app, "inbound_keys"),
                await count(self.app, "outbox"))

    async def close(self) -> None:
        await self.server.close()
        await self.app.close()
        await self.fake.stop()


async def open_hook(db_url: str, clock: FakeClock, app_id: str, oa_id: str, key: str,
                    webhook: WebhookSettings | None = None,
                    config: CommuneConfig | ProvinceConfig | None = None) -> Hooked:
    """Build the process (its workers not started) and serve it; the fake Zalo platform of
    the OA (app_id, oa_id, key) plays the users and answers the OA API. It serves the demo
    commune unless `config` names another commune or a province."""
    fake = FakeZalo(app_id, oa_id, key, now=clock.now)
    await fake.start()
    _, refresh = fake.authorise()
    zalo = zalo_plugin(fake, refresh, webhook or WebhookSettings(app_id, key))
    app = await build_app(Setup(db_url, config or load_commune(DEMO_CONFIG), clock),
                          [SimulatorPlugin(), zalo])
    server = TestServer(app.server, host="127.0.0.1")
    await server.start_server()
    fake.users.webhook_url = str(server.make_url(WEBHOOK_PATH))
    return Hooked(app, zalo, fake, clock, server)


# ---- the bot on Zalo end to end: the fake Zalo (and Telegram) and the process -------------


CITIZEN = "7001000000000000001"
ZALO_STAFF = {"officer": "7001000000000000002", "police": "7001000000000000003",
              "officer2": "7001000000000000004", "police_chief": "7001000000000000005"}
TELEGRAM_STAFF = {"officer": 6002, "police": 6003, "officer2": 6004, "police_chief": 6005}


@dataclass
class ZaloWorld:
    """People on the fake Zalo (and officers on the fake Telegram), the process serving
    them, driven step by step: every step moves the clock and runs the workers."""

    fake: FakeZalo
    app: App
    clock: FakeClock
    zalo: ZaloPlugin
    tg: FakeTelegram | None = None
    telegram: TelegramPlugin | None = None
    mark: int = 0
    closers: list[Callable[[], Any]] = field(default_factory=list)

    async def pump(self) -> None:
        """A person takes a couple of seconds per tap: move the clock, handle what came in
        (webhook events, Telegram updates), deliver what is due, fire due timers."""
        self.clock.advance(timedelta(seconds=2))
        if self.tg is not None and self.telegram is not None:
            assert self.telegram.poller is not None
            while self.tg.updates and await self.telegram.poller.poll_once():
                pass
        await self.app.settle(("inbound",))
        await self.app.settle(("delivery", "timers"))

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
        for kind, value in violence_in_thon_tay(description, confirm=confirm):
            await (self.say(user, value) if kind == "say" else self.press(user, value))

    async def close(self) -> None:
        for close in self.closers:
            await close()


def zalo_choices(messages: list[ZaloSent]) -> list[str]:
    """The choice ids of the buttons in these messages."""
    return [p[1:] for m in messages for p in m.payloads]


async def make_world(db_url: str, clock: FakeClock, officers: str,
                     prefers: dict[str, str] | None = None) -> ZaloWorld:
    """officers: "telegram" (citizen on Zalo, staff on Telegram), "zalo" (everyone on
    Zalo) or "both" (staff have both; Zalo preferred once they have written there)."""
    fake = FakeZalo(now=clock.now)
    await fake.start()
    closers: list[Callable[[], Any]] = [fake.stop]
    try:
        raw = tomllib.loads(DEMO_CONFIG.read_text(encoding="utf-8"))
        for person in raw["people"]:
            if person["key"] in ZALO_STAFF and officers in ("zalo", "both"):
                person["zalo_id"] = ZALO_STAFF[person["key"]]
            if person["key"] in TELEGRAM_STAFF and officers in ("telegram", "both"):
                person["telegram_id"] = TELEGRAM_STAFF[person["key"]]
            if person["key"] in (prefers or {}):
                person["prefers"] = (prefers or {})[person["key"]]
        plugins: list[ChannelPlugin] = []
        tg = telegram = None
        if officers != "zalo":
            tg = FakeTelegram(now=lambda: clock.now().timestamp())
            await tg.start()
            closers.append(tg.stop)
            for user in TELEGRAM_STAFF.values():
                tg.add_user(user)
            telegram = TelegramPlugin(TelegramSettings(
                token=TOKEN, api_base_url=tg.base_url,
                file_base_url=f"http://127.0.0.1:{tg.port}/file/bot",
                read_timeout=CLIENT_TIMEOUT, long_poll=0), poll=False)
            plugins.append(telegram)
        _, refresh = fake.authorise()
        zalo = zalo_plugin(fake, refresh)
        plugins.append(zalo)
        app = await build_app(Setup(db_url, parse_commune(raw), clock), plugins)
        closers.insert(0, app.close)
        server = TestServer(app.server, host="127.0.0.1")
        await server.start_server()
        closers.insert(0, server.close)
    except BaseException:
        for close in closers:
            await close()
        raise
    fake.users.webhook_url = str(server.make_url(WEBHOOK_PATH))
    return ZaloWorld(fake, app, clock, zalo, tg, telegram, closers=closers)
