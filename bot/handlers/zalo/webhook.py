"""POST /zalo/webhook (zalo channel): check Zalo's signature and the event's age, store the
raw event in the inbound queue (its msg_id is the key, so Zalo's retries store nothing new)
and answer 200 at once: Zalo wants an answer within 2 seconds and retries otherwise. The
inbound worker (bot/workers/inbound.py) hands each stored event to
bot/handlers/zalo/inbound.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from bot.clock import Clock
from bot.config import env_number
from bot.domain.messages import storable

log = logging.getLogger(__name__)
CHANNEL = "zalo"
WEBHOOK_PATH = "/zalo/webhook"
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
        minutes = env_number(environ, "ZALO_WEBHOOK_MAX_AGE_MINUTES",
                             DEFAULT_MAX_AGE / timedelta(minutes=1))
        return cls(app_id=environ.get("ZALO_APP_ID", ""), key=key,
                   id_field=environ.get("ZALO_WEBHOOK_ID_FIELD") or "app_id",
                   max_age=timedelta(minutes=minutes))


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


StoreEvents = Callable[[str, Sequence[tuple[str, str, dict[str, Any], datetime]]],
                      Awaitable[list[bool]]]


class ZaloWebhook:
    """POST /zalo/webhook: verify, store, answer; the inbound worker does the rest."""

    def __init__(self, settings: WebhookSettings, store: StoreEvents, clock: Clock,
                 on_stored: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.store = store
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
        # Checked as it arrived; kept as the database can keep it.
        event = storable(event)
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
                stored = await self.store(CHANNEL, [(key, sender, event, now)
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
        except (ValueError, RecursionError):
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
