"""Words a villager reads (issue 13, item 5), through the simulator's HTTP API: a child's
name not given reads "chưa biết tên", not "(không có)"; the photo question says nothing of
"0 photos"; one attachment is "1 attachment"; the drowning advice offers 115 and 111 as
call buttons, since it tells people to call 115."""

from __future__ import annotations

from bot import i18n
from bot.domain.messages import Text
from tests.support.simulator import Simulator
from tests.support.stories import REPORT_STEPS


async def test_a_report_reads_naturally(sim: Simulator) -> None:
    citizen = sim["citizen"]
    before_description = REPORT_STEPS.index(("choice", "photos:done"))
    for kind, value in REPORT_STEPS[:before_description]:
        await citizen.step(kind, value)
    asked = await citizen.last()
    assert asked["ids"] == ["report.photos.prompt"]
    assert "0 ảnh" not in asked["text"] and "(đã nhận" not in asked["text"]
    await citizen.send(kind="photo", file_ref="photo-1")
    again = await citizen.last()
    assert "Đã nhận 1 ảnh" in again["text"]
    for kind, value in REPORT_STEPS[before_description:-1]:
        await citizen.step(kind, value)
    review = await citizen.last()
    assert "chưa biết tên" in review["text"] and "(không có)" not in review["text"]
    await citizen.tap("confirm")

    alert = next(m for m in await sim["officer"].inbox(all_=True) if m["kind"] == "alert")
    assert "chưa biết tên" in alert["text"]
    assert i18n.render(Text("alert.attachment"), "vi") in alert["text"]
    english = i18n.render(Text("alert.attachment"), "en")
    assert english == "📎 1 attachment (a photo or voice note)."


async def test_the_drowning_advice_offers_115_and_111(sim: Simulator) -> None:
    citizen = sim["citizen"]
    await citizen.text("/help")
    await citizen.tap("help:drowning")
    advice = next(m for m in await citizen.inbox() if m["ids"][0] == "help.drowning")
    assert advice["phones"] == ["115", "111"]


def test_the_english_statistics_say_type_not_form() -> None:
    assert i18n.t("stats.sheet.form", "en") == "Type"
    assert i18n.t("stats.chat.breakdown", "en", title=i18n.t("stats.sheet.form", "en"),
                  items="Violence (1)").startswith("Type:")
