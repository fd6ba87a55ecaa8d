"""/poster over Telegram (issue 14, item 2): a commune's admin gets the printable poster as
a document; the QR code on it is the bot's deep link for the commune, and a villager who
opens that link is welcomed as one of the commune."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
import zxingcpp
from PIL import Image

from bot.clock import FakeClock
from tests.support.telegram import ADMIN, CITIZEN, OFFICER, TelegramWorld, telegram_world


@pytest.fixture
async def world(db_url: str, clock: FakeClock) -> AsyncIterator[TelegramWorld]:
    async with telegram_world(db_url, clock) as built:
        yield built


async def test_an_admin_prints_the_communes_poster_and_its_link_works(
        world: TelegramWorld) -> None:
    w = world
    await w.say(OFFICER, "/poster")
    assert w.last(OFFICER).media is None, "only an admin makes posters"
    await w.say(ADMIN, "/poster")
    sent = w.last(ADMIN)
    assert sent.media is not None and sent.media[0] == "document"
    link = "https://t.me/safechild_bot?start=c-vinh-thuy"
    assert link in sent.text and "Vĩnh Thủy" in sent.text
    image = Image.open(io.BytesIO(w.fake.files[sent.media[1]]))
    assert [b.text for b in zxingcpp.read_barcodes(image)] == [link]
    # The link as a phone opens it: /start with the poster's payload.
    await w.say(CITIZEN, "/start c-vinh-thuy")
    welcome = w.last(CITIZEN)
    assert "Vĩnh Thủy" in welcome.text and "menu:report" in welcome.callback_data
