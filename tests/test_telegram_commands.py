"""Staff find their commands on Telegram (issue 13, item 6): the command menus worker sets
everyone's commands in the default scope (Vietnamese, and English for English clients) and
each staff member's own in a scope of their chat, through python-telegram-bot over HTTP to
the fake Bot API, which checks every setMyCommands as strictly as Telegram does. Someone
who becomes staff by an invitation gets theirs; a failed call is tried again; nothing is
set twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from telegram import BotCommand, BotCommandScopeChat
from telegram.error import BadRequest

from bot import i18n
from bot.clock import FakeClock
from bot.workers.command_menus import NAME
from tests.support.telegram import (
    ADMIN,
    CITIZEN,
    NEWCOMER,
    OFFICER,
    POLICE,
    TelegramWorld,
    telegram_world,
)

EVERYONE = ["start", "report", "status", "help", "lang", "cancel"]


@pytest.fixture
async def world(db_url: str, clock: FakeClock) -> AsyncIterator[TelegramWorld]:
    async with telegram_world(db_url, clock) as built:
        yield built


async def set_menus(w: TelegramWorld) -> int:
    """The command menus worker's look, as the scheduler runs it; the calls that went."""
    return await w.app.scheduler.worker(NAME).run_due(w.clock.now())


def chat(user: int) -> tuple[str, int | None]:
    return ("chat", user)


async def test_staff_get_their_own_command_menu_everyone_else_the_default(
        world: TelegramWorld) -> None:
    w = world
    assert w.fake.commands == {}, "nothing is set before the worker runs"
    await set_menus(w)
    default = w.fake.commands[(("default", None), "")]
    assert [c for c, _ in default] == EVERYONE
    assert dict(default)["report"] == i18n.t("command.report", "vi") == "Báo cáo vụ việc"
    english = w.fake.commands[(("default", None), "en")]
    assert [c for c, _ in english] == EVERYONE
    assert dict(english)["report"] == "Report a case"

    # The officer's own list: their cases, the statistics, broadcast and the calendar.
    officer = w.fake.commands[(chat(OFFICER), "")]
    assert [c for c, _ in officer] == ["start", "cases", "report", "stats", "broadcast",
                                       "calendar", "status", "help", "lang", "cancel"]
    assert dict(officer)["cases"] == i18n.t("command.cases", "vi")
    # The police work cases, but neither read the statistics nor broadcast.
    assert w.fake.menu_of(POLICE) == ["start", "cases", "report", "status", "help", "lang",
                                      "cancel"]
    # Only the admin makes invitation links.
    assert "invite" in w.fake.menu_of(ADMIN) and "invite" not in w.fake.menu_of(OFFICER)
    # A citizen sees the default, in their client's language.
    assert w.fake.menu_of(CITIZEN) == EVERYONE
    assert w.fake.menu_of(CITIZEN, "en") == EVERYONE
    # Telegram picks the chat's own list whatever the client's language.
    assert w.fake.menu_of(OFFICER, "en")[:2] == ["start", "cases"]

    # Set once: looking again calls nobody.
    calls = len(w.fake.calls)
    assert await set_menus(w) == 0
    assert len(w.fake.calls) == calls


async def test_a_failed_call_is_tried_again_later(world: TelegramWorld) -> None:
    w = world
    w.fake.fail_menus.append(502)
    assert await set_menus(w) == 0
    assert w.fake.faults["502"] == 1 and w.fake.commands == {}
    # Not at once (no spinning on a failing channel) ...
    assert await set_menus(w) == 0
    due = await w.app.scheduler.worker(NAME).next_due(w.clock.now())
    assert due is not None and due > w.clock.now()
    # ... but once the pause is over.
    w.clock.advance(timedelta(seconds=5))
    assert await set_menus(w) > 0
    assert w.fake.menu_of(OFFICER)[:2] == ["start", "cases"]


async def test_who_becomes_staff_by_an_invitation_gets_the_staff_commands(
        world: TelegramWorld) -> None:
    w = world
    await set_menus(w)
    await w.say(NEWCOMER, "Xin chào")
    assert w.fake.menu_of(NEWCOMER) == EVERYONE

    await w.say(ADMIN, "/invite police")
    link = next(word for word in w.last(ADMIN).text.split() if "start=" in word)
    await w.say(NEWCOMER, f"/start {link.split('start=', 1)[1]}")
    # The welcome that answers the link is already the staff's home.
    assert "menu:my_cases" in w.last(NEWCOMER).callback_data
    assert "menu:status" not in w.last(NEWCOMER).callback_data
    # Joining woke the worker; the conversation did not wait for it.
    assert (("chat", NEWCOMER), "") not in w.fake.commands
    await set_menus(w)
    assert w.fake.menu_of(NEWCOMER) == ["start", "cases", "report", "status", "help", "lang",
                                        "cancel"]


async def test_the_fake_refuses_what_telegram_refuses(world: TelegramWorld) -> None:
    """The fake is strict, so the worker's calls above prove the real shape."""
    assert world.plugin.application is not None
    bot = world.plugin.application.bot
    bad = [
        ([BotCommand("Start", "x")], None),  # capitals
        ([BotCommand("a" * 33, "x")], None),  # too long a name
        ([BotCommand("start", "x" * 257)], None),  # too long a description
        ([BotCommand(f"c{n}", "x") for n in range(101)], None),  # too many
        ([BotCommand("start", "x")], BotCommandScopeChat(424242)),  # an unknown chat
    ]
    for commands, scope in bad:
        with pytest.raises(BadRequest):
            await bot.set_my_commands(commands, scope=scope)
    with pytest.raises(BadRequest):
        await bot.set_my_commands([BotCommand("start", "x")], language_code="vie")
    assert world.fake.commands == {}
