"""The simulator page in headless Chromium: a report from the citizen's phone, acknowledged
from the officer's, as a trainer would show it."""

from __future__ import annotations

import os

import pytest
from playwright.async_api import Browser, Page

from storage import cases, people
from tests.support.simulator import Simulator


async def tap(page: Page, phone: str, choice: str) -> None:
    button = page.locator(f"#phone-{phone} button[data-choice='{choice}']").last
    await button.wait_for(timeout=10_000)
    await button.click()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_report_from_citizen_phone_acknowledged_from_officer_phone(
        sim: Simulator, browser: Browser) -> None:
    page = await browser.new_page()
    await page.goto(sim.base + "/")
    for key in ("citizen", "collaborator", "officer", "police", "leader"):
        await page.locator(f"#phone-{key}").wait_for(timeout=10_000)

    citizen = page.locator("#phone-citizen")
    await citizen.locator("input[name=text]").fill("/start")
    await citizen.locator("input[name=text]").press("Enter")
    for choice in ("menu:report", "danger:no", "type:violence", "types:done", "village:nam",
                   "age:6-10", "sex:boy", "skip", "count:1"):
        await tap(page, "citizen", choice)
    await citizen.locator("input[name=text]").fill("Bố say rượu, đánh cháu bầm tím cả lưng.")
    await citizen.locator("input[name=text]").press("Enter")
    for choice in ("photos:done", "contact:anonymous", "confirm"):
        await tap(page, "citizen", choice)
    await citizen.locator(".msg.out", has_text="VT-2026-0001").first.wait_for(timeout=10_000)

    officer = page.locator("#phone-officer")
    await officer.locator(".msg.out", has_text="bầm tím").wait_for(timeout=10_000)
    await tap(page, "officer", "case:ack:1")
    await officer.locator("button[data-choice='case:assess:1']").last.wait_for(timeout=10_000)
    # The police phone is told who took the case (and its copy of the alert now says so).
    police = page.locator("#phone-police")
    await police.locator(".msg.out", has_text="Anh Hòa").first.wait_for(timeout=10_000)

    async with sim.app.database.read() as s:
        case = await cases.case_by_code(s, "VT-2026-0001")
        officer_person = await people.person_by_key(s, sim.app.directory.commune_id, "officer")
    assert case is not None and officer_person is not None
    assert case.assignee_id == officer_person.id and case.status == "acknowledged"
    await page.screenshot(path=os.environ.get("SAFECHILD_SCREENSHOT", "/tmp/simulator.png"),
                          full_page=True)
