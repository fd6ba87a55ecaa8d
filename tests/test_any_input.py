"""Any input, generated (hypothesis): any text (any Unicode, lone surrogates, NUL, very long),
any JSON body, any button id, through the simulator's HTTP API and straight into the
conversation service. Never a 5xx, never a traceback in the log, never a conversation that
stops answering."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import App, Setup, build_app
from bot.clock import FakeClock
from bot.config import DEMO_CONFIG, load_commune
from bot.domain.commune import SenderLimits
from bot.domain.messages import Input
from bot.handlers.simulator import SimulatorPlugin
from bot.services.conversation import InboundEvent
from tests.support import START

# Every code point, surrogates and NUL included (hypothesis leaves surrogates out unless
# told not to).
ANY_CHAR = st.characters(exclude_categories=())
ANY_TEXT = st.text(alphabet=ANY_CHAR, max_size=300)
BUTTONS = st.one_of(
    ANY_TEXT,
    st.builds(lambda a, n: f"case:{a}:{n}", st.sampled_from(
        ["ack", "ask", "handover", "assess", "progress", "close", "reply", "x", ""]),
        st.integers(min_value=-(2 ** 70), max_value=2 ** 70)),
    st.sampled_from(["menu:report", "menu:help", "danger:yes", "type:violence", "types:done",
                     "confirm", "back", "cancel", "resume:yes", "lang:en", "lang:xx"]),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2 ** 80), max_value=2 ** 80)
    | st.floats(allow_nan=True, allow_infinity=True) | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=12)
KIND_BODIES = st.fixed_dictionaries({"kind": st.sampled_from(
    ["text", "choice", "location", "contact", "photo", "voice", "other", "", "x"])}, optional={
    "text": JSON, "choice": JSON, "latitude": JSON, "longitude": JSON, "phone": JSON,
    "file_ref": JSON, "label": JSON, "id": JSON})
EXAMPLES = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


class Tracebacks(logging.Handler):
    """Every record that carries an exception, from any logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info is not None or record.levelno >= logging.ERROR:
            self.seen.append(record)


class World:
    def __init__(self, app: App, http: aiohttp.ClientSession, base: str) -> None:
        self.app, self.http, self.base = app, http, base
        self.sent = 0

    async def post(self, path: str, body: bytes) -> int:
        async with self.http.post(self.base + path, data=body,
                                  headers={"Content-Type": "application/json"}) as r:
            await r.read()
            return r.status

    async def still_answers(self, key: str = "citizen") -> None:
        """/cancel brings the menu back: the conversation is not stuck."""
        self.sent += 1
        status = await self.post(f"/api/phones/{key}/send", json.dumps(
            {"kind": "text", "text": "/cancel", "id": f"check-{self.sent}"}).encode())
        assert status == 200
        async with self.http.get(f"{self.base}/api/phones/{key}/messages") as r:
            shown = [m for m in (await r.json())["messages"] if m["direction"] == "out"]
        assert shown and "menu.prompt" in shown[-1]["ids"]


@pytest.fixture
async def world(db_url: str) -> AsyncIterator[World]:
    # Hundreds of inputs in one minute of a still clock: not the flood the per-sender
    # limit slows down (tests/test_sender_limits.py), each one must be answered here.
    config = dataclasses.replace(load_commune(DEMO_CONFIG),
                                 limits=SenderLimits(messages_per_minute=1_000_000))
    app = await build_app(Setup(db_url, config, FakeClock(START)),
                          [SimulatorPlugin()])
    server = TestServer(app.server, host="127.0.0.1")
    await server.start_server()
    watch = Tracebacks()
    logging.getLogger().addHandler(watch)
    try:
        async with aiohttp.ClientSession() as http:
            yield World(app, http, str(server.make_url("")).rstrip("/"))
    finally:
        logging.getLogger().removeHandler(watch)
        await server.close()
        await app.close()
    assert not watch.seen, [(r.name, r.getMessage()) for r in watch.seen]


def encoded(body: Any) -> bytes:
    """JSON as a client would send it (NaN and lone surrogates escaped, not refused)."""
    return json.dumps(body, ensure_ascii=True, allow_nan=True).encode()


@EXAMPLES
@given(steps=st.lists(st.tuples(st.sampled_from(["text", "choice"]), ANY_TEXT | BUTTONS),
                      min_size=1, max_size=6))
async def test_any_text_or_button_on_a_phone(world: World, steps: list[tuple[str, str]]
                                              ) -> None:
    for kind, value in steps:
        world.sent += 1
        body = {"kind": kind, kind if kind == "text" else "choice": value,
                "id": f"m-{world.sent}"}
        assert await world.post("/api/phones/citizen/send", encoded(body)) < 500
    await world.still_answers()


@EXAMPLES
@given(body=JSON | KIND_BODIES)
async def test_any_json_body_on_the_api(world: World, body: Any) -> None:
    assert await world.post("/api/phones/citizen/send", encoded(body)) < 500
    assert await world.post("/api/clock", encoded(body)) < 500
    if isinstance(body, dict):
        assert await world.post("/api/clock", encoded({"minutes": body.get("x", 0)})) < 500
    await world.still_answers()


@EXAMPLES
@given(kind=st.sampled_from(["text", "choice", "command", "location", "contact", "photo",
                             "voice", "other"]),
       text=ANY_TEXT, choice=BUTTONS, args=ANY_TEXT,
       latitude=st.floats(allow_nan=True) | st.none(),
       longitude=st.floats(allow_nan=True) | st.none(), key=ANY_TEXT)
async def test_any_input_into_the_conversation_service(
        world: World, kind: Any, text: str, choice: str, args: str, latitude: float | None,
        longitude: float | None, key: str) -> None:
    world.sent += 1
    inp = Input(kind, text=text, choice=choice, command=text[:32], args=args,
                latitude=latitude, longitude=longitude, phone=text[:32], file_ref=choice)
    handled = await world.app.conversations.handle(
        InboundEvent("web", "citizen", inp, key=f"{world.sent}:{key}"[:128]))
    assert handled.processed
    await world.app.settle(("delivery",))
    await world.still_answers()


async def test_a_hundred_thousand_characters_of_anything(world: World) -> None:
    text = "".join(chr(c) for c in range(0, 0x110000, 11))[:100_000]
    for n, inp in enumerate((Input("text", text=text), Input("choice", choice=text),
                             Input("command", command="report", args=text))):
        assert await world.app.conversations.handle(
            InboundEvent("web", "citizen", inp, key=f"long-{n}"))
    # Escaped as JSON it passes the server's 1 MiB: refused as too large, not as an error.
    body = encoded({"kind": "text", "text": text, "id": "long-http"})
    assert await world.post("/api/phones/citizen/send", body) == 413
    short = encoded({"kind": "text", "text": text[:20_000], "id": "long-http"})
    assert await world.post("/api/phones/citizen/send", short) == 200
    await world.still_answers()
