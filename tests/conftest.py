"""Shared fixtures: a real process (the app) on a real database file, served over loopback
HTTP; the drivers and fakes they build on live in tests/support/."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from bot.app import App, Setup, build_app
from bot.clock import FakeClock
from bot.config import DEMO_CONFIG, load_commune
from bot.handlers.simulator import SimulatorPlugin
from tests.support import START, pg
from tests.support.fake_zalo import FakeZalo
from tests.support.simulator import Simulator, served

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-dev-shm-usage"]


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
    # PostgreSQL has no key file beside it: the bot refuses to start without keys, so the
    # tests give theirs as an operator would (bot processes they start inherit it).
    request.getfixturevalue("monkeypatch").setenv("SAFECHILD_KEYS", pg.TEST_KEYS)
    return str(server.create_database())


@pytest.fixture
async def app(db_url: str, clock: FakeClock) -> AsyncIterator[App]:
    """The demo commune's process with the simulator channel, its workers not started
    (tests move the clock and run them with `app.settle()`)."""
    app = await build_app(Setup(db_url, load_commune(DEMO_CONFIG), clock),
                          [SimulatorPlugin()])
    yield app
    await app.close()


@pytest.fixture
async def sim(app: App) -> AsyncIterator[Simulator]:
    async with served(app) as found:
        yield found


HAVE_CHROMIUM = os.path.exists(CHROMIUM)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Debian Chromium (playwright does not download one here)."""
    if not HAVE_CHROMIUM:
        if os.environ.get("CI"):
            raise RuntimeError("chromium missing: scripts/test_setup.sh installs it")
        pytest.skip("chromium is not installed")
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=CHROMIUM_FLAGS)
        yield b
        await b.close()
