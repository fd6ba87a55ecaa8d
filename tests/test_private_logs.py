"""No log line carries what a report said, who it named, a phone number or a channel id:
the core story (a report with a child's name, a description, a photo and the reporter's
phone; taken, asked about, answered, assessed, closed with a note, looked up), over the
simulator and over the fake Bot API, logged as the process logs (bot.logs, INFO) and
with our own loggers at DEBUG, then searched for the story's words and ids."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest

from bot import logs
from bot.clock import FakeClock
from tests.support.database import rows
from tests.support.simulator import Simulator
from tests.support.stories import (
    ANSWER,
    CHILD_NAME,
    CLOSING_NOTE,
    DESCRIPTION,
    MEASURES,
    PRIVATE_REPORT,
    PRIVATE_WORDS,
    QUESTION,
    REPORTER_PHONE,
)
from tests.support.telegram import (
    CHIEF,
    CITIZEN,
    GROUP,
    OFFICER,
    OFFICER2,
    POLICE,
    TelegramWorld,
    telegram_world,
)

OURS = ("bot", "storage", "safechild")


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    """Everything logged meanwhile, formatted as the process formats it."""
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level, {n: logging.getLogger(n).level for n in OURS}
    logs.configure()
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    root.handlers.extend(h for h in saved[0] if h not in root.handlers)  # pytest's own
    for name in OURS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)


def leaks(written: str, ids: tuple[int, ...] = ()) -> list[str]:
    found = [w for w in PRIVATE_WORDS if w in written]
    found += [str(i) for i in ids if re.search(rf"(?<!\d){i}(?!\d)", written)]
    return found


async def test_the_story_over_the_simulator_logs_none_of_its_words(
        sim: Simulator, clock: FakeClock, logged: io.StringIO) -> None:
    citizen, officer = sim["citizen"], sim["officer"]
    for kind, value in PRIVATE_REPORT:
        await citizen.step(kind, value)
    (case,) = await rows(sim.app, "cases")
    assert case.child_name == CHILD_NAME and case.reporter_phone == REPORTER_PHONE
    for kind, value in [("choice", f"case:ack:{case.id}"), ("choice", f"case:ask:{case.id}"),
                        ("text", QUESTION)]:
        await officer.step(kind, value)
    await citizen.tap(f"case:reply:{case.id}")
    await citizen.text(ANSWER)
    assert ANSWER in (await officer.last())["text"]
    for kind, value in [("choice", f"case:assess:{case.id}"), ("choice", "risk:low"),
                        ("text", MEASURES), ("choice", "form:sexual_abuse"),
                        ("choice", "setting:family"), ("choice", f"case:close:{case.id}"),
                        ("choice", "outcome:referred"), ("text", CLOSING_NOTE),
                        ("choice", "close:confirm")]:
        await officer.step(kind, value)
    assert (await rows(sim.app, "cases"))[0].status == "closed"
    await citizen.tap("menu:status")
    await citizen.text(case.code)
    clock.advance(timedelta(hours=2))
    await sim.app.settle()
    written = logged.getvalue()
    assert "inbound channel=web" in written, "the story was logged"
    assert leaks(written) == [], written[-3000:]


async def test_the_story_over_telegram_logs_no_words_and_no_chat_ids(
        db_url: str, clock: FakeClock, logged: io.StringIO) -> None:
    async with telegram_world(db_url, clock) as world:
        await report_on_telegram(world)
        (case,) = await rows(world.app, "cases")
        assert case.description == DESCRIPTION
        await world.press(OFFICER, f"case:ack:{case.id}")
        await world.press(OFFICER, f"case:ask:{case.id}")
        await world.say(OFFICER, QUESTION)
        await world.press(CITIZEN, f"case:reply:{case.id}")
        await world.say(CITIZEN, ANSWER)
        assert ANSWER in world.last(OFFICER).text
        await world.say(CITIZEN, "/start")
        written = logged.getvalue()
    assert "inbound channel=telegram" in written, "the story was logged"
    assert leaks(written, (CITIZEN, OFFICER, POLICE, OFFICER2, CHIEF, -GROUP)) == [], (
        written[-3000:])


async def report_on_telegram(world: TelegramWorld) -> None:
    for kind, value in [("say", "/start"), ("press", "menu:report"), ("press", "danger:no"),
                        ("press", "type:violence"), ("press", "types:done"),
                        ("say", "Thôn Tây"), ("press", "age:6-10"), ("press", "sex:boy"),
                        ("say", CHILD_NAME), ("press", "count:1"), ("say", DESCRIPTION),
                        ("press", "photos:done"), ("press", "contact:allow"),
                        ("say", REPORTER_PHONE), ("press", "confirm")]:
        await (world.say(CITIZEN, value) if kind == "say" else world.press(CITIZEN, value))
