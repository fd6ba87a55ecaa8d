"""/report over Telegram: the table as a message, the workbook and chart as real uploads."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.clock import FakeClock
from bot.domain.messages import Media, Reply, Text
from storage import people
from tests.support.reports import add_cases, check_png, check_workbook
from tests.support.telegram import CITIZEN, OFFICER, TelegramWorld, telegram_world


@pytest.fixture
async def world(db_url: str, clock: FakeClock) -> AsyncIterator[TelegramWorld]:
    async with telegram_world(db_url, clock) as built:
        yield built


async def test_officer_gets_report_files_over_telegram(world: TelegramWorld) -> None:
    w = world
    await add_cases(w.app)
    before = len(w.fake.inbox(OFFICER))
    await w.say(OFFICER, "/report 2026-Q4")
    table, workbook, chart = w.fake.inbox(OFFICER)[before:]
    assert table.media is None
    assert "Tổng số vụ: 6" in table.text and "trong vòng 45 phút" in table.text
    assert workbook.media is not None and workbook.media[0] == "document"
    assert "2026-Q4" in workbook.text  # the caption
    assert w.fake.file_names[workbook.media[1]] == "safechild-vinh-thuy-2026-Q4.xlsx"
    check_workbook(w.fake.files[workbook.media[1]])
    assert chart.media is not None and chart.media[0] == "photo"
    check_png(w.fake.files[chart.media[1]])
    assert [call for call in w.fake.calls if call in ("sendDocument", "sendPhoto")] == [
        "sendDocument", "sendPhoto"]


async def test_citizen_report_command_still_reports_a_case(world: TelegramWorld) -> None:
    await world.say(CITIZEN, "/report 2026-Q4")
    last = world.last(CITIZEN)
    assert last.media is None and "danger:no" in last.callback_data


async def test_a_missing_stored_file_still_delivers_the_text(world: TelegramWorld) -> None:
    w = world
    async with w.app.database.transaction() as s:
        officer = await people.person_by_key(s, w.app.directory.commune_id, "officer")
        assert officer is not None
        await w.app.outbox.send(
            s, officer, Reply((Text("stats.file.workbook", {"period": "2026-Q4"}),),
                              media=Media("document", "stored", "424242", "x.xlsx")),
            w.clock.now())
    await w.pump()
    last = w.last(OFFICER)
    assert last.media is None and "2026-Q4" in last.text
