"""What a frightened person or a newcomer sees first (issue 13, items 2, 4 and 14), over the
fake Bot API: the very first message is a welcome; words of danger, with or without
Vietnamese marks, or in English, go straight to the report's first question with the
hotline; what the bot cannot place leads with the emergency numbers and "report" first;
/help names 111 itself; every final answer is followed by the person's menu buttons; a
case code typed at the top level is looked up."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.clock import FakeClock
from bot.config import DEMO_CONFIG, load_commune
from tests.support.fake_telegram import Sent
from tests.support.messages import shows
from tests.support.telegram import CITIZEN, NEWCOMER, TelegramWorld, telegram_world

MENU = ["menu:report", "menu:help", "menu:status", "menu:lang"]


@pytest.fixture
async def world(db_url: str, clock: FakeClock) -> AsyncIterator[TelegramWorld]:
    async with telegram_world(db_url, clock) as built:
        yield built


def first_lines(sent: Sent, n: int = 4) -> str:
    return "\n".join(sent.text.splitlines()[:n])


async def test_the_very_first_message_gets_the_welcome(world: TelegramWorld) -> None:
    await world.say(NEWCOMER, "alo")
    (only,) = world.fake.inbox(NEWCOMER)
    assert shows(only.text, "welcome", commune=load_commune(DEMO_CONFIG).name)
    assert not shows(only.text, "error.not_understood")
    assert only.callback_data == MENU
    # The second time the same word is not understood, but never without the numbers.
    await world.say(NEWCOMER, "alo")
    assert shows(world.last(NEWCOMER).text, "error.not_understood")


@pytest.mark.parametrize("words", [
    "Cứu con tôi với, nó đang bị đánh",
    "thang be nha ben canh bi danh dap suot",
    "CỨU",
    "please help, my little brother is hurt",
])
async def test_words_of_danger_go_straight_to_the_danger_question(
        world: TelegramWorld, words: str) -> None:
    await world.say(CITIZEN, "/start")
    await world.say(CITIZEN, words)
    answer = world.last(CITIZEN)
    assert shows(answer.text, "report.danger.prompt")
    assert shows(answer.text, "distress.heard")
    assert "111" in first_lines(answer, 2) and "113" in first_lines(answer, 2)
    assert answer.callback_data[0] == "danger:yes"
    # Everything else of the report follows as usual.
    await world.press(CITIZEN, "danger:yes")
    assert any(shows(m.text, "report.emergency_numbers") for m in world.fake.inbox(CITIZEN))


async def test_what_the_bot_cannot_place_leads_with_the_emergency_numbers(
        world: TelegramWorld) -> None:
    await world.say(CITIZEN, "/start")
    for typed in ("hôm nay trời đẹp", "asdfgh", "/khongcolenhnay"):
        await world.say(CITIZEN, typed)
        answer = world.last(CITIZEN)
        top = first_lines(answer)
        assert all(number in top for number in ("111", "113", "115")), top
        assert answer.callback_data[0] == "menu:report"
    assert not shows(world.last(CITIZEN).text, "error.not_understood")  # the command's own
    assert shows(world.last(CITIZEN).text, "error.unknown_command", command="khongcolenhnay")


async def test_help_names_111_in_its_first_message(world: TelegramWorld) -> None:
    await world.say(CITIZEN, "/help")
    (first,) = world.fake.inbox(CITIZEN)
    assert "111" in first.text


async def test_a_final_answer_is_followed_by_the_menu(world: TelegramWorld) -> None:
    await world.say(CITIZEN, "/start")
    # The language changed: the answer carries the menu's buttons.
    await world.press(CITIZEN, "menu:lang")
    await world.press(CITIZEN, "lang:en")
    changed = world.last(CITIZEN)
    assert shows(changed.text, "language.changed", locale="en")
    assert changed.callback_data == MENU
    await world.press(CITIZEN, "menu:lang")
    await world.press(CITIZEN, "lang:vi")
    # A status answer too.
    await world.press(CITIZEN, "menu:status")
    await world.say(CITIZEN, "VT-2026-0999")
    answer = world.last(CITIZEN)
    assert shows(answer.text, "status.not_found", code="VT-2026-0999")
    assert answer.callback_data == MENU


async def test_a_case_code_typed_at_the_top_is_looked_up(world: TelegramWorld) -> None:
    await world.say(CITIZEN, "/start")
    await world.report(CITIZEN, "Một người lạ nhiều lần chờ bé ở cổng trường.")
    code = next(line for m in world.fake.inbox(CITIZEN) for line in m.text.split()
                if line.startswith("VT-2026-"))
    code = code.strip(".,:;!()")
    await world.say(CITIZEN, f" {code.lower()} ")
    answer = world.last(CITIZEN)
    assert shows(answer.text, "status.received", code=code)
    assert not shows(answer.text, "error.not_understood")
    assert answer.callback_data == MENU


@pytest.mark.parametrize(("typed", "danger"), [
    ("Em bé bị đuối nước ở ao", True),
    ("em be bi duoi nuoc", True),
    ("cháu bị bỏ rơi ở chợ", True),
    ("Có người xâm hại bé hàng xóm", True),
    ("my child was abused", True),
    ("Xin chào", False),
    ("cho tôi xem danh sách", False),
    ("Tôi muốn hỏi thủ tục làm giấy khai sinh", False),
    ("thank you", False),
    ("help", False),  # the help menu, not a cry

])
def test_what_counts_as_words_of_danger(typed: str, danger: bool) -> None:
    from bot.domain.distress import sounds_like_danger

    assert sounds_like_danger(typed) is danger
