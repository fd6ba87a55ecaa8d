"""Shared fixtures: a real engine on a real database file, served over loopback HTTP."""

from __future__ import annotations

import asyncio
import inspect
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.app import Engine, build_engine
from bot.clock import FakeClock
from bot.config import DEMO_CONFIG, load_commune
from bot.domain.local_time import LOCAL_TZ
from bot.handlers.web import WebChannel, make_app
from tests import pg
from tests.fake_zalo import FakeZalo

# A Monday morning in Vietnam, so working-hour deadlines are easy to reason about.
START = datetime(2026, 11, 23, 9, 0, tzinfo=LOCAL_TZ)


def backends() -> list[str]:
    """SQLite always; PostgreSQL too unless SAFECHILD_TEST_PG=0 (a real server on loopback)."""
    wanted = os.environ.get("SAFECHILD_TEST_PG", "1") != "0"
    return ["sqlite", "postgresql"] if wanted else ["sqlite"]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pg.PostgresServer | None]:
    if not pg.available():
        if os.environ.get("CI"):
            raise RuntimeError("PostgreSQL binaries missing: scripts/test_setup.sh installs them")
        yield None
        return
    server = pg.PostgresServer()
    yield server
    server.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


async def eventually(check: Callable[[], object], seconds: float = 10.0) -> None:
    """Wait in real time for work running elsewhere (a background task, another process)
    to reach a state; `check` may be plain or async. Time-driven behaviour moves the fake
    clock instead."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        reached = check()
        if inspect.isawaitable(reached):
            reached = await reached
        if reached:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def fake(clock: FakeClock) -> AsyncIterator[FakeZalo]:
    """The fake Zalo platform on loopback, on the test's clock."""
    server = FakeZalo(now=clock.now)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(params=backends())
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'safechild.db'}"
    server = request.getfixturevalue("pg_server")
    if server is None:
        pytest.skip("PostgreSQL is not installed here")
    return str(server.create_database())


@pytest.fixture
async def engine(db_url: str, clock: FakeClock) -> AsyncIterator[Engine]:
    eng = await build_engine(db_url, load_commune(DEMO_CONFIG), clock,
                             {"web": WebChannel(clock)})
    yield eng
    await eng.close()


class Phone:
    """One simulator phone driven over HTTP, as the browser page drives it."""

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
            return await r.json()

    async def text(self, text: str) -> dict[str, Any]:
        return await self.send(kind="text", text=text)

    async def tap(self, choice: str) -> dict[str, Any]:
        return await self.send(kind="choice", choice=choice)

    async def inbox(self, all_: bool = False) -> list[dict[str, Any]]:
        """Bot messages that arrived since the last call."""
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
    def __init__(self, engine: Engine, http: aiohttp.ClientSession, base: str) -> None:
        self.engine, self.http, self.base = engine, http, base
        self.phones: dict[str, Phone] = {}

    def __getitem__(self, key: str) -> Phone:
        if key not in self.phones:
            self.phones[key] = Phone(self.http, self.base, key)
        return self.phones[key]

    async def advance(self, minutes: float) -> None:
        async with self.http.post(f"{self.base}/api/clock", json={"minutes": minutes}) as r:
            assert r.status == 200, await r.text()


@pytest.fixture
async def sim(engine: Engine) -> AsyncIterator[Simulator]:
    server = TestServer(make_app(engine), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as http:
        yield Simulator(engine, http, str(server.make_url("")).rstrip("/"))
    await server.close()


def choice_ids(message: dict[str, Any]) -> list[str]:
    return [c["id"] for c in message.get("choices", ())]
