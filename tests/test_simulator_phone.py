"""The simulator on a trainer's phone and on a laptop, in headless Chromium (issue 13, item
12), and the simulator's own words in each person's language (item 5)."""

from __future__ import annotations

import os
from itertools import pairwise
from typing import Any

import pytest
from playwright.async_api import Browser, FloatRect, Locator, Page, ViewportSize

from bot import i18n
from tests.support.simulator import Simulator
from tests.support.stories import REPORT_STEPS

PHONE = ViewportSize(width=390, height=844)
LAPTOP = ViewportSize(width=1366, height=768)
DEMO = ("citizen", "collaborator", "officer", "police", "leader")
# Words of the English catalog and the commune file's role keys: none may show on a
# Vietnamese phone's own parts (its header, its buttons, its empty screen, a file's label).
ENGLISH = ("citizen", "collaborator", "officer", "police", "leader", "admin", "voice",
           "photo", "document", "type a message", "send", "location", "tap /start")
SCREENSHOTS = os.environ.get("SAFECHILD_SCREENSHOT_DIR", "/tmp")


async def open_page(browser: Browser, size: ViewportSize, sim: Simulator) -> Page:
    page = await browser.new_page(viewport=size)
    await page.goto(sim.base + "/")
    for key in DEMO:
        await page.locator(f"#phone-{key}").wait_for(state="attached", timeout=10_000)
    return page


async def box(locator: Locator) -> FloatRect:
    found = await locator.bounding_box()
    assert found is not None, locator
    return found


async def visible_phones(page: Page) -> list[str]:
    return [key for key in DEMO if await page.locator(f"#phone-{key}").is_visible()]


async def short_buttons(page: Page) -> list[tuple[str, float]]:
    """Every visible button of the page, with its height when under 40 px."""
    short = []
    buttons = page.locator("button:visible")
    assert await buttons.count() > 5
    for i in range(await buttons.count()):
        button = buttons.nth(i)
        height = (await box(button))["height"]
        if height < 40:
            short.append((await button.inner_text(), height))
    return short


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_on_a_phone_one_person_at_a_time_with_a_switcher(
        sim: Simulator, browser: Browser) -> None:
    page = await open_page(browser, PHONE, sim)
    citizen = page.locator("#phone-citizen")
    await citizen.wait_for(timeout=10_000)
    assert await visible_phones(page) == ["citizen"]
    shown = await box(citizen)
    assert shown["x"] >= 0 and shown["x"] + shown["width"] <= PHONE["width"]
    # The whole phone fits the screen: its typing box is on screen without scrolling.
    typing = await box(citizen.locator("input[name=text]"))
    assert typing["y"] + typing["height"] <= PHONE["height"]
    # An empty phone says how to begin, in Vietnamese.
    assert await citizen.locator(".empty").inner_text() == "Bấm /start để bắt đầu"

    await citizen.locator("button[data-tool=start]").click()
    await citizen.locator("button[data-choice='menu:report']").wait_for(timeout=10_000)
    assert not await citizen.locator(".empty").is_visible()
    # Every button on the screen (switcher, clock, the bot's choices, the phone's own tools,
    # "Gửi") is at least 40 px tall, the least a thumb can hit.
    assert await short_buttons(page) == []
    typing = await box(citizen.locator("input[name=text]"))
    assert typing["height"] >= 40
    await page.screenshot(path=f"{SCREENSHOTS}/simulator-phone-menu.png")

    # The switcher names people, not keys; a tap shows that person's phone and no other.
    switcher = page.locator("#switcher")
    assert await switcher.is_visible()
    tab = switcher.locator("button[data-phone=officer]")
    assert await tab.inner_text() == "Anh Hòa"
    await tab.click()
    officer = page.locator("#phone-officer")
    await officer.wait_for(timeout=10_000)
    assert await visible_phones(page) == ["officer"]
    assert await tab.get_attribute("aria-selected") == "true"
    assert await officer.locator(".empty").inner_text() == "Bấm /start để bắt đầu"
    assert await short_buttons(page) == []

    # What arrives on a phone not shown is counted on its tab, until the trainer looks.
    citizen_tab = switcher.locator("button[data-phone=citizen]")
    await sim["citizen"].tap("menu:help")
    await citizen_tab.locator(".new:not(:empty)").wait_for(timeout=10_000)
    await page.screenshot(path=f"{SCREENSHOTS}/simulator-phone.png")
    await citizen_tab.click()
    assert await visible_phones(page) == ["citizen"]
    assert await citizen_tab.locator(".new").inner_text() == ""
    await citizen.locator(".msg.out").nth(1).wait_for(timeout=10_000)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_on_a_laptop_the_phones_stand_side_by_side(
        sim: Simulator, browser: Browser) -> None:
    page = await open_page(browser, LAPTOP, sim)
    await page.locator("#phone-leader").wait_for(timeout=10_000)
    assert await visible_phones(page) == list(DEMO)
    assert not await page.locator("#switcher").is_visible()
    boxes = [await box(page.locator(f"#phone-{key}")) for key in DEMO]
    for left, right in pairwise(boxes):
        assert right["y"] == left["y"]
        assert right["x"] >= left["x"] + left["width"]
        assert left["width"] >= 280 and left["height"] >= 500
    # The first four fit on the laptop's screen at once, the fifth a scroll away at most.
    assert boxes[3]["x"] + boxes[3]["width"] <= LAPTOP["width"]
    assert await page.locator("#phone-officer .empty").inner_text() == "Bấm /start để bắt đầu"
    await page.screenshot(path=f"{SCREENSHOTS}/simulator-laptop.png")


async def phones(sim: Simulator) -> dict[str, dict[str, Any]]:
    async with sim.http.get(f"{sim.base}/api/phones") as r:
        assert r.status == 200
        return {p["key"]: p for p in (await r.json())["phones"]}


def english_in(text: str) -> list[str]:
    return [word for word in ENGLISH if word in text.casefold()]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_vietnamese_phones_show_no_english(sim: Simulator, browser: Browser) -> None:
    listed = await phones(sim)
    for key in DEMO:
        phone = listed[key]
        assert phone["language"] == "vi"
        words = [phone["role_label"], *phone["texts"].values()]
        assert all(w.strip() for w in words), phone
        assert [w for w in words if english_in(w)] == [], key
    assert listed["officer"]["role_label"] == "Cán bộ bảo vệ trẻ em"
    assert listed["citizen"]["texts"]["media.voice"] == "Ghi âm"

    # A reporter's voice note reaches the officer as a file: named in Vietnamese on the page.
    citizen = sim["citizen"]
    for kind, value in REPORT_STEPS:
        if value.startswith("Một người"):
            await citizen.send(kind="voice", file_ref="demo-voice-1")
        else:
            await citizen.step(kind, value)
    media = [m["media"] for m in await sim["officer"].inbox() if m.get("media")]
    assert [(m["kind"], m["name"]) for m in media] == [("voice", "")]

    page = await open_page(browser, LAPTOP, sim)
    officer = page.locator("#phone-officer")
    await officer.locator(".msg.out .media").wait_for(timeout=10_000)
    assert (await officer.locator(".msg.out .media").inner_text()).strip() == "🎙️ Ghi âm"
    assert await page.title() == "SafeChild · mô phỏng điện thoại"
    for key in DEMO:
        shown = page.locator(f"#phone-{key}")
        own = [await shown.locator("h2 small").inner_text(),
               await shown.locator("input[name=text]").get_attribute("placeholder") or "",
               *await shown.locator(".tools button, form button").all_inner_texts()]
        assert [w for w in own if english_in(w)] == [], (key, own)
    media_labels = await officer.locator(".media").all_inner_texts()
    assert [w for w in media_labels if english_in(w)] == []
    header = await page.locator("header").inner_text()
    assert english_in(header) == [] and "phút" in header and "giờ" in header


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_phone_switched_to_english_gets_english_buttons(
        sim: Simulator, browser: Browser) -> None:
    page = await open_page(browser, PHONE, sim)
    police = page.locator("#phone-police")
    await page.locator("#switcher button[data-phone=police]").click()
    await police.wait_for(timeout=10_000)
    assert await police.locator("button[data-tool=voice]").inner_text() == "🎙️ Ghi âm"
    await police.locator("input[name=text]").fill("/lang")
    await police.locator("input[name=text]").press("Enter")
    await police.locator("button[data-choice='lang:en']").click()
    voice = police.locator("button[data-tool=voice]")
    await voice.filter(has_text=i18n.t("simulator.tool.voice", "en")).wait_for(timeout=10_000)
    assert await police.locator("form button").inner_text() == "Send"
    assert await police.locator("h2 small").inner_text() == "Commune police"
    assert await police.locator("input[name=text]").get_attribute("placeholder") \
        == "Type a message…"
    # The others keep Vietnamese.
    listed = await phones(sim)
    assert listed["police"]["language"] == "en" and listed["officer"]["language"] == "vi"
    assert listed["officer"]["texts"]["send"] == "Gửi"
    # The page's own words follow ?lang= (the trainer's language), Vietnamese by default.
    for lang, title, clock in (("", "SafeChild · mô phỏng điện thoại", ["+15 phút", "+1 giờ"]),
                               ("en", "SafeChild · phone simulator", ["+15 min", "+1 h"])):
        async with sim.http.get(f"{sim.base}/api/phones", params={"lang": lang}) as r:
            shown = (await r.json())["page"]
        assert shown["title"] == title
        assert [c["label"] for c in shown["clock"]][:2] == clock
