"""A fake Zalo Official Account platform on 127.0.0.1, as strict as the real one where it
matters (tests).

API side: `POST /v3.0/oa/message/cs` (header access_token; texts, button templates, images),
`GET /v3.0/oa/user/detail`, `POST /v3.0/oa/quota/message`, and the OAuth refresh `POST
/v4/oa/access_token` (form-encoded, header secret_key). Like Zalo it answers HTTP 200 with
`{"error": <code>, "message": ...}` when something is wrong: -216 for an unknown or
expired access token (tokens expire on the injected clock), -32 past 4000 calls a minute,
-210 over a limit (text 2000, button title 100, payload 1000, buttons per message), -201 a
malformed request, -230 a user outside the messaging window (tests close it; a user who
writes opens it again: `open_window`), -213 a user who unfollowed. The window is a budget,
as Zalo's help centre describes it: `free_replies` (8) messages within `reply_window` (48
hours) of the user's last message; the next one, or any after those hours, is refused
(-232 past the count, -230 past the time: Zalo's exact code for the count is not
documented; both mean "cannot be messaged now"). A user the fake never heard from is taken
to have written when the OA first sends to them. The OAuth endpoint
issues `expires_in` as a string and rotates the refresh token on every use: a refresh
token works once, a second use is refused with an OAuth error body (error_name /
error_reason, HTTP 200). Faults on demand: Zalo error codes, HTTP 5xx, hung requests, and
for OAuth a refresh that Zalo carries out but whose answer never arrives.

The webhook side (people writing to the OA: signed events posted to our webhook) lives in
its own section below.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web

APP_ID = "3045612278123456789"
OA_ID = "579745863508352884"
OA_SECRET_KEY = "fake-oa-secret-key"
APP_SECRET = "fake-app-secret"
ACCESS_TTL = timedelta(hours=25)
REFRESH_TTL = timedelta(days=90)
TEXT_LIMIT = 2000
TITLE_LIMIT = 100
PAYLOAD_LIMIT = 1000
MAX_BUTTONS = 5
FREE_REPLIES = 8
REPLY_WINDOW = timedelta(hours=48)
BUTTON_TYPES = ("oa.query.show", "oa.query.hide", "oa.open.url", "oa.open.phone",
                "oa.open.sms")
# Zalo's OAuth v4 error bodies; the numbers are those developers report, not documented.
OAUTH_INVALID_REFRESH = -14014
OAUTH_INVALID_APP = -14002
OAUTH_INVALID_PARAM = -14003


class ZaloApiError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class ZaloSent:
    """One message the OA sent, as the fake accepted it."""

    user_id: str
    message_id: str
    text: str
    buttons: list[dict[str, Any]] = field(default_factory=list)
    image_url: str | None = None
    at: datetime | None = None

    @property
    def payloads(self) -> list[str]:
        """The oa.query.* payloads (our choice ids)."""
        return [str(b["payload"]) for b in self.buttons if b["type"].startswith("oa.query")]

    @property
    def phones(self) -> list[str]:
        return [str(b["payload"]["phone_code"]) for b in self.buttons
                if b["type"] == "oa.open.phone"]

    @property
    def urls(self) -> list[str]:
        return [str(b["payload"]["url"]) for b in self.buttons if b["type"] == "oa.open.url"]


@dataclass
class _Refresh:
    refresh_token: str
    outcome: str  # "ok" | "refused" | "lost" (carried out, answer never sent)


class FakeZalo:
    def __init__(self, app_id: str = APP_ID, oa_id: str = OA_ID,
                 oa_secret_key: str = OA_SECRET_KEY, app_secret: str = APP_SECRET, *,
                 now: Callable[[], datetime] | None = None, per_minute: int = 4000,
                 max_buttons: int = MAX_BUTTONS, revoke_on_refresh: bool = True) -> None:
        self.app_id, self.oa_id = app_id, oa_id
        self.oa_secret_key, self.app_secret = oa_secret_key, app_secret
        # Token expiry and the rate limit run on this clock: tests pass their FakeClock's.
        self.now: Callable[[], datetime] = now or (lambda: datetime.now(UTC))
        self.per_minute = per_minute
        self.max_buttons = max_buttons
        # Zalo may invalidate the previous access token when a refresh issues a new one;
        # the strict default makes clients cope with it.
        self.revoke_on_refresh = revoke_on_refresh
        self.access_tokens: dict[str, datetime] = {}
        # Refresh token -> when it expires; spent ones move to `spent`.
        self.refresh_tokens: dict[str, datetime] = {}
        self.spent: set[str] = set()
        self.refreshes: list[_Refresh] = []
        self.sent: list[ZaloSent] = []
        self.calls: list[str] = []
        self.outside_window: set[str] = set()
        self.unfollowed: set[str] = set()
        # The messaging window: each user's last message, and what the OA sent since.
        self.free_replies = FREE_REPLIES
        self.reply_window = REPLY_WINDOW
        self.heard_at: dict[str, datetime] = {}
        self.replies_since: dict[str, int] = {}
        # Sends refused because the user's window was spent or over: (user, code).
        self.refused: list[tuple[str, int]] = []
        self.profiles: dict[str, dict[str, Any]] = {}
        self.quota_total = 2000
        # Faults for the next OA API calls, in order: a negative int is a Zalo error code
        # (HTTP 200), a positive one an HTTP status, "timeout" a request that hangs and is
        # never carried out.
        self.fail_next: deque[int | str] = deque()
        # Faults for the next OAuth calls: as above, plus "lost": the refresh is carried
        # out (the old token spent, a new pair issued) but the answer never comes.
        self.oauth_fail_next: deque[int | str] = deque()
        self.hang_seconds = 30.0
        # Seconds an OAuth refresh takes (a slow Zalo widens races between processes).
        self.oauth_delay = 0.0
        # Every token ever issued (tests look for them where they must not be: logs).
        self.issued: list[str] = []
        self.rejected_rate = 0
        self._window: deque[datetime] = deque()
        self._message_ids = itertools.count(1)
        self._release = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.port = 0

    # ---- server ---------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v3.0/oa/message/cs", self._send)
        app.router.add_get("/v3.0/oa/user/detail", self._profile)
        app.router.add_get("/v2.0/oa/getprofile", self._profile)
        app.router.add_post("/v3.0/oa/quota/message", self._quota)
        app.router.add_post("/v4/oa/access_token", self._oauth)
        self.add_webhook_routes(app)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        self._release.set()  # hung requests end, or shutting down would wait for them
        if "_users" in self.__dict__:
            await self.users.close()
        if self.runner:
            await self.runner.cleanup()

    @property
    def base_url(self) -> str:
        """Both ZALO_API_BASE_URL and ZALO_OAUTH_BASE_URL."""
        return f"http://127.0.0.1:{self.port}"

    def env(self, refresh_token: str = "") -> dict[str, str]:
        """The ZALO_* environment that points SafeChild at this fake."""
        return {"ZALO_APP_ID": self.app_id, "ZALO_OA_ID": self.oa_id,
                "ZALO_OA_SECRET_KEY": self.oa_secret_key, "ZALO_APP_SECRET": self.app_secret,
                "ZALO_REFRESH_TOKEN": refresh_token, "ZALO_API_BASE_URL": self.base_url,
                "ZALO_OAUTH_BASE_URL": self.base_url}

    # ---- what tests set up ------------------------------------------------------------------

    def authorise(self) -> tuple[str, str]:
        """The OA admin grants the app access: a first (access, refresh) pair."""
        return self._issue()

    def open_window(self, user_id: str) -> None:
        """The user wrote to the OA: the OA may message them again, `free_replies` times
        within `reply_window`."""
        self.outside_window.discard(user_id)
        self.unfollowed.discard(user_id)
        self.heard_at[user_id] = self.now()
        self.replies_since[user_id] = 0

    def close_window(self, user_id: str) -> None:
        self.outside_window.add(user_id)

    def unfollow(self, user_id: str) -> None:
        self.unfollowed.add(user_id)

    def expire_access_tokens(self) -> None:
        for token in self.access_tokens:
            self.access_tokens[token] = self.now() - timedelta(seconds=1)

    def sent_to(self, user_id: str) -> list[ZaloSent]:
        return [m for m in self.sent if m.user_id == user_id]

    def refresh_outcomes(self) -> list[str]:
        return [r.outcome for r in self.refreshes]

    # ---- helpers ----------------------------------------------------------------------------

    def _issue(self) -> tuple[str, str]:
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        now = self.now()
        self.access_tokens[access] = now + ACCESS_TTL
        self.refresh_tokens[refresh] = now + REFRESH_TTL
        self.issued += [access, refresh]
        return access, refresh

    async def _hang(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._release.wait(), self.hang_seconds)

    @staticmethod
    def _error(code: int, message: str) -> web.Response:
        return web.json_response({"error": code, "message": message})

    async def _fault(self, path: str) -> web.Response | None:
        if not self.fail_next:
            return None
        fault = self.fail_next.popleft()
        self.calls.append(f"{path}:fault:{fault}")
        if fault == "timeout":
            await self._hang()
            return web.Response(status=504)
        code = int(fault)
        if code > 0:
            return web.json_response({"error": -1, "message": "Server error"}, status=code)
        return self._error(code, "Injected error")

    def _check_token(self, request: web.Request) -> None:
        token = request.headers.get("access_token", "")
        expires = self.access_tokens.get(token)
        if expires is None or expires <= self.now():
            raise ZaloApiError(-216, "Access token is invalid")

    def _rate(self) -> None:
        now = self.now()
        while self._window and now - self._window[0] >= timedelta(minutes=1):
            self._window.popleft()
        if len(self._window) >= self.per_minute:
            self.rejected_rate += 1
            raise ZaloApiError(-32, "Your application reached limit call api")
        self._window.append(now)

    async def _guarded(self, request: web.Request, path: str,
                       handler: Callable[[], Any]) -> web.Response:
        fault = await self._fault(path)
        if fault is not None:
            return fault
        self.calls.append(path)
        try:
            self._check_token(request)
            self._rate()
            data = await handler()
        except ZaloApiError as exc:
            return self._error(exc.code, exc.message)
        return web.json_response({"error": 0, "message": "Success", "data": data})

    # ---- OA API -------------------------------------------------------------------------------

    async def _send(self, request: web.Request) -> web.Response:
        async def handler() -> dict[str, Any]:
            try:
                body = await request.json()
            except ValueError as exc:
                raise ZaloApiError(-201, "Body is invalid") from exc
            return self._accept(body)
        return await self._guarded(request, "message/cs", handler)

    def _accept(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ZaloApiError(-201, "Body is invalid")
        recipient = body.get("recipient")
        user_id = recipient.get("user_id") if isinstance(recipient, dict) else None
        if not isinstance(user_id, str) or not user_id:
            raise ZaloApiError(-201, "user_id is invalid")
        message = body.get("message")
        if not isinstance(message, dict):
            raise ZaloApiError(-201, "message is invalid")
        text = message.get("text", "")
        if not isinstance(text, str):
            raise ZaloApiError(-201, "text is invalid")
        if len(text) > TEXT_LIMIT:
            raise ZaloApiError(-210, "Parameter exceeds allowable limit: text")
        buttons: list[dict[str, Any]] = []
        image_url: str | None = None
        attachment = message.get("attachment")
        if attachment is not None:
            if not isinstance(attachment, dict) or attachment.get("type") != "template" \
                    or not isinstance(attachment.get("payload"), dict):
                raise ZaloApiError(-201, "attachment is invalid")
            payload = attachment["payload"]
            if payload.get("template_type") == "media":
                image_url = self._image(payload)
            else:
                buttons = self._buttons(payload.get("buttons"))
                if not text.strip():
                    raise ZaloApiError(-201, "text is invalid")
        elif not text.strip():
            raise ZaloApiError(-201, "text is invalid")
        if user_id in self.unfollowed:
            raise ZaloApiError(-213, "User has not followed OA")
        if user_id in self.outside_window:
            raise ZaloApiError(-230, "User has not interacted with the OA in the past 7 days")
        self._spend(user_id)
        sent = ZaloSent(user_id, f"m{next(self._message_ids):012d}", text, buttons, image_url,
                        self.now())
        self.sent.append(sent)
        return {"message_id": sent.message_id, "user_id": user_id}

    def _spend(self, user_id: str) -> None:
        """One of the user's free replies, or Zalo's refusal."""
        now = self.now()
        heard = self.heard_at.setdefault(user_id, now)
        if now - heard >= self.reply_window:
            self.refused.append((user_id, -230))
            raise ZaloApiError(-230, "User has not interacted with the OA in the past 48 hours")
        if self.replies_since.get(user_id, 0) >= self.free_replies:
            self.refused.append((user_id, -232))
            raise ZaloApiError(-232, "Free replies to this user used up until they interact")
        self.replies_since[user_id] = self.replies_since.get(user_id, 0) + 1

    def _buttons(self, raw: Any) -> list[dict[str, Any]]:
        if not isinstance(raw, list) or not raw:
            raise ZaloApiError(-201, "buttons is invalid")
        if len(raw) > self.max_buttons:
            raise ZaloApiError(-210, "Parameter exceeds allowable limit: buttons")
        for button in raw:
            if not isinstance(button, dict) or button.get("type") not in BUTTON_TYPES:
                raise ZaloApiError(-201, "button type is invalid")
            title = button.get("title")
            if not isinstance(title, str) or not title.strip():
                raise ZaloApiError(-201, "button title is invalid")
            if len(title) > TITLE_LIMIT:
                raise ZaloApiError(-210, "Parameter exceeds allowable limit: title")
            payload = button.get("payload")
            kind = button["type"]
            if kind.startswith("oa.query"):
                if not isinstance(payload, str) or not payload:
                    raise ZaloApiError(-201, "button payload is invalid")
                if len(payload) > PAYLOAD_LIMIT:
                    raise ZaloApiError(-210, "Parameter exceeds allowable limit: payload")
            elif kind == "oa.open.url":
                url = payload.get("url") if isinstance(payload, dict) else None
                if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                    raise ZaloApiError(-201, "url is invalid")
            else:
                phone = payload.get("phone_code") if isinstance(payload, dict) else None
                if not isinstance(phone, str) or not phone.lstrip("+").isdigit():
                    raise ZaloApiError(-201, "phone_code is invalid")
        return [dict(b) for b in raw]

    @staticmethod
    def _image(payload: dict[str, Any]) -> str:
        elements = payload.get("elements")
        if not isinstance(elements, list) or len(elements) != 1 \
                or not isinstance(elements[0], dict):
            raise ZaloApiError(-201, "elements is invalid")
        element = elements[0]
        url = element.get("url")
        if element.get("media_type") != "image" or not isinstance(url, str) \
                or not url.startswith(("http://", "https://")):
            raise ZaloApiError(-201, "image url is invalid")
        return url

    async def _profile(self, request: web.Request) -> web.Response:
        async def handler() -> dict[str, Any]:
            try:
                user_id = str(json.loads(request.query.get("data", ""))["user_id"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ZaloApiError(-201, "data is invalid") from exc
            profile = {"user_id": user_id, "display_name": f"Zalo user {user_id[-4:]}",
                       "user_is_follower": user_id not in self.unfollowed,
                       "avatar": "https://s120-ava-talk.zadn.vn/avatar.jpg"}
            profile.update(self.profiles.get(user_id, {}))
            return profile
        return await self._guarded(request, "user/detail", handler)

    async def _quota(self, request: web.Request) -> web.Response:
        async def handler() -> dict[str, Any]:
            return {"quota_owner": "OA", "product_type": "cs", "quota_type": "sub_quota",
                    "total": self.quota_total,
                    "remain": max(0, self.quota_total - len(self.sent))}
        return await self._guarded(request, "quota/message", handler)

    # ---- OAuth ------------------------------------------------------------------------------

    @staticmethod
    def _oauth_error(code: int, name: str, reason: str) -> web.Response:
        return web.json_response({"error": code, "error_name": name, "error_reason": reason,
                                  "error_description": reason,
                                  "ref_doc": "https://developers.zalo.me/docs/"})

    async def _oauth(self, request: web.Request) -> web.Response:
        form = await request.post()
        refresh_token = str(form.get("refresh_token", ""))
        if self.oauth_delay:
            await asyncio.sleep(self.oauth_delay)
        fault = self.oauth_fail_next.popleft() if self.oauth_fail_next else None
        self.calls.append(f"oauth:fault:{fault}" if fault is not None else "oauth")
        if fault == "timeout":
            await self._hang()
            return web.Response(status=504)
        if isinstance(fault, int) and fault > 0:
            return web.json_response({"error": -1, "message": "Server error"}, status=fault)
        if isinstance(fault, int):
            return self._oauth_error(fault, "Injected", "Injected error")
        if request.headers.get("secret_key") != self.app_secret \
                or form.get("app_id") != self.app_id:
            return self._oauth_error(OAUTH_INVALID_APP, "Invalid app", "Invalid app_id/secret")
        if form.get("grant_type") != "refresh_token":
            return self._oauth_error(OAUTH_INVALID_PARAM, "Invalid parameter",
                                     "Invalid grant_type")
        expires = self.refresh_tokens.get(refresh_token)
        if expires is None or expires <= self.now():
            self.refreshes.append(_Refresh(refresh_token, "refused"))
            return self._oauth_error(OAUTH_INVALID_REFRESH, "Invalid parameter",
                                     "Invalid refresh token")
        # Single use: spent the moment Zalo accepts it, whether or not the answer arrives.
        del self.refresh_tokens[refresh_token]
        self.spent.add(refresh_token)
        if self.revoke_on_refresh:
            self.access_tokens.clear()
        access, refresh = self._issue()
        if fault == "lost":
            self.refreshes.append(_Refresh(refresh_token, "lost"))
            await self._hang()
            return web.Response(status=504)
        self.refreshes.append(_Refresh(refresh_token, "ok"))
        return web.json_response({"access_token": access, "refresh_token": refresh,
                                  "expires_in": str(int(ACCESS_TTL.total_seconds()))})

    # ---- webhook side: people writing to the OA (signed events posted to our webhook) ----
    # Kept apart from the API side above; it may add its own routes here.

    def add_webhook_routes(self, app: web.Application) -> None:
        return None

    @property
    def users(self) -> ZaloUsers:
        """People writing to the OA: their events go, signed, to `users.webhook_url`. Whoever
        writes opens their messaging window again; whoever unfollows closes it."""
        found: ZaloUsers | None = self.__dict__.get("_users")
        if found is None:
            found = ZaloUsers(self.app_id, self.oa_id, self.oa_secret_key,
                              lambda: int(self.now().timestamp() * 1000),
                              on_user_message=self.open_window, on_unfollow=self.unfollow)
            self.__dict__["_users"] = found
        return found


# ---- webhook side: the people ------------------------------------------------------------
# Each method builds the event JSON Zalo posts (ids and timestamps as strings, timestamps in
# milliseconds), signs it as Zalo does (X-ZEvent-Signature: mac=SHA-256 of app id + raw body
# + timestamp + OA secret key) and POSTs it to our webhook. Variants for the refusal tests:
# a wrong key, no header, a body changed after signing, an old timestamp, the same event
# delivered again.


@dataclass
class Posted:
    event: dict[str, Any]
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class ZaloUsers:
    def __init__(self, app_id: str, oa_id: str, secret_key: str,
                 now_ms: Callable[[], int],
                 on_user_message: Callable[[str], None] | None = None,
                 on_unfollow: Callable[[str], None] | None = None) -> None:
        self.app_id, self.oa_id, self.secret_key = app_id, oa_id, secret_key
        self.now_ms = now_ms
        # Anything a person sends opens their messaging window again (the API side's).
        self.on_user_message = on_user_message
        self.on_unfollow = on_unfollow
        self.webhook_url = ""
        # Several processes behind one URL: each event goes to the next one in turn, as a
        # load balancer would spread them (the benchmark's --processes).
        self.webhook_urls: list[str] = []
        self._turn = itertools.count()
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
        try:
            body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        except UnicodeEncodeError:
            # A lone surrogate has no UTF-8 form: JSON carries it escaped (\ud800).
            body = json.dumps(event, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if header:
            headers["X-ZEvent-Signature"] = self.sign(event, body, key)
        if tamper is not None:
            body = tamper(body)
        return await self.post_raw(event, body, headers)

    async def post_raw(self, event: dict[str, Any], body: bytes,
                       headers: dict[str, str]) -> int:
        url = (self.webhook_urls[next(self._turn) % len(self.webhook_urls)]
               if self.webhook_urls else self.webhook_url)
        assert url, "set the webhook URL first"
        if self._http is None:
            # Zalo posts from many servers: no client-side cap on connections at once.
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        async with self._http.post(url, data=body, headers=headers) as resp:
            await resp.read()
            status = resp.status
        self.posted.append(Posted(event, status, body, headers))
        name = "" if status != 200 else str(event.get("event_name", ""))
        if name == "unfollow" and self.on_unfollow is not None:
            self.on_unfollow(_user_of(event))
        elif name.startswith(("user_send_", "follow", "user_click")) \
                and self.on_user_message is not None:
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
