"""A Reply as a Telegram message: text and keyboard in the recipient's language (telegram
channel, pure)."""

from __future__ import annotations

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from bot import i18n
from bot.domain.messages import Reply

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
SHORT_LABEL = 18
Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


def render(reply: Reply, language: str) -> tuple[str, Markup | None]:
    """Text and keyboard for one Reply, in the recipient's language."""
    text = "\n\n".join(i18n.render(t, language) for t in reply.texts)
    if len(text) > TEXT_LIMIT:
        text = text[: TEXT_LIMIT - 1] + "…"
    labels = [(c.id, i18n.render(c.label, language)) for c in reply.choices]
    if reply.request in ("location", "contact"):
        # Telegram asks for a location or contact only through a reply keyboard; the other
        # choices ride along as text buttons, whose labels come back as typed text (read
        # back as choices by bot/handlers/labels.py).
        ask = KeyboardButton(i18n.t(f"telegram.share_{reply.request}", language),
                             request_location=reply.request == "location",
                             request_contact=reply.request == "contact")
        keys = [[ask], *([KeyboardButton(label)] for _, label in labels)]
        return text, ReplyKeyboardMarkup(keys, resize_keyboard=True, one_time_keyboard=True)
    if not labels:
        return text, None
    rows: list[list[InlineKeyboardButton]] = []
    for choice_id, label in labels:
        button = InlineKeyboardButton(label, callback_data=choice_id)
        if rows and len(rows[-1]) == 1 and len(label) <= SHORT_LABEL and len(
                rows[-1][0].text) <= SHORT_LABEL:
            rows[-1].append(button)
        else:
            rows.append([button])
    return text, InlineKeyboardMarkup(rows)




def caption(text: str) -> str:
    return text if len(text) <= CAPTION_LIMIT else text[: CAPTION_LIMIT - 1] + "…"
