"""One small interface over every channel's test driver: a person (by their key in the
demo commune) says something, presses a button (by its choice id; like the real apps, only
a button the bot sent them), shares a location, and reads the last message they got. A
test written against `Driver` runs the same on the simulator, Telegram and Zalo."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Protocol

from bot.app import App
from tests.support.fake_zalo import ZaloSent
from tests.support.simulator import Simulator, choice_ids
from tests.support.telegram import CITIZEN as TELEGRAM_CITIZEN
from tests.support.telegram import IDS as TELEGRAM_IDS
from tests.support.telegram import TelegramWorld
from tests.support.zalo import CITIZEN as ZALO_CITIZEN
from tests.support.zalo import ZALO_STAFF, ZaloWorld, zalo_choices


@dataclass(frozen=True)
class Seen:
    """A message as the person saw it: its text (rendered) and its buttons' choice ids."""

    text: str
    choices: tuple[str, ...]


class Driver(Protocol):
    channel: str
    app: App

    async def say(self, who: str, text: str) -> None: ...

    async def press(self, who: str, choice: str) -> None: ...

    async def share_location(self, who: str, latitude: float, longitude: float) -> None: ...

    async def last(self, who: str) -> Seen: ...


class SimulatorDriver:
    channel = "web"

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.app = sim.app

    async def say(self, who: str, text: str) -> None:
        await self.sim[who].text(text)

    async def press(self, who: str, choice: str) -> None:
        shown = await self.sim[who].inbox(all_=True)
        assert any(choice in choice_ids(m) for m in shown), (who, choice)
        await self.sim[who].tap(choice)

    async def share_location(self, who: str, latitude: float, longitude: float) -> None:
        await self.sim[who].send(kind="location", latitude=latitude, longitude=longitude)

    async def last(self, who: str) -> Seen:
        shown = await self.sim[who].inbox(all_=True)
        assert shown, f"{who} got nothing"
        return Seen(shown[-1]["text"], tuple(choice_ids(shown[-1])))


class TelegramDriver:
    channel = "telegram"

    def __init__(self, world: TelegramWorld, ids: Mapping[str, int] | None = None) -> None:
        self.world = world
        self.app = world.app
        self.ids = dict(ids or {"citizen": TELEGRAM_CITIZEN, **TELEGRAM_IDS})

    async def say(self, who: str, text: str) -> None:
        await self.world.say(self.ids[who], text)

    async def press(self, who: str, choice: str) -> None:
        await self.world.press(self.ids[who], choice)

    async def share_location(self, who: str, latitude: float, longitude: float) -> None:
        self.world.fake.user_location(self.ids[who], latitude, longitude)
        await self.world.pump()

    async def last(self, who: str) -> Seen:
        sent = self.world.last(self.ids[who])
        return Seen(sent.text, tuple(sent.callback_data))


class ZaloDriver:
    """Everyone on Zalo (the world made with officers="zalo"). One reply may be several
    Zalo messages (long texts, more buttons than a message carries): the last thing a person
    got is every message the last action brought them."""

    channel = "zalo"

    def __init__(self, world: ZaloWorld) -> None:
        self.world = world
        self.app = world.app
        self.ids = {"citizen": ZALO_CITIZEN, **ZALO_STAFF}
        self._last: dict[str, list[ZaloSent]] = {}

    async def _after(self, action: Awaitable[None]) -> None:
        await action
        for key, user in self.ids.items():
            got = self.world.latest(user)
            if got:
                self._last[key] = list(got)

    async def say(self, who: str, text: str) -> None:
        await self._after(self.world.say(self.ids[who], text))

    async def press(self, who: str, choice: str) -> None:
        await self._after(self.world.press(self.ids[who], choice))

    async def share_location(self, who: str, latitude: float, longitude: float) -> None:
        async def share() -> None:
            self.world.begin()
            await self.world.act(await self.world.fake.users.share_location(
                self.ids[who], latitude, longitude))

        await self._after(share())

    async def last(self, who: str) -> Seen:
        got = self._last.get(who)
        assert got, f"{who} got nothing"
        return Seen("\n".join(m.text for m in got), tuple(zalo_choices(got)))
