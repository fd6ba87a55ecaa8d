"""The staff's home on the simulator page in headless Chromium (issue 13, item 6): the
officer's phone shows the staff menu, lists the commune's open cases and opens one's card
with its buttons, as a trainer would show it."""

from __future__ import annotations

import os

import pytest
from playwright.async_api import Browser, Page

from tests.support.simulator import Simulator, walk_report
from tests.support.stories import REPORT_STEPS


async def tap(page: Page, phone: str, choice: str) -> None:
    button = page.locator(f"#phone-{phone} button[data-choice='{choice}']").last
    await button.wait_for(timeout=10_000)
    await button.click()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_officer_phone_shows_the_staff_menu_the_case_list_and_a_case_card(
        sim: Simulator, browser: Browser) -> None:
    code = await walk_report(sim, "citizen", REPORT_STEPS)
    page = await browser.new_page()
    await page.goto(sim.base + "/")
    officer = page.locator("#phone-officer")
    await officer.wait_for(timeout=10_000)

    await officer.locator("input[name=text]").fill("/start")
    await officer.locator("input[name=text]").press("Enter")
    for choice in ("menu:my_cases", "menu:cases", "menu:report", "menu:stats",
                   "menu:broadcast", "menu:calendar", "menu:help"):
        await officer.locator(f"button[data-choice='{choice}']").last.wait_for(timeout=10_000)
    assert await officer.locator("button[data-choice='menu:cases']").last.inner_text() \
        == "📋 Các vụ đang mở"

    await tap(page, "officer", "menu:cases")
    listing = officer.locator(".msg.out", has_text="Các vụ đang mở của xã").last
    await listing.wait_for(timeout=10_000)
    text = await listing.inner_text()
    assert code in text and "Thôn Tây" in text and "chưa ai nhận" in text

    await tap(page, "officer", "case:view:1")
    card = officer.locator(".msg.out", has_text=f"Vụ {code}").last
    await card.wait_for(timeout=10_000)
    assert "dụ bé" in await card.inner_text()
    for choice in ("case:ack:1", "case:handover:1"):
        await officer.locator(f"button[data-choice='{choice}']").last.wait_for(
            timeout=10_000)
    await tap(page, "officer", "case:ack:1")
    await officer.locator("button[data-choice='case:assess:1']").last.wait_for(
        timeout=10_000)
    await page.screenshot(path=os.environ.get("SAFECHILD_STAFF_SCREENSHOT",
                                              "/tmp/simulator-staff.png"), full_page=True)
