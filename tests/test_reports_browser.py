"""/report on the simulator page in headless Chromium: the workbook is a download link, the
chart an image the page really loads, and the page scrolls down to it once it has."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Browser, Route

from tests.support.reports import add_cases, check_workbook
from tests.support.simulator import Simulator


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_report_files_on_the_simulator_page(sim: Simulator, browser: Browser) -> None:
    await add_cases(sim.app)
    page = await browser.new_page()
    await page.goto(sim.base + "/")
    officer = page.locator("#phone-officer")
    await officer.wait_for(timeout=10_000)
    await officer.locator("input[name=text]").fill("/report 2026-Q4")
    await officer.locator("input[name=text]").press("Enter")

    link = officer.locator("a[download='safechild-vinh-thuy-2026-Q4.xlsx']")
    await link.wait_for(timeout=10_000)
    async with page.expect_download() as info:
        await link.click()
    download = await info.value
    check_workbook((await download.path()).read_bytes())

    chart = officer.locator("img.thumb")
    await chart.wait_for(timeout=10_000)
    await page.wait_for_function(
        "() => { const i = document.querySelector('#phone-officer img.thumb');"
        " return i && i.complete && i.naturalWidth > 0; }", timeout=10_000)
    width, height = await chart.evaluate("i => [i.naturalWidth, i.naturalHeight]")
    assert width == 720 and height > 2 * width
    assert "Tổng số vụ: 6" in await officer.locator(".msg.out").first.inner_text()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_log_scrolls_down_once_the_chart_has_loaded(sim: Simulator,
                                                               browser: Browser) -> None:
    await add_cases(sim.app)
    page = await browser.new_page()

    async def slowly(route: Route) -> None:
        # As on a village's mobile network: the image arrives after its message is drawn.
        await asyncio.sleep(0.5)
        await route.continue_()

    await page.route("**/api/files/**", slowly)
    await page.goto(sim.base + "/")
    officer = page.locator("#phone-officer")
    await officer.wait_for(timeout=10_000)
    await officer.locator("input[name=text]").fill("/stats 2026-Q4")
    await officer.locator("input[name=text]").press("Enter")
    await page.wait_for_function(
        "() => { const i = document.querySelector('#phone-officer img.thumb');"
        " return i && i.complete && i.naturalWidth > 0; }", timeout=10_000)
    # The page's own scroll runs on the image's load event, just after this one.
    await page.wait_for_timeout(200)
    log = officer.locator(".log")
    below = await log.evaluate("l => l.scrollHeight - l.scrollTop - l.clientHeight")
    assert below <= 2, f"the chart's lower {below} px are hidden below the log"
