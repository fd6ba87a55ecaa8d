"""Zalo's webhook side, played for tests: people who write to the OA.

Each method builds the event JSON Zalo posts (ids and timestamps as strings, timestamps in
milliseconds), signs it as Zalo does (X-ZEvent-Signature: mac=SHA-256 of app id + raw body +
timestamp + OA secret key) and POSTs it to our webhook. Variants for the refusal tests:
a wrong key, no header, a body changed after signing, an old timestamp, the same event
delivered again.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass
class Posted:
    event: dict[str, Any]
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class ZaloUsers:
    def __init__(self, app_id: str, oa_id: str, secret_key: str,
                 now_ms: Callable[[], int],
                 on_user_message: Callable[[str], None] | None = None) -> None:
        self.app_id, self.oa_id, self.secret_key = app_id, oa_id, secret_key
        self.now_ms = now_ms
        # Anything a person sends opens their messaging window again (the API side's).
        self.on_user_message = on_user_message
        self.webhook_url = ""
        self.msg_ids = itertools.count(1)
        self.posted: list[Posted] = []
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # ---- events as Zalo builds them --------------------------------------------------------

    def _msg_id(self) -> str:
        return f"{next(self.msg_ids):08d}a1b2c3d4e5f6"

    def message_event(self, name: str, user: str, message: dict[str, Any],
                      at_ms: int | None = None) -> dict[str, Any]:
        return {"app_id": self.app_id, "sender": {"id": user},
                "user_id_by_app": f"app{user}", "recipient": {"id": self.oa_id},
                "event_name": name, "message": {"msg_id": self._msg_id(), **message},
                "timestamp": str(self.now_ms() if at_ms is None else at_ms)}

    def text_event(self, user: str, text: str) -> dict[str, Any]:
        return self.message_event("user_send_text", user, {"text": text})

    def location_event(self, user: str, latitude: float, longitude: float) -> dict[str, Any]:
        return self.message_event("user_send_location", user, {"text": "", "attachments": [
            {"type": "location", "payload": {"coordinates": {
                "latitude": str(latitude), "longitude": str(longitude)}}}]})

    def image_event(self, user: str, *urls: str) -> dict[str, Any]:
        return self.message_event("user_send_image", user, {"text": "", "attachments": [
            {"type": "image", "payload": {"thumbnail": url, "url": url}} for url in urls]})

    def sticker_event(self, user: str) -> dict[str, Any]:
        return self.message_event("user_send_sticker", user, {"attachments": [
            {"type": "sticker", "payload": {"id": "bfe5d9b9a9fc40a219ed",
                                            "url": "https://zalo-api.zadn.vn/sticker.png"}}]})

    def follow_event(self, user: str, name: str = "follow") -> dict[str, Any]:
        return {"oa_id": self.oa_id, "follower": {"id": user}, "user_id_by_app": f"app{user}",
                "event_name": name, "source": "oa_profile", "app_id": self.app_id,
                "timestamp": str(self.now_ms())}

    def chatnow_event(self, user: str) -> dict[str, Any]:
        return {"oa_id": self.oa_id, "user_id": user, "user_id_by_app": f"app{user}",
                "event_name": "user_click_chatnow", "app_id": self.app_id,
                "timestamp": str(self.now_ms())}

    def receipt_event(self, user: str) -> dict[str, Any]:
        """A delivery receipt: Zalo tells us a message reached the person."""
        return {"app_id": self.app_id, "sender": {"id": self.oa_id},
                "recipient": {"id": user}, "event_name": "user_received_message",
                "message": {"msg_ids": ["x1"]}, "timestamp": str(self.now_ms())}

    # ---- posting ---------------------------------------------------------------------------

    def sign(self, event: dict[str, Any], body: bytes, key: str | None = None) -> str:
        raw = (str(event.get("app_id", "")).encode() + body
               + str(event.get("timestamp", "")).encode() + (key or self.secret_key).encode())
        return "mac=" + hashlib.sha256(raw).hexdigest()

    async def post(self, event: dict[str, Any], *, key: str | None = None,
                   header: bool = True, tamper: Callable[[bytes], bytes] | None = None) -> int:
        """POST the event signed (with `key` instead of the OA's, if given); `tamper`
        changes the body after signing; `header=False` sends no signature at all."""
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if header:
            headers["X-ZEvent-Signature"] = self.sign(event, body, key)
        if tamper is not None:
            body = tamper(body)
        return await self.post_raw(event, body, headers)

    async def post_raw(self, event: dict[str, Any], body: bytes,
                       headers: dict[str, str]) -> int:
        assert self.webhook_url, "set the webhook URL first"
        if self._http is None:
            self._http = aiohttp.ClientSession()
        async with self._http.post(self.webhook_url, data=body, headers=headers) as resp:
            await resp.read()
            status = resp.status
        self.posted.append(Posted(event, status, body, headers))
        if status == 200 and self.on_user_message and str(
                event.get("event_name", "")).startswith(("user_send_", "follow")):
            self.on_user_message(_user_of(event))
        return status

    async def redeliver(self, n: int = -1) -> int:
        """Zalo's retry: the very same request again (same bytes, same signature)."""
        last = self.posted[n]
        return await self.post_raw(last.event, last.body, last.headers)

    async def send_text(self, user: str, text: str) -> int:
        return await self.post(self.text_event(user, text))

    async def press(self, user: str, payload: str) -> int:
        """Tapping an oa.query.hide button: Zalo sends its payload as the person's text."""
        return await self.post(self.text_event(user, payload))

    async def share_location(self, user: str, latitude: float, longitude: float) -> int:
        return await self.post(self.location_event(user, latitude, longitude))

    async def send_image(self, user: str, *urls: str) -> int:
        return await self.post(self.image_event(user, *urls))

    async def follow(self, user: str) -> int:
        return await self.post(self.follow_event(user))

    async def unfollow(self, user: str) -> int:
        return await self.post(self.follow_event(user, "unfollow"))

    async def click_chat_now(self, user: str) -> int:
        return await self.post(self.chatnow_event(user))


def _user_of(event: dict[str, Any]) -> str:
    for holder in ("sender", "follower"):
        if isinstance(event.get(holder), dict):
            return str(event[holder]["id"])
    return str(event.get("user_id", ""))
