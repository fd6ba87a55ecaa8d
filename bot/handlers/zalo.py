"""Zalo Official Account, inbound (channel adapter): the webhook and its events.

`POST /zalo/webhook` checks Zalo's signature and the event's age, stores the raw event in the
inbound queue (its msg_id is the key, so Zalo's retries store nothing new) and answers 200 at
once: Zalo wants an answer within 2 seconds and retries otherwise. The inbound worker
(bot/services/inbound_queue.py) hands each stored event to `ZaloAdapter.on_event`, which
turns it into InboundEvents for the conversation service.

Our buttons are `oa.query.hide` buttons: a press comes back as a text message from the
person carrying the button's payload, which is CHOICE_PREFIX followed by the choice id.
The prefix tells a press from typed text (a child's name typed in lower case must not be
taken for a button), and Zalo keeps the payload out of the person's view.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.domain.messages import Input, InputKind
from bot.handlers.typed import typed_input
from bot.services.conversation import ConversationService, InboundEvent
from storage import inbound_repo, repo

log = logging.getLogger(__name__)
CHANNEL = "zalo"
CHOICE_PREFIX = "#"
MAX_CHOICE = 128
MAX_TEXT = 20_000
SIGNATURE_HEADER = "X-ZEvent-Signature"
# Zalo retries an unanswered event at 30 s, 5 min, 15 min, 30 min and 1 h, with the
# event's original timestamp (as far as the docs tell): an age limit shorter than that
# would refuse Zalo's own retries of an event we never stored. A replay of an event we did
# store is harmless at any age (its key is there); the limit bounds replays of the rest.
DEFAULT_MAX_AGE = timedelta(minutes=150)
# How far ahead of our clock an event may claim to be (clock drift between Zalo and us).
MAX_AHEAD = timedelta(minutes=5)
# Events stored in one statement at most (7 values each, far below SQLite's bound limit).
MAX_BATCH = 500
# Events a person causes by writing to us; the rest (delivery and read receipts, what the
# OA itself sent) are stored and set aside without an answer.
ANSWERED_EVENTS = frozenset({
    "user_send_text", "user_send_location", "user_send_image", "user_send_audio",
    "user_send_file", "user_send_sticker", "user_send_gif", "user_send_link",
    "user_send_video", "user_send_business_card", "follow", "user_click_chatnow",
})


@dataclass(frozen=True)
class WebhookSettings:
    """What the signature check needs. The key is the OA secret key unless configured
    otherwise; the id the hash starts with is the body's `app_id` (or another body field:
    integrations differ, see INTEGRATIONS.md)."""

    app_id: str
    key: str
    id_field: str = "app_id"
    max_age: timedelta = DEFAULT_MAX_AGE

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> WebhookSettings:
        key = environ.get("ZALO_WEBHOOK_KEY") or environ.get("ZALO_OA_SECRET_KEY", "")
        minutes = environ.get("ZALO_WEBHOOK_MAX_AGE_MINUTES", "")
        return cls(app_id=environ.get("ZALO_APP_ID", ""), key=key,
                   id_field=environ.get("ZALO_WEBHOOK_ID_FIELD") or "app_id",
                   max_age=timedelta(minutes=float(minutes)) if minutes else DEFAULT_MAX_AGE)


def signature(signed_id: str, body: bytes, timestamp: str, key: str) -> str:
    """Zalo's mac: SHA-256 of id + raw body + timestamp + key, hex."""
    digest = hashlib.sha256()
    digest.update(signed_id.encode())
    digest.update(body)
    digest.update(timestamp.encode())
    digest.update(key.encode())
    return digest.hexdigest()


def sender_of(event: Mapping[str, Any]) -> str:
    """The Zalo user (as the OA knows them) an event is about: the sender of a message,
    the follower of follow/unfollow, `user_id` of user_click_chatnow. Never
    `user_id_by_app`, an id of the app that the OA's message API does not accept."""
    for holder in ("sender", "follower"):
        value = event.get(holder)
        if isinstance(value, Mapping) and value.get("id"):
            return str(value["id"])[:64]
    return str(event.get("user_id") or "")[:64]


def event_key(event: Mapping[str, Any]) -> str:
    """The deduplication key: Zalo's msg_id, or for events without one (follow) the event,
    its user and its timestamp, which Zalo's retries repeat."""
    message = event.get("message")
    msg_id = message.get("msg_id") if isinstance(message, Mapping) else None
    raw = (f"zalo:{msg_id}" if msg_id else
           f"zalo:{event.get('event_name')}:{sender_of(event)}:{event.get('timestamp')}")
    if len(raw) > 128:
        raw = "zalo:h:" + hashlib.sha256(raw.encode()).hexdigest()
    return raw


def event_time(event: Mapping[str, Any]) -> datetime | None:
    try:
        millis = int(str(event["timestamp"]))
        return datetime.fromtimestamp(millis / 1000, UTC)
    except (KeyError, ValueError, OverflowError, OSError):
        return None


class ZaloWebhook:
    """POST /zalo/webhook: verify, store, answer; the inbound worker does the rest."""

    def __init__(self, settings: WebhookSettings, sessions: async_sessionmaker[AsyncSession],
                 clock: Clock, on_stored: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.sessions = sessions
        self.clock = clock
        self.on_stored = on_stored
        self._waiting: list[tuple[str, str, dict[str, Any], datetime, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        event = self._verified(request.headers.get(SIGNATURE_HEADER, ""), raw)
        if event is None:
            return web.json_response({"error": "bad signature"}, status=401)
        sent_at = event_time(event)
        now = self.clock.now()
        if sent_at is None or not (now - self.settings.max_age <= sent_at <= now + MAX_AHEAD):
            log.warning("zalo event %s refused: timestamp outside the accepted window",
                        str(event.get("event_name"))[:40])
            return web.json_response({"error": "stale event"}, status=401)
        key = event_key(event)
        stored = await self._store(key, sender_of(event), event, now)
        if stored and self.on_stored is not None:
            self.on_stored()
        if not stored:
            # Not the key: without a msg_id it is made of the person's Zalo id.
            log.info("zalo event %s already stored", str(event.get("event_name"))[:40])
        return web.json_response({"error": 0})

    async def _store(self, key: str, sender: str, event: dict[str, Any], now: datetime) -> bool:
        """Events that arrive while a batch is being written go into the next one: one
        transaction, one wait for the write lock, however many people write at once. The
        200 is only sent once the event's own transaction has committed."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((key, sender, event, now, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return await done

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                async with self.sessions.begin() as s:
                    stored = await inbound_repo.store_events(
                        s, CHANNEL, [(key, sender, event, now)
                                     for key, sender, event, now, _ in batch])
            except Exception as exc:
                log.exception("storing %s zalo events failed", len(batch))
                for *_, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for (*_, done), ok in zip(batch, stored, strict=True):
                if not done.done():
                    done.set_result(ok)

    def _verified(self, header: str, raw: bytes) -> dict[str, Any] | None:
        """The event, if the header carries its valid signature; None otherwise."""
        if not header.startswith("mac=") or not self.settings.key:
            return None
        try:
            event = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(event, dict):
            return None
        app_id = str(event.get("app_id", ""))
        if self.settings.app_id and app_id != self.settings.app_id:
            return None
        expected = signature(str(event.get(self.settings.id_field, "")), raw,
                             str(event.get("timestamp", "")), self.settings.key)
        if not hmac.compare_digest(header[4:].strip().lower().encode(), expected.encode()):
            return None
        return event


# ---- turning an event into what the conversation service understands ------------------


@dataclass(frozen=True)
class Unfollow:
    """The person left the OA: we cannot write to them on Zalo any more."""

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


def to_events(event: Mapping[str, Any]) -> list[InboundEvent] | Unfollow | None:
    """What an event means for us: InboundEvents, an unfollow, or None (set aside)."""
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
        inputs = [text_input(str(message.get("text") or ""))]
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


class ZaloAdapter:
    """The inbound worker's handler for Zalo events."""

    def __init__(self, conversations: ConversationService,
                 sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self.conversations = conversations
        self.sessions = sessions
        self.clock = clock

    async def on_event(self, event: dict[str, Any]) -> None:
        meaning = to_events(event)
        if meaning is None:
            log.info("zalo event %s set aside", str(event.get("event_name"))[:40])
            return
        if isinstance(meaning, Unfollow):
            await self.on_unfollow(meaning.user_id)
            return
        for inbound in meaning:
            await self.conversations.handle(inbound)

    async def on_unfollow(self, user_id: str) -> None:
        """Alerts for this person now go to their other channels (or up the chain)."""
        async with self.sessions.begin() as s:
            await repo.mark_unreachable(s, CHANNEL, user_id, self.clock.now())
        log.info("zalo user unfollowed; marked unreachable")
