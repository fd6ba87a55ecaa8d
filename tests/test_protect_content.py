"""Issue 15, item 6: alerts and case cards on Telegram go with protect_content (they can
be neither forwarded nor saved) unless the commune file's [privacy] turns it off; the
alert group's copy still holds neither the child's name nor the description; what a
citizen is sent is not protected."""

from __future__ import annotations

from bot.clock import FakeClock
from tests.support.fake_telegram import Sent
from tests.support.telegram import CITIZEN, GROUP, OFFICER, TelegramWorld, telegram_world

DESCRIPTION = "Bé bị nhốt trong kho lúa nhà ông Sáu Bền, khóc cả đêm."


async def report_and_open_card(w: TelegramWorld) -> tuple[Sent, Sent, Sent]:
    """The officer's alert, the group's copy, and the card the officer opens."""
    await w.report(CITIZEN, DESCRIPTION)
    alert = next(m for m in w.fake.inbox(OFFICER) if DESCRIPTION in m.text)
    group = next(m for m in w.fake.sent if m.chat_id == GROUP)
    await w.say(OFFICER, "/cases")
    await w.press(OFFICER, "case:view:1")
    card = w.last(OFFICER)
    assert card is not alert and DESCRIPTION in card.text
    return alert, group, card


async def test_alerts_and_case_cards_are_protected_by_default(db_url: str,
                                                              clock: FakeClock) -> None:
    async with telegram_world(db_url, clock) as w:
        alert, group, card = await report_and_open_card(w)
        assert alert.protected and group.protected and card.protected
        assert DESCRIPTION not in group.text and "VT-2026-0001" in group.text
        # The citizen's own receipt can be kept.
        receipt = next(m for m in w.fake.inbox(CITIZEN) if "VT-2026-0001" in m.text)
        assert not receipt.protected


async def test_a_commune_that_turns_it_off_sends_them_unprotected(db_url: str,
                                                                  clock: FakeClock) -> None:
    async with telegram_world(db_url, clock,
                              {"privacy": {"protect_content": False}}) as w:
        alert, group, card = await report_and_open_card(w)
        assert not (alert.protected or group.protected or card.protected)
        assert DESCRIPTION not in group.text
