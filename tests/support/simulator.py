"""The simulator driver: phones driven over HTTP, as the browser page drives them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from bot.app import App, Setup, build_app
from bot.clock import FakeClock
from bot.domain.commune import CommuneConfig
from bot.domain.messages import Input
from bot.domain.province import ProvinceConfig
from bot.handlers.simulator import SimulatorPlugin
from bot.services.conversation import InboundEvent
from tests.support.stories import Steps


class Phone:
    """One simulator phone."""

    def __init__(self, http: aiohttp.ClientSession, base: str, key: str) -> None:
        self.http, self.base, self.key = http, base, key
        self.seen = 0
        self.counter = 0
        # Message ids must stay unique across Phone objects (a restarted test reconnects).
        self.prefix = uuid.uuid4().hex[:8]

    async def send(self, **body: Any) -> dict[str, Any]:
        self.counter += 1
        body.setdefault("id", f"{self.prefix}-{self.counter}")
        async with self.http.post(f"{self.base}/api/phones/{self.key}/send", json=body) as r:
            assert r.status == 200, await r.text()
            return dict(await r.json())

    async def text(self, text: str) -> dict[str, Any]:
        """Type a line (a command when it starts with /)."""
        return await self.send(kind="text", text=text)

    async def tap(self, choice: str) -> dict[str, Any]:
        """Press a button, by its choice id."""
        return await self.send(kind="choice", choice=choice)

    async def step(self, kind: str, value: str) -> dict[str, Any]:
        """A story's step: ("text", line), ("choice", id) or ("photo", file reference)."""
        if kind == "photo":
            return await self.send(kind="photo", file_ref=value)
        return await (self.text(value) if kind == "text" else self.tap(value))

    async def inbox(self, all_: bool = False) -> list[dict[str, Any]]:
        """Bot messages that arrived since the last call (or all of them)."""
        after = 0 if all_ else self.seen
        async with self.http.get(f"{self.base}/api/phones/{self.key}/messages",
                                 params={"after": after}) as r:
            rows = (await r.json())["messages"]
        if rows:
            self.seen = max(self.seen, rows[-1]["id"])
        return [m for m in rows if m["direction"] == "out"]

    async def last(self) -> dict[str, Any]:
        msgs = await self.inbox()
        assert msgs, f"{self.key} got no message"
        return msgs[-1]


class Simulator:
    """The simulator's phones, and the process behind them when it runs in this test."""

    def __init__(self, app: App | None, http: aiohttp.ClientSession, base: str) -> None:
        self._app, self.http, self.base = app, http, base
        self.phones: dict[str, Phone] = {}

    @property
    def app(self) -> App:
        assert self._app is not None, "the bot runs in another process"
        return self._app

    def __getitem__(self, key: str) -> Phone:
        if key not in self.phones:
            self.phones[key] = Phone(self.http, self.base, key)
        return self.phones[key]

    async def advance(self, minutes: float) -> None:
        """Move the demo clock: due timers, reminders and deliveries run at once."""
        async with self.http.post(f"{self.base}/api/clock", json={"minutes": minutes}) as r:
            assert r.status == 200, await r.text()


def choice_ids(message: dict[str, Any]) -> list[str]:
    return [c["id"] for c in message.get("choices", ())]


async def walk_report(sim: Simulator, who: str, steps: Steps) -> str:
    """Walk a report to the end; the case code the reporter was given."""
    phone = sim[who]
    for kind, value in steps:
        await phone.step(kind, value)
    msgs = await phone.inbox()
    received = [m for m in msgs if "VT-2026-" in m["text"]]
    assert received, "the reporter got no case code"
    code = next(w for w in received[-1]["text"].replace("*", " ").split() if w.startswith("VT-"))
    return code.strip(".,:")


class WalkIn:
    """Someone the bot has never met, writing from the web (the simulator's HTTP API only
    knows the configured phones): their events go to the conversation service as the web
    channel hands them over, and their messages are read from their phone's inbox."""

    def __init__(self, sim: Simulator, address: str) -> None:
        self.sim, self.address, self.n = sim, address, 0

    async def say(self, kind: str, value: Any) -> None:
        self.n += 1
        inp = (Input("command", command=value[1:].partition(" ")[0],
                     args=value.partition(" ")[2]) if kind == "text" and value.startswith("/")
               else Input("text", text=value) if kind == "text"
               else Input("location", latitude=value[0], longitude=value[1])
               if kind == "location" else Input("choice", choice=value))
        await self.sim.app.conversations.handle(
            InboundEvent("web", self.address, inp, key=f"{self.address}:{self.n}"))
        await self.sim.app.settle()

    async def last(self) -> dict[str, Any]:
        return (await self.sim[self.address].inbox(all_=True))[-1]


@asynccontextmanager
async def served(app: App) -> AsyncIterator[Simulator]:
    """The app's simulator served over loopback, driven as the browser page drives it."""
    server = TestServer(app.server, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            yield Simulator(app, http, str(server.make_url("")).rstrip("/"))
    finally:
        await server.close()


@asynccontextmanager
async def simulator(db_url: str, clock: FakeClock,
                    config: CommuneConfig | ProvinceConfig) -> AsyncIterator[Simulator]:
    """A process of this commune (or province) on the database, its simulator served over
    loopback; its workers not started (tests move the clock and `app.settle()`)."""
    app = await build_app(Setup(db_url, config, clock), [SimulatorPlugin()])
    try:
        async with served(app) as sim:
            yield sim
    finally:
        await app.close()
