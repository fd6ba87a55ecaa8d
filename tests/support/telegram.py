"""The Telegram driver: the bot built with TelegramPlugin against the fake Bot API
(python-telegram-bot over real HTTP), its polling and delivery driven by hand on the test's
clock."""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from bot.app import App, Setup, build_app
from bot.clock import FakeClock
from bot.config import DEMO_CONFIG, parse_commune
from bot.domain.province import ProvinceConfig
from bot.handlers.plugin import ChannelPlugin
from bot.handlers.simulator import SimulatorPlugin
from bot.handlers.telegram import TelegramPlugin, TelegramSettings
from bot.handlers.telegram.inbound import TelegramUpdates
from bot.handlers.telegram.polling import TelegramPoller
from bot.workers.delivery import DeliveryWorker
from tests.support.fake_telegram import TOKEN, FakeTelegram, Sent
from tests.support.stories import violence_in_thon_tay
from tests.support.workers import worker_of

CITIZEN, OFFICER, POLICE, OFFICER2, CHIEF = 5001, 5002, 5003, 5004, 5005
ADMIN, NEWCOMER, LATECOMER = 5006, 5007, 5008
GROUP = -100_777  # the commune's alert group
IDS = {"officer": OFFICER, "police": POLICE, "officer2": OFFICER2, "police_chief": CHIEF,
       "admin": ADMIN}


def demo_commune_with(telegram_ids: Mapping[str, int],
                      alert_group: int | None = None) -> dict[str, Any]:
    """The demo commune file, raw, with these people's Telegram ids (by config key)."""
    raw = tomllib.loads(DEMO_CONFIG.read_text(encoding="utf-8"))
    if alert_group is not None:
        raw["commune"]["telegram_alert_group"] = alert_group
    for person in raw["people"]:
        if person["key"] in telegram_ids:
            person["telegram_id"] = telegram_ids[person["key"]]
    return raw


@asynccontextmanager
async def telegram_app(db_url: str, clock: FakeClock, fake: FakeTelegram,
                       raw: Mapping[str, Any] | ProvinceConfig, *, simulator: bool = False,
                       rate_limit: bool = True, read_timeout: float = 2.0
                       ) -> AsyncIterator[tuple[App, TelegramPlugin]]:
    """The app on Telegram (and the simulator, if asked) against the running fake; its
    workers not started, nothing polled unless the test polls."""
    # A short read timeout so the fake's hung requests cost a second, not ten.
    plugin = TelegramPlugin(TelegramSettings(
        token=TOKEN, api_base_url=fake.base_url,
        file_base_url=f"http://127.0.0.1:{fake.port}/file/bot", read_timeout=read_timeout,
        long_poll=0, rate_limit=rate_limit), poll=False)
    plugins: list[ChannelPlugin] = [plugin, *([SimulatorPlugin()] if simulator else [])]
    config = raw if isinstance(raw, ProvinceConfig) else parse_commune(raw)
    app = await build_app(Setup(db_url, config, clock), plugins)
    try:
        yield app, plugin
    finally:
        await app.close()


class TelegramWorld:
    def __init__(self, fake: FakeTelegram, app: App, plugin: TelegramPlugin,
                 clock: FakeClock) -> None:
        self.fake, self.app, self.plugin, self.clock = fake, app, plugin, clock

    @property
    def poller(self) -> TelegramPoller:
        assert self.plugin.poller is not None
        return self.plugin.poller

    @property
    def updates(self) -> TelegramUpdates:
        assert self.plugin.updates is not None
        return self.plugin.updates

    async def pump(self) -> None:
        """A person takes a couple of seconds per tap: move the clock, fetch and handle
        every pending update, then deliver what is due."""
        self.clock.advance(timedelta(seconds=2))
        while self.fake.updates and await self.poller.poll_once():
            pass
        await self.poller.answered()  # button answers go in the background
        delivery, timers = worker_of(self.app, DeliveryWorker), self.app.scheduler.worker("timers")
        while await delivery.deliver_due() or await timers.run_due(self.clock.now()):
            pass

    async def say(self, user: int, text: str) -> None:
        self.fake.user_text(user, text)
        await self.pump()

    async def press(self, user: int, data: str) -> None:
        self.fake.press(user, data)
        await self.pump()

    def last(self, user: int) -> Sent:
        return self.fake.inbox(user)[-1]

    async def report(self, user: int, description: str, *, confirm: bool = True) -> None:
        """Walk the report flow to the end (or to the last step before confirming)."""
        for kind, value in violence_in_thon_tay(description, confirm=confirm):
            await (self.say(user, value) if kind == "say" else self.press(user, value))


@asynccontextmanager
async def telegram_world(db_url: str, clock: FakeClock,
                         tables: Mapping[str, Any] | None = None
                         ) -> AsyncIterator[TelegramWorld]:
    """The demo commune on Telegram: its staff with Telegram ids, an alert group, and a few
    more people who write to the bot. `tables`: top-level tables of the commune file to
    set (e.g. {"privacy": {...}})."""
    fake = FakeTelegram(now=lambda: clock.now().timestamp())
    await fake.start()
    try:
        for user in (CITIZEN, OFFICER, POLICE, OFFICER2, CHIEF, ADMIN, NEWCOMER, LATECOMER):
            fake.add_user(user)
        # A villager slipped into the officers' group: a member, yet no officer.
        fake.add_group(GROUP, {OFFICER, POLICE, OFFICER2, CHIEF, NEWCOMER})
        raw = {**demo_commune_with(IDS, alert_group=GROUP), **(tables or {})}
        async with telegram_app(db_url, clock, fake, raw) as (app, plugin):
            yield TelegramWorld(fake, app, plugin, clock)
    finally:
        await fake.stop()
