"""/report on the simulator page in headless Chromium: the workbook is a download link, the
chart an image the page really loads."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser

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
    assert await chart.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [1000, 700]
    assert "Tổng số vụ: 6" in await officer.locator(".msg.out").first.inner_text()
