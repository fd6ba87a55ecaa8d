"""A small typed client of the Zalo Official Account Open API v3 on aiohttp (zalo channel).

Zalo answers HTTP 200 with `{"error": <code>, "message": ...}` when something is wrong; the
client turns that into ZaloError with flags the outbox channel can act on, and network
trouble (timeouts, 5xx, garbage) into ZaloUnavailable. An invalid access token (-216, or
-220 "expired") is refreshed through the token store and the call tried once more. The
token pair itself lives in the database (bot/handlers/zalo/tokens.py).

Error codes (Zalo's published table): -32 rate limit (4000 calls a minute per app), -211 out
of quota; -230/-232 the user has not interacted with the OA lately, -213 not following,
-227 banned or inactive, -244 restricted this message type, -218 this user's receive limit
reached: the person cannot be messaged now; -201/-210/-233/-100 bad request; -204/-205/
-209/-212/-219/-221/-223/-224/-235/-240 the app or OA cannot use this API. Never logs a
token or a message text.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import aiohttp

from bot.clock import Clock
from bot.config import env_number, env_whole
from bot.handlers.zalo.tokens import (
    LEASE,
    AccessToken,
    AlertAdmins,
    RefreshRefused,
    RefreshUnavailable,
    TokenPair,
    TokenRows,
    TokensBusy,
    TokensLost,
    ZaloTokens,
)

log = logging.getLogger(__name__)

DEFAULT_API_BASE_URL = "https://openapi.zalo.me"
DEFAULT_OAUTH_BASE_URL = "https://oauth.zaloapp.com"
SEND_PATH = "/v3.0/oa/message/cs"
PROFILE_PATH = "/v3.0/oa/user/detail"
QUOTA_PATH = "/v3.0/oa/quota/message"
TOKEN_PATH = "/v4/oa/access_token"

TEXT_LIMIT = 2000
TITLE_LIMIT = 100
PAYLOAD_LIMIT = 1000
# Buttons in one template message. Zalo's documentation does not state a hard number that
# we could verify; 5 is the value its examples stay within. Configurable (ZALO_MAX_BUTTONS).
MAX_BUTTONS = 5
ACCESS_TOKEN_LIFETIME = 90000.0  # seconds (25 hours), when Zalo leaves expires_in out

ButtonType = Literal["oa.query.hide", "oa.open.phone", "oa.open.url"]
BUTTON_TYPES: tuple[str, ...] = ("oa.query.hide", "oa.open.phone", "oa.open.url")

TOKEN_CODES = frozenset({-216, -220})
UNREACHABLE_CODES = frozenset({-213, -218, -227, -230, -232, -244})
RATE_LIMIT_CODES = {-32: 60.0, -211: 3600.0}
PERMANENT_CODES = frozenset({-100, -201, -204, -205, -209, -210, -212, -219, -221, -223,
                             -224, -233, -235, -240})


@dataclass(frozen=True)
class ZaloButton:
    """One button under a message. `payload`: our choice id (oa.query.hide: comes back as a
    text message from the user), a phone number (oa.open.phone opens the dialer), or an
    http(s) URL (oa.open.url)."""

    title: str
    type: ButtonType
    payload: str


class ZaloError(Exception):
    """Zalo answered with error != 0.

    outside_window: the person cannot be messaged on Zalo now (not interacted lately,
        unfollowed, blocked, receive limit): deliver elsewhere, mark them unreachable here.
    rate_limited: too many calls; retry after `retry_after` seconds.
    permanent: this request will never succeed as it is.
    """

    def __init__(self, code: int, message: str = "", *, outside_window: bool = False,
                 rate_limited: bool = False, retry_after: float | None = None,
                 permanent: bool = False) -> None:
        super().__init__(f"zalo error {code}: {message}".strip())
        self.code = code
        self.message = message
        self.outside_window = outside_window
        self.rate_limited = rate_limited
        self.retry_after = retry_after
        self.permanent = permanent


class ZaloAuthError(ZaloError):
    """The OA's authorisation is lost (Zalo refused the refresh token): nothing can be sent
    on Zalo until an admin authorises the app again. Flagged outside_window, because for
    every person it means exactly that: deliver on another channel now."""

    def __init__(self, code: int | None) -> None:
        super().__init__(-216 if code is None else code, "OA authorisation lost",
                         outside_window=True, permanent=True)


class ZaloUnavailable(Exception):
    """No usable answer (network error, timeout, HTTP 5xx, no token right now): retry later."""


@dataclass(frozen=True)
class ZaloSettings:
    """Configuration from the environment. Secrets are kept out of repr()."""

    app_id: str
    oa_id: str
    oa_secret_key: str = field(repr=False)  # webhook signature key (the webhook's side)
    app_secret: str = field(repr=False)     # OAuth `secret_key` header
    refresh_token: str = field(default="", repr=False)  # seeds an empty token store only
    access_token: str = field(default="", repr=False)
    api_base_url: str = DEFAULT_API_BASE_URL
    oauth_base_url: str = DEFAULT_OAUTH_BASE_URL
    max_buttons: int = MAX_BUTTONS
    timeout: float = 10.0

    REQUIRED = ("ZALO_APP_ID", "ZALO_OA_ID", "ZALO_OA_SECRET_KEY", "ZALO_APP_SECRET")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ZaloSettings | None:
        """None when Zalo is not configured (no ZALO_APP_ID); ValueError naming what is
        missing when it is configured only in part."""
        if not environ.get("ZALO_APP_ID"):
            return None
        missing = [name for name in cls.REQUIRED if not environ.get(name)]
        if missing:
            raise ValueError(f"Zalo is configured in part; missing: {', '.join(missing)}")
        return cls(app_id=environ["ZALO_APP_ID"], oa_id=environ["ZALO_OA_ID"],
                   oa_secret_key=environ["ZALO_OA_SECRET_KEY"],
                   app_secret=environ["ZALO_APP_SECRET"],
                   refresh_token=environ.get("ZALO_REFRESH_TOKEN", ""),
                   access_token=environ.get("ZALO_ACCESS_TOKEN", ""),
                   api_base_url=environ.get("ZALO_API_BASE_URL",
                                            DEFAULT_API_BASE_URL).rstrip("/"),
                   oauth_base_url=environ.get("ZALO_OAUTH_BASE_URL",
                                              DEFAULT_OAUTH_BASE_URL).rstrip("/"),
                   max_buttons=env_whole(environ, "ZALO_MAX_BUTTONS", MAX_BUTTONS),
                   timeout=env_number(environ, "ZALO_TIMEOUT", 10.0))


def error_for(code: int, message: str) -> ZaloError:
    """The ZaloError for one of Zalo's error codes."""
    message = message[:120]
    if code in UNREACHABLE_CODES:
        return ZaloError(code, message, outside_window=True, permanent=True)
    if code in RATE_LIMIT_CODES:
        return ZaloError(code, message, rate_limited=True, retry_after=RATE_LIMIT_CODES[code])
    return ZaloError(code, message, permanent=code in PERMANENT_CODES)


def _check_text(text: str, allow_empty: bool = False) -> None:
    if not isinstance(text, str) or (not text.strip() and not allow_empty):
        raise ValueError("Zalo message text is empty")
    if len(text) > TEXT_LIMIT:
        raise ValueError(f"Zalo message text is {len(text)} characters (limit {TEXT_LIMIT})")


def _check_url(url: str) -> None:
    if not url.startswith(("https://", "http://")) or len(url) > PAYLOAD_LIMIT:
        raise ValueError("Zalo URLs must be http(s) and at most 1000 characters")


def button_json(button: ZaloButton) -> dict[str, Any]:
    """One button as Zalo wants it; ValueError for what Zalo would refuse."""
    if button.type not in BUTTON_TYPES:
        raise ValueError(f"unknown Zalo button type {button.type!r}")
    if not button.title.strip() or len(button.title) > TITLE_LIMIT:
        raise ValueError(f"Zalo button titles are 1..{TITLE_LIMIT} characters")
    if not button.payload or len(button.payload) > PAYLOAD_LIMIT:
        raise ValueError(f"Zalo button payloads are 1..{PAYLOAD_LIMIT} characters")
    payload: str | dict[str, str] = button.payload
    if button.type == "oa.open.phone":
        if not button.payload.lstrip("+").isdigit():
            raise ValueError("a Zalo phone button needs a phone number")
        payload = {"phone_code": button.payload}
    elif button.type == "oa.open.url":
        _check_url(button.payload)
        payload = {"url": button.payload}
    return {"title": button.title, "type": button.type, "payload": payload}


class ZaloApi:
    """The OA API for one OA: one pooled aiohttp session, tokens from the database."""

    def __init__(self, settings: ZaloSettings, rows: TokenRows, clock: Clock, *,
                 http: aiohttp.ClientSession | None = None,
                 alert_admins: AlertAdmins | None = None, owner: str | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.max_buttons = settings.max_buttons
        self._own_http = http is None
        self._http = http
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout)
        self.tokens = ZaloTokens(
            rows, clock, self._refresh_tokens,
            initial_refresh_token=settings.refresh_token,
            initial_access_token=settings.access_token, alert_admins=alert_admins,
            owner=owner,
            # The claim must outlast the OAuth call, or a second process could spend the
            # same refresh token while the first still waits for Zalo's answer.
            lease=max(LEASE, timedelta(seconds=2 * settings.timeout + 5)))
        # After a rate-limit answer, calls wait until then instead of hammering Zalo.
        self._blocked_until: datetime | None = None

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, ttl_dns_cache=300))
            self._own_http = True
        return self._http

    async def start(self) -> None:
        """Seed or recover the token store. Optional: without it the first call seeds, and
        calls refresh when due; `tokens` is also the worker that refreshes in the
        background."""
        try:
            await self.tokens.start()
        except (RefreshUnavailable, TokensBusy):
            log.warning("zalo tokens: not refreshed at start; will retry")

    async def close(self) -> None:
        if self._own_http and self._http is not None and not self._http.closed:
            await self._http.close()

    # ---- the API --------------------------------------------------------------------------

    async def send_text(self, user_id: str, text: str) -> str:
        """Send a text of 1..2000 characters (the caller splits longer ones); returns
        Zalo's message id."""
        _check_text(text)
        return await self._send(user_id, {"text": text})

    async def send_buttons(self, user_id: str, text: str,
                           buttons: Sequence[ZaloButton]) -> str:
        """Send a text with 1..max_buttons buttons under it."""
        _check_text(text)
        if not 1 <= len(buttons) <= self.max_buttons:
            raise ValueError(f"a Zalo message carries 1..{self.max_buttons} buttons")
        rendered = [button_json(b) for b in buttons]
        return await self._send(user_id, {"text": text, "attachment": {
            "type": "template", "payload": {"buttons": rendered}}})

    async def send_image(self, user_id: str, image_url: str, text: str = "") -> str:
        """Send a photo by its URL (Zalo fetches it), with an optional text."""
        _check_url(image_url)
        _check_text(text, allow_empty=True)
        message: dict[str, Any] = {"attachment": {"type": "template", "payload": {
            "template_type": "media",
            "elements": [{"media_type": "image", "url": image_url}]}}}
        if text:
            message["text"] = text
        return await self._send(user_id, message)

    async def user_profile(self, user_id: str) -> dict[str, Any]:
        data = await self._call("GET", PROFILE_PATH,
                                params={"data": json.dumps({"user_id": user_id})})
        profile = data.get("data")
        return dict(profile) if isinstance(profile, dict) else {}

    async def quota(self) -> dict[str, Any]:
        """The OA's consultation-message quota, as Zalo reports it."""
        data = await self._call("POST", QUOTA_PATH, body={
            "quota_owner": "OA", "product_type": "cs", "quota_type": "sub_quota"})
        quota = data.get("data")
        return dict(quota) if isinstance(quota, dict) else {}

    # ---- plumbing -------------------------------------------------------------------------

    async def _send(self, user_id: str, message: dict[str, Any]) -> str:
        if not user_id:
            raise ValueError("no Zalo user id")
        data = await self._call("POST", SEND_PATH,
                                body={"recipient": {"user_id": user_id}, "message": message})
        result = data.get("data")
        return str(result.get("message_id", "")) if isinstance(result, dict) else ""

    async def _call(self, method: str, path: str, *, body: dict[str, Any] | None = None,
                    params: dict[str, str] | None = None) -> dict[str, Any]:
        now = self.clock.now()
        if self._blocked_until is not None and now < self._blocked_until:
            wait = (self._blocked_until - now).total_seconds()
            raise ZaloError(-32, "rate limited (waiting)", rate_limited=True, retry_after=wait)
        token = await self._token(None)
        data = await self._request(method, path, token.token, body, params)
        code = _code(data)
        if code in TOKEN_CODES:
            log.info("zalo %s: token row %s refused (%s); refreshing", path, token.row_id, code)
            token = await self._token(token)
            data = await self._request(method, path, token.token, body, params)
            code = _code(data)
        if code == 0:
            return data
        error = error_for(code, str(data.get("message", "")))
        if error.rate_limited and error.retry_after is not None:
            self._blocked_until = self.clock.now() + timedelta(seconds=error.retry_after)
        log.warning("zalo %s: error %s", path, code)
        raise error

    async def _token(self, stale: AccessToken | None) -> AccessToken:
        try:
            if stale is None:
                return await self.tokens.access_token()
            return await self.tokens.refresh(stale)
        except TokensLost as exc:
            raise ZaloAuthError(exc.code) from exc
        except (RefreshUnavailable, TokensBusy) as exc:
            raise ZaloUnavailable(f"no access token now ({type(exc).__name__})") from exc

    async def _request(self, method: str, path: str, token: str, body: dict[str, Any] | None,
                       params: dict[str, str] | None) -> dict[str, Any]:
        url = f"{self.settings.api_base_url}{path}"
        try:
            async with self.http.request(method, url, json=body, params=params,
                                         headers={"access_token": token},
                                         timeout=self._timeout) as resp:
                if resp.status >= 500 or resp.status == 429:
                    raise ZaloUnavailable(f"HTTP {resp.status}")
                if resp.status >= 400:
                    raise ZaloError(resp.status, f"HTTP {resp.status}", permanent=True)
                data = await resp.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise ZaloUnavailable(type(exc).__name__) from exc
        if not isinstance(data, dict):
            raise ZaloUnavailable("malformed answer")
        return data

    async def _refresh_tokens(self, refresh_token: str) -> TokenPair:
        """Spend a refresh token at Zalo's OAuth endpoint (the token store calls this)."""
        url = f"{self.settings.oauth_base_url}{TOKEN_PATH}"
        form = {"refresh_token": refresh_token, "app_id": self.settings.app_id,
                "grant_type": "refresh_token"}
        try:
            async with self.http.post(url, data=form,
                                      headers={"secret_key": self.settings.app_secret},
                                      timeout=self._timeout) as resp:
                if resp.status >= 500 or resp.status == 429:
                    raise RefreshUnavailable(f"HTTP {resp.status}")
                status = resp.status
                body = await resp.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise RefreshUnavailable(type(exc).__name__) from exc
        if not isinstance(body, dict):
            raise RefreshUnavailable("malformed answer")
        access, refresh = body.get("access_token"), body.get("refresh_token")
        if isinstance(access, str) and access and isinstance(refresh, str) and refresh:
            try:
                expires_in = float(body.get("expires_in", ACCESS_TOKEN_LIFETIME))
            except (TypeError, ValueError):
                expires_in = ACCESS_TOKEN_LIFETIME
            return TokenPair(access, refresh, expires_in)
        code = _code(body) or -status
        if code in RATE_LIMIT_CODES:
            raise RefreshUnavailable(f"rate limited ({code})")
        reason = str(body.get("error_reason") or body.get("error_name")
                     or body.get("message") or "")[:100]
        raise RefreshRefused(code, reason)


def _code(data: Mapping[str, Any]) -> int:
    try:
        return int(data.get("error", 0) or 0)
    except (TypeError, ValueError):
        return -1
