"""The same story on every channel, through one driver interface: a villager reports, the
officer and the police are alerted with the case's buttons, one of them takes the case,
the other's copy says so and the reporter is told. Typed answers where a button is expected
(the village, by its name) are read back as the button, on every channel."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.app import Setup, build_app
from bot.clock import FakeClock
from bot.config import DEMO_CONFIG, load_commune
from bot.handlers.simulator import SimulatorPlugin
from tests.support.drivers import Driver, SimulatorDriver, TelegramDriver, ZaloDriver
from tests.support.simulator import Simulator
from tests.support.stories import violence_in_thon_tay
from tests.support.telegram import telegram_world
from tests.support.zalo import make_world

CHANNELS = ("simulator", "telegram", "zalo")


@pytest.fixture(params=CHANNELS)
async def driver(request: pytest.FixtureRequest, db_url: str,
                 clock: FakeClock) -> AsyncIterator[Driver]:
    if request.param == "simulator":
        app = await build_app(Setup(db_url, load_commune(DEMO_CONFIG), clock),
                              [SimulatorPlugin()])
        server = TestServer(app.server, host="127.0.0.1")
        await server.start_server()
        async with aiohttp.ClientSession() as http:
            yield SimulatorDriver(Simulator(app, http, str(server.make_url("")).rstrip("/")))
        await server.close()
        await app.close()
    elif request.param == "telegram":
        async with telegram_world(db_url, clock) as world:
            yield TelegramDriver(world)
    else:
        world = await make_world(db_url, clock, officers="zalo")
        try:
            yield ZaloDriver(world)
        finally:
            await world.close()


async def report(driver: Driver, *, share_location: bool = False) -> None:
    for kind, value in violence_in_thon_tay("Bố say rượu, đánh bé nhiều lần."):
        if kind == "press":
            await driver.press("citizen", value)
        elif value == "Thôn Tây" and share_location:
            await driver.share_location("citizen", 19.81, 105.77)
        else:
            await driver.say("citizen", value)


async def test_the_story_on_every_channel(driver: Driver) -> None:
    # The village typed by name where its button was offered.
    await report(driver)
    assert "VT-2026-0001" in (await driver.last("citizen")).text
    for who in ("officer", "police"):
        alert = await driver.last(who)
        assert "VT-2026-0001" in alert.text and "Thôn Tây" in alert.text
        assert "đánh bé" in alert.text
        assert "case:ack:1" in alert.choices
    await driver.press("police", "case:ack:1")
    took = await driver.last("police")
    assert "VT-2026-0001" in took.text and "case:assess:1" in took.choices
    told = await driver.last("officer")
    assert "Anh Tuấn" in told.text and "case:ack:1" not in told.choices
    reporter = await driver.last("citizen")
    assert "VT-2026-0001" in reporter.text and "Anh Tuấn" not in reporter.text


async def test_a_shared_location_is_the_place_on_every_channel(driver: Driver) -> None:
    await report(driver, share_location=True)
    alert = await driver.last("officer")
    assert "19.81000" in alert.text and "105.77000" in alert.text
