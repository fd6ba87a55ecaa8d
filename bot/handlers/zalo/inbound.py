"""Zalo events in (zalo channel): a stored webhook event becomes InboundEvents for the
conversation service, or an unfollow (the person cannot be written to on Zalo any more).

Our buttons are `oa.query.hide` buttons: a press comes back as a text message from the
person carrying the button's payload, which is CHOICE_PREFIX followed by the choice id.
The prefix tells a press from typed text (a child's name typed in lower case must not be
taken for a button), and Zalo keeps the payload out of the person's view.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.domain.messages import Input, InputKind
from bot.handlers.typed import typed_input
from bot.handlers.zalo.webhook import CHANNEL, event_key, sender_of
from bot.services.conversation import ConversationService, InboundEvent

log = logging.getLogger(__name__)
CHOICE_PREFIX = "#"
# The payload (after CHOICE_PREFIX) of the button that only opens the person's messaging
# window again: Zalo lets an OA write only a few times after the person's last message.
KEEP_WINDOW = "zalo:keep"
MAX_CHOICE = 128
MAX_TEXT = 20_000
# Events a person causes by writing to us; the rest (delivery and read receipts, what the
# OA itself sent) are stored and set aside without an answer.
ANSWERED_EVENTS = frozenset({
    "user_send_text", "user_send_location", "user_send_image", "user_send_audio",
    "user_send_file", "user_send_sticker", "user_send_gif", "user_send_link",
    "user_send_video", "user_send_business_card", "follow", "user_click_chatnow",
})


@dataclass(frozen=True)
class Unfollow:
    """The person left the OA: we cannot write to them on Zalo any more."""

    user_id: str


@dataclass(frozen=True)
class KeptWindow:
    """The person tapped the KEEP_WINDOW button: their messaging window is open again; no
    answer (an answer would spend what the tap just gave back)."""

    user_id: str


def text_input(text: str) -> Input:
    if text.startswith(CHOICE_PREFIX):
        choice = text[len(CHOICE_PREFIX):]
        if choice and len(choice) <= MAX_CHOICE and not any(ch.isspace() for ch in choice):
            return Input("choice", choice=choice)
    return typed_input(text, MAX_TEXT)


def _attachments(message: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = message.get("attachments")
    if not isinstance(found, list):
        return []
    return [a for a in found if isinstance(a, Mapping)]


def _payload(attachment: Mapping[str, Any]) -> Mapping[str, Any]:
    payload = attachment.get("payload")
    return payload if isinstance(payload, Mapping) else {}


def _location(message: Mapping[str, Any]) -> Input:
    for attachment in _attachments(message):
        coordinates = _payload(attachment).get("coordinates")
        if isinstance(coordinates, Mapping):
            try:
                return Input("location", latitude=float(coordinates["latitude"]),
                             longitude=float(coordinates["longitude"]))
            except (KeyError, TypeError, ValueError):
                break
    return Input("other")


def _urls(message: Mapping[str, Any]) -> list[str]:
    urls = [str(_payload(a).get("url") or "") for a in _attachments(message)]
    return [u[:1000] for u in urls if u.startswith(("https://", "http://"))]


def to_events(event: Mapping[str, Any]
              ) -> list[InboundEvent] | Unfollow | KeptWindow | None:
    """What an event means for us: InboundEvents, an unfollow, a tap that keeps the
    messaging window open, or None (set aside)."""
    name = str(event.get("event_name", ""))
    user = sender_of(event)
    if not user or name not in ANSWERED_EVENTS | {"unfollow"}:
        return None
    key = event_key(event)
    if name == "unfollow":
        return Unfollow(user)
    if name in ("follow", "user_click_chatnow"):
        return [InboundEvent(CHANNEL, user, Input("command", command="start"), key)]
    raw_message = event.get("message")
    message: Mapping[str, Any] = raw_message if isinstance(raw_message, Mapping) else {}
    inputs: list[Input]
    if name == "user_send_text":
        text = str(message.get("text") or "")
        if text == CHOICE_PREFIX + KEEP_WINDOW:
            return KeptWindow(user)
        inputs = [text_input(text)]
    elif name == "user_send_location":
        inputs = [_location(message)]
    elif name in ("user_send_image", "user_send_audio"):
        # A photo (or voice note) is kept by its URL; several in one message are several.
        kind: InputKind = "photo" if name == "user_send_image" else "voice"
        inputs = [Input(kind, file_ref=url) for url in _urls(message)] or [Input("other")]
    else:
        inputs = [Input("other")]
    if len(inputs) == 1:
        return [InboundEvent(CHANNEL, user, inputs[0], key)]
    return [InboundEvent(CHANNEL, user, inp, f"{key}:{n}") for n, inp in enumerate(inputs)]


class ZaloInbound:
    """The inbound worker's handler for Zalo events."""

    def __init__(self, conversations: ConversationService,
                 unreachable: Callable[[str, str], Awaitable[None]],
                 heard: Callable[[str, str], Awaitable[None]]) -> None:
        self.conversations = conversations
        self.unreachable = unreachable
        self.heard = heard

    async def on_event(self, event: Mapping[str, Any]) -> None:
        meaning = to_events(event)
        if meaning is None:
            log.info("zalo event %s set aside", str(event.get("event_name"))[:40])
            return
        if isinstance(meaning, Unfollow):
            await self.on_unfollow(meaning.user_id)
            return
        if isinstance(meaning, KeptWindow):
            await self.heard(CHANNEL, meaning.user_id)
            log.info("zalo messaging window kept open")
            return
        for inbound in meaning:
            await self.conversations.handle(inbound)

    async def on_unfollow(self, user_id: str) -> None:
        """Alerts for this person now go to their other channels (or up the chain)."""
        await self.unreachable(CHANNEL, user_id)
        log.info("zalo user unfollowed; marked unreachable")
