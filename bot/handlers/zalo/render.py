"""A Reply as Zalo messages (zalo channel, pure: no I/O).

Zalo takes at most 2000 characters a message and a few buttons under it, so one Reply may
become several messages: the texts, split at sentence boundaries; the buttons under the
last text, and when there are more than a message may carry, the rest under short
"more choices" messages. Choices are `oa.query.hide` buttons carrying CHOICE_PREFIX and the
choice's stable id (never its label); numbers to call are `oa.open.phone` buttons (the
phone's dialer opens); a photo kept by its Zalo URL is sent as an image; a file the bot
made is a link, when the web server's public address is known. A message sent when the
person's messaging window runs low asks for one tap: a line, and the KEEP button (in the
place of the last button when the message is full, so the ask never costs a message).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot import i18n
from bot.domain.messages import Reply, Text
from bot.handlers.zalo.api import MAX_BUTTONS, TEXT_LIMIT, TITLE_LIMIT, ZaloButton
from bot.handlers.zalo.inbound import CHOICE_PREFIX, KEEP_WINDOW
from bot.handlers.zalo.webhook import CHANNEL

# Where a long text may be cut, best first: a paragraph, a line, a sentence, a word.
_BREAKS = (re.compile(r"\n\s*\n"), re.compile(r"\n"), re.compile(r"(?<=[.!?…。])\s+"),
           re.compile(r"\s+"))


@dataclass(frozen=True)
class ZaloMessage:
    """One message to send: a text, optional buttons under it, or an image by URL."""

    text: str
    buttons: tuple[ZaloButton, ...] = ()
    image_url: str = ""


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Pieces of at most `limit` characters, cut at the best boundary in each piece's
    second half (a paragraph, a line, a sentence, a word; mid-word only as a last resort)."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit + 1]
        cut = None
        for pattern in _BREAKS:
            found = [m for m in pattern.finditer(window) if m.start() >= limit // 2]
            if found:
                cut = found[-1]
                break
        if cut is None:
            pieces.append(rest[:limit])
            rest = rest[limit:].lstrip()
            continue
        pieces.append(rest[:cut.start()].rstrip())
        rest = rest[cut.end():].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def request_hint(request: str | None) -> Text | None:
    """Zalo has no share-location or share-contact button: the question says what to do."""
    if request == "location":
        return Text("zalo.share_location")
    if request == "contact":
        return Text("zalo.type_phone")
    return None


def phone_payload(number: str) -> str:
    """What the dialer gets: the digits (and a leading +) of a number written for people."""
    return re.sub(r"(?!^\+)\D", "", number.strip())


def _title(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= TITLE_LIMIT else text[:TITLE_LIMIT - 1] + "…"


def buttons_of(reply: Reply, language: str, file_url: str | None = None
               ) -> list[ZaloButton]:
    """Every button a Reply asks for, in the order they are shown: numbers to call first
    (in an emergency they matter most), then a file's link, then the choices."""
    buttons: list[ZaloButton] = []
    for number in reply.phones:
        digits = phone_payload(number)
        if digits.lstrip("+"):
            buttons.append(ZaloButton(_title(i18n.render(Text("zalo.call", {"number": number}),
                                                         language)), "oa.open.phone", digits))
    media = reply.media
    if media is not None and media.channel == CHANNEL and media.kind != "photo" \
            and media.ref.startswith(("https://", "http://")):
        file_url = media.ref
    if file_url:
        voice = media is not None and media.kind == "voice"
        label = Text("zalo.open_voice" if voice else "zalo.open_file")
        buttons.append(ZaloButton(_title(i18n.render(label, language)), "oa.open.url",
                                  file_url))
    for choice in reply.choices:
        buttons.append(ZaloButton(_title(i18n.render(choice.label, language)),
                                  "oa.query.hide", f"{CHOICE_PREFIX}{choice.id}"))
    return buttons


def keep_button(language: str) -> ZaloButton:
    """The tap that opens the person's messaging window again (and does nothing else)."""
    return ZaloButton(_title(i18n.render(Text("zalo.keep_button"), language)),
                      "oa.query.hide", f"{CHOICE_PREFIX}{KEEP_WINDOW}")


def with_keep(buttons: list[ZaloButton], per_message: int, language: str
              ) -> list[ZaloButton]:
    """The buttons with the KEEP button, in a message of its own only if there is none."""
    keep = keep_button(language)
    if buttons and len(buttons) % per_message == 0:
        return [*buttons[:-1], keep]
    return [*buttons, keep]


def render(reply: Reply, language: str, *, max_buttons: int = MAX_BUTTONS,
           file_url: str | None = None, ask_tap: bool = False) -> list[ZaloMessage]:
    """The messages that carry `reply` on Zalo, in the order they are sent. `file_url`:
    the public link of the stored file the reply carries, if it can be linked; `ask_tap`:
    the person's messaging window runs low (ask for the tap that opens it again)."""
    texts = [i18n.render(t, language) for t in reply.texts]
    hint = request_hint(reply.request)
    if hint is not None:
        texts.append(i18n.render(hint, language))
    if ask_tap:
        texts.append(i18n.render(Text("zalo.keep_window"), language))
    chunks = split_text("\n\n".join(t for t in texts if t.strip()))
    messages: list[ZaloMessage] = []
    media = reply.media
    if media is not None and media.channel == CHANNEL and media.kind == "photo" \
            and media.ref.startswith(("https://", "http://")):
        # The texts ride along as the image's caption when they fit in one message.
        caption = chunks[0] if len(chunks) == 1 and not (reply.choices or reply.phones) else ""
        messages.append(ZaloMessage(caption, image_url=media.ref))
        if caption:
            chunks = []
    buttons = buttons_of(reply, language, file_url)
    per_message = max(1, max_buttons)
    if ask_tap:
        buttons = with_keep(buttons, per_message, language)
    groups = [tuple(buttons[i:i + per_message]) for i in range(0, len(buttons), per_message)]
    if not groups:
        return messages + [ZaloMessage(chunk) for chunk in chunks]
    more = i18n.render(Text("zalo.more_choices"), language)
    messages += [ZaloMessage(chunk) for chunk in chunks[:-1]]
    messages.append(ZaloMessage(chunks[-1] if chunks else more, groups[0]))
    messages += [ZaloMessage(more, group) for group in groups[1:]]
    return messages
