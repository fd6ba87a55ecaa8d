"""A fake Telegram Bot API server on 127.0.0.1, as strict as the real one where it matters.

It speaks the subset SafeChild uses, validates requests (text length, callback data bytes,
keyboard shapes, known chats), enforces rate limits with 429 and retry_after, can be told to
fail (5xx, 403 for a chat, hangs, and sends carried out whose answer never comes back), and
plays users who write, share locations and press buttons.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

TOKEN = "123456:TEST-token"
UNFAILING = frozenset({"getUpdates", "getMe", "deleteWebhook", "setWebhook"})
# The command menu's calls: their own queue of faults (`fail_menus`), so a test that
# arranges the next send's fault is not served by a menu call made meanwhile.
MENU_METHODS = frozenset({"setMyCommands", "deleteMyCommands", "getMyCommands"})
BOT_USER = {"id": 999, "is_bot": True, "first_name": "SafeChild", "username": "safechild_bot"}
COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")
LANGUAGE_CODE = re.compile(r"[a-z]{2}")
# BotCommandScope types, and the fields each must have besides `type`.
SCOPES: dict[str, tuple[str, ...]] = {
    "default": (), "all_private_chats": (), "all_group_chats": (),
    "all_chat_administrators": (), "chat": ("chat_id",), "chat_administrators": ("chat_id",),
    "chat_member": ("chat_id", "user_id"),
}
# A scope as the fake keys what was set: its type and, for a chat scope, the chat.
ScopeKey = tuple[str, int | None]


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after


@dataclass
class Sent:
    chat_id: int
    message_id: int
    text: str
    reply_markup: dict[str, Any] | None
    edits: list[str] = field(default_factory=list)
    # For sendPhoto / sendDocument: ("photo" | "document", file_id); `text` is the caption.
    media: tuple[str, str] | None = None
    at: float = field(default_factory=time.perf_counter)  # when the server accepted it
    # Carried out under a "lost" fault: the chat has it, the bot never heard back.
    answer_lost: bool = False
    # Sent with protect_content: the chat can neither forward nor save it.
    protected: bool = False

    @property
    def callback_data(self) -> list[str]:
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [b["callback_data"] for row in rows for b in row if "callback_data" in b]


class FakeTelegram:
    def __init__(self, per_second: int = 30, per_chat_burst: int = 5,
                 per_group_minute: int = 20,
                 now: Callable[[], float] = time.monotonic) -> None:
        # The rate limiter's time source: tests share their fake clock with it.
        self.now = now
        self.users: dict[int, dict[str, Any]] = {}
        self.updates: list[dict[str, Any]] = []
        self.new_update = asyncio.Event()
        self.update_ids = itertools.count(1)
        self.message_ids = itertools.count(1000)
        self.sent: list[Sent] = []
        self.by_id: dict[tuple[int, int], Sent] = {}
        self.answered: list[str] = []
        # Set when a message reaches the chat: lets a played user wait for the bot's answer.
        self.chat_events: dict[int, asyncio.Event] = {}
        self.pushed_at: dict[int, float] = {}
        self.notices: list[str] = []
        self.calls: list[str] = []
        self.blocked: set[int] = set()
        # Faults for the next sending calls, in order: an HTTP status (429 comes with
        # retry_after 1), "timeout" (the request hangs and is never carried out) or "lost"
        # (it is carried out, then hangs: the answer never reaches the bot).
        self.fail_next: deque[int | str] = deque()
        self.fail_menus: deque[int | str] = deque()
        # An outage: while set, every sending call fails so (as one of fail_next's faults),
        # for as long as the test keeps it set.
        self.down: int | str | None = None
        # Asked for a fault (or None) for each sending call that `down` and `fail_next`
        # leave alone, with the method's name: random faults for chaos tests.
        self.chaos: Callable[[str], int | str | None] | None = None
        # The faults served, by kind ("429", "500", "timeout", "lost" ...).
        self.faults: Counter[str] = Counter()
        self._release = asyncio.Event()
        self.per_second = per_second
        self.per_chat_burst = per_chat_burst
        self._window: deque[float] = deque()
        self._chat_window: dict[int, deque[float]] = defaultdict(deque)
        self.per_group_minute = per_group_minute
        self._group_window: dict[int, deque[float]] = defaultdict(deque)
        self.groups: dict[int, set[int]] = {}
        self.hang_seconds = 30.0
        self.files: dict[str, bytes] = {}
        # The file name an upload came with, by the file_id given to it.
        self.file_names: dict[str, str] = {}
        self.file_ids = itertools.count(1)
        self.rejected_429 = 0
        self.confirmed_offset = 0
        self.webhook: tuple[str, str] | None = None
        # setMyCommands: (scope, language code or "") -> [(command, description)].
        self.commands: dict[tuple[ScopeKey, str], list[tuple[str, str]]] = {}
        self.webhook_methods: list[str] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    # ---- server ---------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._dispatch)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        # Release long polls and hung requests, or shutting down would wait for them.
        self.new_update.set()
        self._release.set()
        if self.runner:
            await self.runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    async def _dispatch(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != TOKEN:
            return web.json_response({"ok": False, "error_code": 401,
                                      "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        params = await self._params(request)
        fault = self._fault(method)
        if fault in ("timeout", "lost"):
            self.calls.append(f"{method}:{fault}")
            if fault == "lost":
                # Carried out (the chat has the message), then the connection dies before
                # the answer: the one resend no bot can prevent, Telegram having no
                # idempotency key.
                before = len(self.sent)
                await self._call(method, params, None)
                for sent in self.sent[before:]:
                    sent.answer_lost = True
            # A dead connection: the client gives up waiting.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), self.hang_seconds)
            return web.json_response({"ok": False, "error_code": 504,
                                      "description": "Gateway Timeout"}, status=504)
        return await self._call(method, params, fault)

    def _fault(self, method: str) -> int | str | None:
        """The fault this sending call meets, if any (counted in `faults`)."""
        if method in UNFAILING:
            return None
        fault: int | str | None
        queue = self.fail_menus if method in MENU_METHODS else self.fail_next
        if self.down is not None:
            fault = self.down
        elif queue:
            fault = queue.popleft()
        else:
            fault = self.chaos(method) if self.chaos is not None else None
        if fault is not None:
            self.faults[str(fault)] += 1
        return fault

    async def _call(self, method: str, params: dict[str, Any],
                    fault: int | str | None) -> web.Response:
        self.calls.append(method)
        try:
            if fault is not None:
                status = int(fault)
                if status == 429:
                    self.rejected_429 += 1
                    raise ApiError(429, "Too Many Requests: retry after 1", retry_after=1)
                raise ApiError(status, "Internal Server Error" if status >= 500 else "Error")
            handler = getattr(self, f"api_{method}", None)
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            result = await handler(params)
        except ApiError as exc:
            body: dict[str, Any] = {"ok": False, "error_code": exc.code,
                                    "description": exc.description}
            if exc.retry_after is not None:
                body["parameters"] = {"retry_after": exc.retry_after}
            return web.json_response(body, status=exc.code)
        return web.json_response({"ok": True, "result": result})

    async def _params(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            return dict(await request.json())
        raw = dict(await request.post()) if request.can_read_body else {}
        raw.update(request.query)
        params: dict[str, Any] = {}
        for key, value in raw.items():
            if isinstance(value, web.FileField):
                params[key] = value  # an upload, read by the method
                continue
            text = str(value)
            try:
                params[key] = json.loads(text)
            except ValueError:
                params[key] = text
        return params

    # ---- rate limits and validation -------------------------------------------------------

    def _rate(self, chat_id: int) -> None:
        now = self.now()
        windows = [(self._window, self.per_second, 1.0, 1),
                   (self._chat_window[chat_id], self.per_chat_burst, 1.0, 1)]
        if chat_id < 0:
            windows.append((self._group_window[chat_id], self.per_group_minute, 60.0, 0))
        for window, limit, span, _ in windows:
            while window and now - window[0] > span:
                window.popleft()
            if len(window) >= limit:
                self.rejected_429 += 1
                wait = max(1, int(span - (now - window[0])) + 1)
                raise ApiError(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
        for window, *_ in windows:
            window.append(now)

    def _chat(self, params: dict[str, Any]) -> int:
        try:
            chat_id = int(params["chat_id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ApiError(400, "Bad Request: chat_id is empty") from exc
        if chat_id not in self.users and chat_id not in self.groups:
            raise ApiError(400, "Bad Request: chat not found")
        if chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat_id

    @staticmethod
    def _text(params: dict[str, Any]) -> str:
        text = str(params.get("text", ""))
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        return text

    @staticmethod
    def _markup(raw: Any) -> dict[str, Any] | None:
        if raw in (None, ""):
            return None
        if isinstance(raw, str):
            # JSON bodies may carry the markup as a JSON-serialised string, as forms do.
            try:
                raw = json.loads(raw)
            except ValueError as exc:
                raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON "
                                    "object") from exc
        if not isinstance(raw, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in raw:
            rows = raw["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise ApiError(400, "Bad Request: field \"inline_keyboard\" must be an Array")
            for row in rows:
                if len(row) > 8:
                    raise ApiError(400, "Bad Request: too many buttons in a row")
                for button in row:
                    data = button.get("callback_data")
                    if not button.get("text"):
                        raise ApiError(400, "Bad Request: text buttons are unallowed")
                    if data is not None and not 1 <= len(str(data).encode()) <= 64:
                        raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
                    if data is None and "url" not in button:
                        raise ApiError(400, "Bad Request: can't find field \"callback_data\"")
        elif "keyboard" in raw:
            if not all(isinstance(r, list) for r in raw["keyboard"]):
                raise ApiError(400, "Bad Request: field \"keyboard\" must be an Array")
        elif not raw.get("remove_keyboard"):
            raise ApiError(400, "Bad Request: unsupported reply markup")
        return raw

    # ---- Bot API methods ------------------------------------------------------------------

    async def api_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return BOT_USER

    async def api_deleteWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = None
        return True

    async def api_setWebhook(self, params: dict[str, Any]) -> bool:
        secret = str(params.get("secret_token", ""))
        if (secret and not all(c.isalnum() or c in "_-" for c in secret)) or len(secret) > 256:
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        self.webhook = (str(params["url"]), secret)
        return True

    # ---- command menus --------------------------------------------------------------------

    def _scope(self, raw: Any) -> ScopeKey:
        """A BotCommandScope as the Bot API reads it (JSON): a known type with its fields;
        a chat scope names a chat the bot knows."""
        if raw in (None, ""):
            return ("default", None)
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError as exc:
                raise ApiError(400, "Bad Request: can't parse BotCommandScope JSON object") from exc
        if not isinstance(raw, dict) or raw.get("type") not in SCOPES:
            raise ApiError(400, "Bad Request: unsupported bot command scope type")
        kind = str(raw["type"])
        missing = [f for f in SCOPES[kind] if f not in raw]
        if missing:
            raise ApiError(400, f"Bad Request: field \"{missing[0]}\" must be present")
        extra = set(raw) - {"type", *SCOPES[kind]}
        if extra:
            raise ApiError(400, f"Bad Request: unexpected field \"{sorted(extra)[0]}\"")
        if "chat_id" not in raw:
            return (kind, None)
        return (kind, self._chat({"chat_id": raw["chat_id"]}))

    @staticmethod
    def _language_code(params: dict[str, Any]) -> str:
        code = params.get("language_code") or ""
        if code and not (isinstance(code, str) and LANGUAGE_CODE.fullmatch(code)):
            raise ApiError(400, "Bad Request: invalid language code specified")
        return str(code)

    async def api_setMyCommands(self, params: dict[str, Any]) -> bool:
        raw = params.get("commands")
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError as exc:
                raise ApiError(400, "Bad Request: can't parse commands JSON object") from exc
        if not isinstance(raw, list):
            raise ApiError(400, "Bad Request: field \"commands\" must be an Array")
        if len(raw) > 100:
            raise ApiError(400, "Bad Request: too many commands specified")
        commands: list[tuple[str, str]] = []
        for item in raw:
            if not isinstance(item, dict) or set(item) != {"command", "description"}:
                raise ApiError(400, "Bad Request: can't parse BotCommand JSON object")
            name, description = item["command"], item["description"]
            if not isinstance(name, str) or not COMMAND_NAME.fullmatch(name):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if (not isinstance(description, str) or not description.strip()
                    or len(description) > 256):
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
            commands.append((name, description))
        key = (self._scope(params.get("scope")), self._language_code(params))
        if commands:
            self.commands[key] = commands
        else:  # an empty list is how deleteMyCommands is spelled too
            self.commands.pop(key, None)
        return True

    async def api_deleteMyCommands(self, params: dict[str, Any]) -> bool:
        self.commands.pop((self._scope(params.get("scope")), self._language_code(params)),
                          None)
        return True

    async def api_getMyCommands(self, params: dict[str, Any]) -> list[dict[str, str]]:
        key = (self._scope(params.get("scope")), self._language_code(params))
        return [{"command": c, "description": d} for c, d in self.commands.get(key, [])]

    def menu_of(self, user_id: int, language_code: str = "") -> list[str]:
        """The commands a user sees in their private chat with the bot, as Telegram picks
        them: the chat's scope, then all private chats, then the default; in each the
        client's language first, then any language."""
        for scope in (("chat", user_id), ("all_private_chats", None), ("default", None)):
            for code in dict.fromkeys((language_code, "")):
                if (scope, code) in self.commands:
                    return [c for c, _ in self.commands[(scope, code)]]
        return []

    async def post_webhook(self, update_id: int | None = None, secret: str | None = None,
                           body: dict[str, Any] | None = None) -> int:
        """Deliver a pending update (or `body`) to the webhook as Telegram does; returns
        the HTTP status. `secret` overrides the registered one (to test refusals)."""
        assert self.webhook is not None, "no webhook set"
        url, registered = self.webhook
        if body is None:
            body = next(u for u in self.updates if update_id in (None, u["update_id"]))
        headers = {} if secret == "" else {
            "X-Telegram-Bot-Api-Secret-Token": registered if secret is None else secret}
        async with aiohttp.ClientSession() as http, http.post(url, json=body,
                                                               headers=headers) as resp:
            if resp.status == 200 and body in self.updates:
                self.updates.remove(body)
            if resp.status == 200 and resp.content_type == "application/json":
                # The Bot API carries out a method given in the webhook's answer.
                params = dict(await resp.json())
                self.webhook_methods.append(str(params.get("method")))
                method = str(params.pop("method"))
                await self._call(method, params, self._fault(method))
            return resp.status

    async def api_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        if offset:
            self.confirmed_offset = max(self.confirmed_offset, offset)
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        timeout = float(params.get("timeout") or 0)
        if not self.updates and timeout:
            self.new_update.clear()
            try:
                await asyncio.wait_for(self.new_update.wait(), timeout)
            except TimeoutError:
                pass
        limit = int(params.get("limit") or 100)
        return self.updates[:limit]

    async def api_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat(params)
        text = self._text(params)
        markup = self._markup(params.get("reply_markup"))
        self._rate(chat_id)
        sent = Sent(chat_id, next(self.message_ids), text, markup)
        self._record(sent, params)
        return self._message(sent)

    def _record(self, sent: Sent, params: dict[str, Any]) -> None:
        # The Bot API takes true/false in JSON or "true"/"True" in a form.
        sent.protected = str(params.get("protect_content", "")).lower() == "true"
        self.sent.append(sent)
        self.by_id[(sent.chat_id, sent.message_id)] = sent
        waiter = self.chat_events.get(sent.chat_id)
        if waiter is not None:
            waiter.set()

    async def api_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat(params)
        sent = self.by_id.get((chat_id, int(params.get("message_id", 0))))
        if sent is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        text = self._text(params)
        sent.edits.append(text)
        sent.text = text
        sent.reply_markup = self._markup(params.get("reply_markup"))
        return self._message(sent)

    async def api_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        if len(str(params.get("text", ""))) > 200:
            raise ApiError(400, "Bad Request: text is too long")
        self.answered.append(str(params["callback_query_id"]))
        if params.get("text"):
            self.notices.append(str(params["text"]))
        return True

    async def api_editMessageReplyMarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat(params)
        sent = self.by_id.get((chat_id, int(params.get("message_id", 0))))
        if sent is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        sent.reply_markup = self._markup(params.get("reply_markup"))
        return self._message(sent)

    async def _media(self, params: dict[str, Any], kind: str) -> dict[str, Any]:
        chat_id = self._chat(params)
        caption = str(params.get("caption", ""))
        if len(caption) > 1024:
            raise ApiError(400, "Bad Request: message caption is too long")
        raw = params.get(kind)
        if isinstance(raw, web.FileField):
            file_id = f"{kind}-{next(self.file_ids)}"
            self.files[file_id] = raw.file.read()
            self.file_names[file_id] = raw.filename
        elif isinstance(raw, str) and raw in self.files:
            file_id = raw
        else:
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        markup = self._markup(params.get("reply_markup"))
        self._rate(chat_id)
        sent = Sent(chat_id, next(self.message_ids), caption, markup, media=(kind, file_id))
        self._record(sent, params)
        return self._message(sent)

    async def api_sendPhoto(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._media(params, "photo")

    async def api_sendVoice(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._media(params, "voice")

    async def api_sendDocument(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._media(params, "document")

    async def api_getFile(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = str(params.get("file_id", ""))
        if file_id not in self.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        return {"file_id": file_id, "file_unique_id": file_id,
                "file_size": len(self.files[file_id]), "file_path": f"files/{file_id}"}

    async def _download(self, request: web.Request) -> web.Response:
        file_id = request.match_info["path"].removeprefix("files/")
        if request.match_info["token"] != TOKEN or file_id not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[file_id])

    def _message(self, sent: Sent) -> dict[str, Any]:
        chat_type = "supergroup" if sent.chat_id < 0 else "private"
        msg: dict[str, Any] = {"message_id": sent.message_id, "date": int(time.time()),
                               "chat": {"id": sent.chat_id, "type": chat_type},
                               "from": BOT_USER}
        if sent.media is not None:
            kind, file_id = sent.media
            msg[kind] = ([{"file_id": file_id, "file_unique_id": file_id, "width": 90,
                           "height": 90}] if kind == "photo"
                         else {"file_id": file_id, "file_unique_id": file_id, "duration": 3}
                         if kind == "voice" else {"file_id": file_id, "file_unique_id": file_id})
            if sent.text:
                msg["caption"] = sent.text
        else:
            msg["text"] = sent.text
        if sent.reply_markup and "inline_keyboard" in sent.reply_markup:
            msg["reply_markup"] = sent.reply_markup
        return msg

    # ---- users ----------------------------------------------------------------------------

    def add_user(self, user_id: int, first_name: str = "User") -> None:
        self.users[user_id] = {"id": user_id, "is_bot": False, "first_name": first_name}

    def add_group(self, chat_id: int, members: set[int]) -> None:
        assert chat_id < 0, "group chat ids are negative"
        self.groups[chat_id] = set(members)

    def _push(self, update: dict[str, Any]) -> int:
        update["update_id"] = next(self.update_ids)
        self.pushed_at[update["update_id"]] = time.perf_counter()
        self.updates.append(update)
        self.new_update.set()
        return int(update["update_id"])

    def _user_message(self, user_id: int, **content: Any) -> int:
        msg = {"message_id": next(self.message_ids), "date": int(time.time()),
               "chat": {"id": user_id, "type": "private"}, "from": self.users[user_id],
               **content}
        return self._push({"message": msg})

    def user_text(self, user_id: int, text: str) -> int:
        extra: dict[str, Any] = {}
        if text.startswith("/"):
            extra["entities"] = [{"type": "bot_command", "offset": 0,
                                  "length": len(text.split()[0])}]
        return self._user_message(user_id, text=text, **extra)

    def user_location(self, user_id: int, latitude: float, longitude: float) -> int:
        return self._user_message(user_id, location={"latitude": latitude,
                                                     "longitude": longitude})

    def user_contact(self, user_id: int, phone: str) -> int:
        return self._user_message(user_id, contact={"phone_number": phone, "first_name": "X",
                                                    "user_id": user_id})

    def user_voice(self, user_id: int, file_id: str, content: bytes = b"OggS fake") -> int:
        self.files[file_id] = content
        return self._user_message(user_id, voice={"file_id": file_id, "file_unique_id": file_id,
                                                  "duration": 3})

    def user_photo(self, user_id: int, file_id: str, content: bytes = b"\x89PNG fake") -> int:
        self.files[file_id] = content
        return self._user_message(user_id, photo=[{"file_id": file_id, "file_unique_id": file_id,
                                                   "width": 90, "height": 90}])

    def press(self, user_id: int, data: str, message: Sent | None = None) -> int:
        """Press a button of `message` (default: the newest message to the user that has it).
        Like Telegram, only a button that exists can be pressed: forging needs `forge`."""
        if message is None:
            message = next((m for m in reversed(self.sent)
                            if m.chat_id == user_id and data in m.callback_data), None)
        if message is None or data not in message.callback_data:
            raise AssertionError(f"user {user_id} has no button {data!r}")
        return self.forge(user_id, data, message)

    def press_in_group(self, user_id: int, data: str, group: int) -> int:
        """A member of `group` presses a button of the newest group message that has it."""
        assert user_id in self.groups[group], "only members see the group's messages"
        message = next((m for m in reversed(self.sent)
                        if m.chat_id == group and data in m.callback_data), None)
        if message is None:
            raise AssertionError(f"group {group} has no button {data!r}")
        return self.forge(user_id, data, message)

    def forge(self, user_id: int, data: str, message: Sent) -> int:
        query = {"id": f"cq{next(self.update_ids)}", "from": self.users[user_id],
                 "chat_instance": "ci", "data": data, "message": self._message(message)}
        return self._push({"callback_query": query})

    def inbox(self, user_id: int) -> list[Sent]:
        return [m for m in self.sent if m.chat_id == user_id]
