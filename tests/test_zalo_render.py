"""Replies rendered as Zalo messages (pure): every flow prompt fits Zalo's limits, choices
carry their stable ids, numbers are call buttons, long texts split at sentences."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot import i18n
from bot.domain.messages import Choice, Media, Reply, Text
from bot.flows import help, report
from bot.flows.book import FLOWS
from bot.flows.engine import State
from bot.handlers.zalo.api import MAX_BUTTONS, TEXT_LIMIT, button_json
from bot.handlers.zalo.inbound import KeptWindow, to_events
from bot.handlers.zalo.render import ZaloMessage, phone_payload, render, split_text
from tests.support.catalog_samples import SAMPLE_CTX, SAMPLE_DATA, built_replies


def every_prompt() -> Iterator[tuple[str, Reply]]:
    for flow in FLOWS.flows.values():
        for step in flow.steps.values():
            for data in SAMPLE_DATA:
                yield (f"{flow.id}.{step.id}",
                       step.prompt(State(flow.id, step.id, data, ("x",)), SAMPLE_CTX))


def payloads(messages: list[ZaloMessage]) -> list[str]:
    return [b.payload for m in messages for b in m.buttons if b.type == "oa.query.hide"]


@pytest.mark.parametrize("language", ["vi", "en"])
def test_every_reply_fits_zalo(language: str) -> None:
    for reply in [r for _, r in every_prompt()] + list(built_replies()):
        messages = render(reply, language)
        assert messages
        for message in messages:
            assert 1 <= len(message.text) <= TEXT_LIMIT or message.image_url
            assert len(message.buttons) <= MAX_BUTTONS
            for button in message.buttons:
                button_json(button)  # raises for anything Zalo would refuse
        # Every choice is there once, as its stable id, in order; no label is a payload.
        assert payloads(messages) == [f"#{c.id}" for c in reply.choices]


def test_long_choice_lists_are_split_with_a_short_lead() -> None:
    prompt = report.REPORT.steps["types"].prompt(State("report", "types", {"types": ["injury"]},
                                                       ("danger",)), SAMPLE_CTX)
    assert len(prompt.choices) == 11  # eight types, done, back, cancel
    messages = render(prompt, "vi")
    assert [len(m.buttons) for m in messages] == [5, 5, 1]
    assert messages[0].text == i18n.t("report.types.prompt", "vi")
    assert [m.text for m in messages[1:]] == ["Chọn tiếp:", "Chọn tiếp:"]
    assert payloads(messages)[:2] == ["#type:violence", "#type:sexual_abuse"]
    assert payloads(messages)[-1] == "#cancel"
    # A smaller limit is honoured too (ZALO_MAX_BUTTONS).
    assert [len(m.buttons) for m in render(prompt, "vi", max_buttons=4)] == [4, 4, 3]


def test_help_has_real_call_buttons() -> None:
    hotlines = render(help.answer("hotlines", SAMPLE_CTX), "vi")
    assert len(hotlines) == 1
    calls = [(b.type, b.payload, b.title) for b in hotlines[0].buttons]
    assert calls == [("oa.open.phone", "111", "📞 Gọi 111"), ("oa.open.phone", "113", "📞 Gọi 113"),
                     ("oa.open.phone", "115", "📞 Gọi 115")]
    officer = render(help.answer("officer", SAMPLE_CTX), "en")[0]
    assert [(b.type, b.payload) for b in officer.buttons] == [("oa.open.phone", "0912345678")]
    assert officer.buttons[0].title == "📞 Call 0912 345 678"
    emergency = render(report.emergency_numbers(), "vi")[0]
    assert [b.payload for b in emergency.buttons] == ["113", "115", "111"]
    assert phone_payload("+84 912.345.678") == "+84912345678"


def test_location_and_phone_questions_say_how_on_zalo() -> None:
    where = report.REPORT.steps["where"].prompt(State("report", "where", {}, ("types",)),
                                                SAMPLE_CTX)
    assert where.request == "location"
    text = render(where, "vi")[0].text
    assert text.startswith(i18n.t("report.where.prompt", "vi"))
    assert "«Vị trí»" in text
    phone = report.REPORT.steps["phone"].prompt(State("report", "phone", {}, ("contact",)),
                                                SAMPLE_CTX)
    assert "gõ số điện thoại" in render(phone, "vi")[0].text.split("\n\n")[-1]


def test_long_texts_split_at_sentences() -> None:
    sentence = "Bé bị đánh nhiều lần ở nhà, hàng xóm nghe tiếng khóc mỗi tối. "
    text = sentence * 80  # about 5,000 characters
    pieces = split_text(text)
    assert len(pieces) == 3 and all(len(p) <= TEXT_LIMIT for p in pieces)
    assert all(p.endswith("mỗi tối.") for p in pieces)
    assert " ".join(pieces) == text.strip()
    # Paragraphs are preferred to sentences, and a text with no space at all is still cut.
    para = ("a" * 1500 + ". " + "b" * 300 + "\n\n" + "c" * 900)
    assert split_text(para) == ["a" * 1500 + ". " + "b" * 300, "c" * 900]
    assert [len(p) for p in split_text("x" * 4500)] == [2000, 2000, 500]
    alert = Reply((Text("raw", {"text": text}),), (Choice("case:ack:1", Text("case.button.ack")),))
    messages = render(alert, "vi")
    assert [bool(m.buttons) for m in messages] == [False, False, True]


def test_media() -> None:
    caption = Reply((Text("alert.media_caption", {"code": "VT-2026-0001"}),))
    photo = Media("photo", "zalo", "https://photo-zaloapp.zadn.vn/a.jpg")
    messages = render(Reply(caption.texts, media=photo), "vi")
    assert messages == [ZaloMessage(i18n.t("alert.media_caption", "vi", code="VT-2026-0001"),
                                    image_url=photo.ref)]
    # With buttons the image goes first, the text and buttons after it.
    with_choice = render(Reply(caption.texts, (Choice("skip", Text("button.skip")),),
                               media=photo), "vi")
    assert [(m.image_url, bool(m.buttons)) for m in with_choice] == [(photo.ref, False),
                                                                      ("", True)]
    voice = render(Reply(caption.texts, media=Media("voice", "zalo",
                                                    "https://voice-zaloapp.zadn.vn/v.aac")),
                   "vi")
    assert [(b.type, b.payload) for b in voice[0].buttons] == [
        ("oa.open.url", "https://voice-zaloapp.zadn.vn/v.aac")]
    # A Telegram file means nothing on Zalo; a stored file is a link when it can be one.
    assert render(Reply(caption.texts, media=Media("photo", "telegram", "AgAD")), "vi") == [
        ZaloMessage(i18n.t("alert.media_caption", "vi", code="VT-2026-0001"))]
    stored = Reply(caption.texts, media=Media("document", "stored", "7"))
    assert render(stored, "vi")[0].buttons == ()
    linked = render(stored, "vi", file_url="https://safechild.example/api/files/7/tok")
    assert [(b.type, b.title) for b in linked[0].buttons] == [("oa.open.url", "📎 Mở tệp")]


def test_a_window_running_low_asks_for_a_tap_without_a_message_of_its_own() -> None:
    keep = "#zalo:keep"
    full = Reply((Text("case.card", {"code": "VT-2026-0001"}),),
                 tuple(Choice(f"case:{a}:1", Text(f"case.button.{a}"))
                       for a in ("ack", "ask", "handover", "assess", "progress")))
    plain = render(full, "vi")
    asked = render(full, "vi", ask_tap=True)
    # Still one message: the KEEP button takes the last button's place in a full one...
    assert len(plain) == len(asked) == 1
    assert payloads(asked) == [*payloads(plain)[:-1], keep]
    assert asked[0].text == plain[0].text + "\n\n" + i18n.t("zalo.keep_window", "vi")
    # ...and is added where there is room.
    notice = Reply((Text("case.card", {"code": "VT-2026-0001"}),))
    assert [(len(m.buttons), payloads([m])) for m in render(notice, "vi", ask_tap=True)] == [
        (1, [keep])]


def test_the_keep_tap_is_no_conversation_turn() -> None:
    event = {"app_id": "1", "sender": {"id": "42"}, "recipient": {"id": "9"},
             "event_name": "user_send_text",
             "message": {"msg_id": "m1", "text": "#zalo:keep"}, "timestamp": "1"}
    assert to_events(event) == KeptWindow("42")
    typed = {**event, "message": {"msg_id": "m2", "text": "zalo:keep"}}
    assert not isinstance(to_events(typed), KeptWindow)
