"""Telegram channel adapter: updates in, rendered replies out (channel adapter).

A python-telegram-bot `Application` (no Updater, no persistence) holds one handler that
translates an update into an InboundEvent for the conversation service, which commits it
(deduplicated by update_id). Inbound comes from our own long-polling loop, which confirms
an update to Telegram only after that commit, or from the webhook route, which answers 200
only after it. Outbound is the `telegram` outbox channel, through the Application's bot and
its AIORateLimiter (30 messages a second overall, 20 a minute per group).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import warnings
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import AIORateLimiter, Application, ContextTypes, TypeHandler
from telegram.warnings import PTBDeprecationWarning

from bot import i18n
from bot.domain.messages import Input, Media, Reply
from bot.handlers.telegram_http import AiohttpRequest
from bot.handlers.typed import typed_input
from bot.services.conversation import ConversationService, InboundEvent
from bot.services.outbox import Delivery, DeliveryError, FileToSend

log = logging.getLogger(__name__)
# python-telegram-bot reads RetryAfter.retry_after itself when rate limiting; we handle both
# the number and the timedelta it will become.
warnings.filterwarnings("ignore", message=".*retry_after.*", category=PTBDeprecationWarning)
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_TEXT_LIMIT = 200
ALLOWED_UPDATES = ("message", "callback_query")
SHORT_LABEL = 18
# An update that fails this many times is a bug, not a fault: it is confirmed and logged so
# it cannot stall every other reporter behind it.
MAX_UPDATE_FAILURES = 5


def make_application(token: str, base_url: str = "https://api.telegram.org/bot",
                     file_base_url: str = "https://api.telegram.org/file/bot",
                     read_timeout: float = 10.0, rate_limit: bool = True) -> Application:
    """The Application SafeChild runs: our HTTP layer, the rate limiter, no Updater (our
    poller confirms updates only after they are stored), no persistence (state is ours)."""
    # Any: the builder's generic parameters change with each call, which mypy cannot follow.
    builder: Any = (Application.builder().token(token).base_url(base_url)
               .base_file_url(file_base_url)
               .request(AiohttpRequest(pool=64, read_timeout=read_timeout))
               .get_updates_request(AiohttpRequest(pool=2, read_timeout=read_timeout))
               .updater(None))
    if rate_limit:
        # max_retries=0: a 429 goes back to the outbox, which releases the row and retries
        # after retry_after without holding a lease meanwhile.
        builder = builder.rate_limiter(AIORateLimiter(max_retries=0))
        # It logs every such 429 as an error with a traceback; the outbox owns the retry.
        logging.getLogger("telegram.ext.AIORateLimiter").setLevel(logging.CRITICAL)
    application: Application = builder.build()
    return application


def to_event(update: Update) -> tuple[InboundEvent, str | None] | None:
    """The update as an InboundEvent, plus the callback query id to answer, if any."""
    key = f"tg:{update.update_id}"
    if update.callback_query is not None:
        query = update.callback_query
        inp = Input("choice", choice=(query.data or "")[:64])
        chat = query.message.chat if query.message is not None else None
        group = str(chat.id) if chat is not None and chat.type != "private" else None
        return (InboundEvent("telegram", str(query.from_user.id), inp, key, group=group),
                query.id)
    msg = update.message
    if msg is None or msg.chat.type != "private" or msg.from_user is None:
        return None
    sender = str(msg.from_user.id)
    if msg.text is not None:
        inp = typed_input(msg.text)
    elif msg.location is not None:
        inp = Input("location", latitude=msg.location.latitude,
                    longitude=msg.location.longitude)
    elif msg.contact is not None:
        # Only a contact the person shares about themselves counts as their number.
        own = msg.contact.user_id in (None, msg.from_user.id)
        inp = Input("contact", phone=msg.contact.phone_number if own else "")
    elif msg.photo:
        inp = Input("photo", file_ref=msg.photo[-1].file_id)
    elif msg.voice is not None:
        inp = Input("voice", file_ref=msg.voice.file_id)
    else:
        inp = Input("other")
    return InboundEvent("telegram", sender, inp, key), None


def render(reply: Reply, language: str) -> tuple[str, InlineKeyboardMarkup | ReplyKeyboardMarkup
                                                  | ReplyKeyboardRemove | None]:
    """Text and keyboard for one Reply, in the recipient's language."""
    text = "\n\n".join(i18n.render(t, language) for t in reply.texts)
    if len(text) > TEXT_LIMIT:
        text = text[: TEXT_LIMIT - 1] + "…"
    labels = [(c.id, i18n.render(c.label, language)) for c in reply.choices]
    if reply.request in ("location", "contact"):
        # Telegram asks for a location or contact only through a reply keyboard; the other
        # choices ride along as text buttons, which the flows match by their label.
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


@dataclass(frozen=True)
class ButtonAnswer:
    """The answer a pressed button is owed (stops its spinner, may show a short text)."""

    query_id: str
    text: str | None


class TelegramAdapter:
    """The Application's only handler: translate the update, hand it to the engine."""

    def __init__(self, application: Application, conversations: ConversationService) -> None:
        self.application = application
        self.conversations = conversations
        self._failed: dict[int, BaseException] = {}
        self._answers: dict[int, ButtonAnswer] = {}
        application.add_handler(TypeHandler(Update, self._on_update))
        application.add_error_handler(self._on_error)

    @property
    def bot(self) -> Bot:
        return self.application.bot

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            parsed = to_event(update)
            if parsed is None:
                return
            event, query_id = parsed
            handled = await self.conversations.handle(event)
            if query_id is not None:
                notice = handled.notice[:CALLBACK_TEXT_LIMIT] if handled.notice else None
                self._answers[update.update_id] = ButtonAnswer(query_id, notice)
        except Exception as exc:
            self._failed[update.update_id] = exc
            raise

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        # `process` re-raises to the caller, which logs without the update's content.
        return None

    async def process(self, update: Update) -> ButtonAnswer | None:
        """Run the Application on one update; raises if it was not stored."""
        await self.application.process_update(update)
        failure = self._failed.pop(update.update_id, None)
        answer = self._answers.pop(update.update_id, None)
        if failure is not None:
            raise failure
        return answer

    async def answer(self, answer: ButtonAnswer | None) -> None:
        if answer is None:
            return
        # Stops the button's spinner; a failure here loses nothing.
        with contextlib.suppress(TelegramError):
            await self.bot.answer_callback_query(answer.query_id, text=answer.text,
                                                 show_alert=answer.text is not None)


class TelegramChannel:
    """Sends outbox rows through the Bot API and maps its errors onto retry decisions."""

    name = "telegram"

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def deliver(self, session: AsyncSession | None, delivery: Delivery) -> str | None:
        text, markup = render(delivery.reply, delivery.language)
        try:
            if delivery.kind == "edit":
                ref = str(delivery.meta["message_ref"])
                inline = markup if isinstance(markup, InlineKeyboardMarkup) else None
                await self.bot.edit_message_text(text, chat_id=int(delivery.address),
                                                 message_id=int(ref), reply_markup=inline)
                return ref
            media = delivery.reply.media
            if media is not None and media.channel == self.name:
                message = await self._send_media(int(delivery.address), media, text, markup)
            elif media is not None and delivery.file is not None:
                message = await self._upload(int(delivery.address), media.kind, delivery.file,
                                             text, markup)
            else:
                message = await self.bot.send_message(int(delivery.address), text,
                                                      reply_markup=markup)
        except RetryAfter as exc:
            raise DeliveryError("429", retry_after=retry_after_seconds(exc)) from exc
        except Forbidden as exc:
            raise DeliveryError("403 blocked", permanent=True, unreachable=True) from exc
        except BadRequest as exc:
            if "not modified" in exc.message:
                return str(delivery.meta.get("message_ref", ""))
            raise DeliveryError(f"400 {exc.message[:80]}", permanent=True) from exc
        except (NetworkError, TelegramError) as exc:  # timeouts and 5xx: retry with backoff
            raise DeliveryError(type(exc).__name__) from exc
        return str(message.message_id)

    async def _send_media(self, chat_id: int, media: Media, text: str,
                          markup: InlineKeyboardMarkup | ReplyKeyboardMarkup
                          | ReplyKeyboardRemove | None) -> Message:
        caption = text if len(text) <= CAPTION_LIMIT else text[: CAPTION_LIMIT - 1] + "…"
        if media.kind == "photo":
            return await self.bot.send_photo(chat_id, media.ref, caption=caption,
                                             reply_markup=markup)
        if media.kind == "voice":
            return await self.bot.send_voice(chat_id, media.ref, caption=caption,
                                             reply_markup=markup)
        return await self.bot.send_document(chat_id, media.ref, caption=caption,
                                            reply_markup=markup)


    async def _upload(self, chat_id: int, kind: str, file: FileToSend, text: str,
                      markup: InlineKeyboardMarkup | ReplyKeyboardMarkup
                      | ReplyKeyboardRemove | None) -> Message:
        """A file the bot made (statistics workbook, chart): uploaded, the texts as caption."""
        caption = text if len(text) <= CAPTION_LIMIT else text[: CAPTION_LIMIT - 1] + "…"
        upload = InputFile(file.content, filename=file.name)
        if kind == "photo":
            return await self.bot.send_photo(chat_id, upload, caption=caption,
                                             reply_markup=markup)
        return await self.bot.send_document(chat_id, upload, caption=caption,
                                            reply_markup=markup)


def _lane(update: Update) -> str:
    user = update.effective_user
    return f"u{user.id}" if user is not None else f"x{update.update_id}"


class TelegramPoller:
    """Long polling that confirms an update only after it has been committed.

    One batch is handled concurrently across people and in order for each person; the
    offset then moves past everything stored, and stops at the first update that was not
    (the ones after it come back and are recognised as duplicates)."""

    def __init__(self, adapter: TelegramAdapter, long_poll: int = 25) -> None:
        self.adapter = adapter
        self.long_poll = long_poll
        self.offset: int | None = None
        self._failures: dict[int, int] = {}

    @property
    def bot(self) -> Bot:
        return self.adapter.bot

    async def poll_once(self) -> int:
        updates = await self.bot.get_updates(offset=self.offset, timeout=self.long_poll,
                                             allowed_updates=ALLOWED_UPDATES)
        if not updates:
            return 0
        lanes: dict[str, list[Update]] = {}
        for update in updates:
            lanes.setdefault(_lane(update), []).append(update)
        unstored: list[int] = []

        async def run(lane: list[Update]) -> None:
            for update in lane:
                try:
                    answer = await self.adapter.process(update)
                except Exception:
                    if self._give_up(update.update_id):
                        continue
                    unstored.append(update.update_id)
                    return  # this person's later updates wait, to keep their order
                await self.adapter.answer(answer)

        await asyncio.gather(*(run(lane) for lane in lanes.values()))
        # Only now may Telegram forget them: the next getUpdates carries this offset.
        self.offset = min(unstored) if unstored else updates[-1].update_id + 1
        return len(updates) - len(unstored)

    def _give_up(self, update_id: int) -> bool:
        count = self._failures[update_id] = self._failures.get(update_id, 0) + 1
        if count >= MAX_UPDATE_FAILURES:
            log.error("update %s failed %s times; confirmed without handling", update_id,
                      count)
            self._failures.pop(update_id, None)
            return True
        log.exception("update %s failed; it will come back", update_id)
        return False

    async def run(self, stop: asyncio.Event) -> None:
        webhook_cleared = False
        while not stop.is_set():
            try:
                if not webhook_cleared:
                    # getUpdates refuses to work while a webhook is set.
                    webhook_cleared = await self.bot.delete_webhook()
                await self.poll_once()
            except RetryAfter as exc:
                await asyncio.sleep(retry_after_seconds(exc))
            except (NetworkError, TelegramError):
                log.warning("getUpdates failed; retrying")
                await asyncio.sleep(1)


def retry_after_seconds(exc: RetryAfter) -> float:
    retry = exc.retry_after
    return float(retry if isinstance(retry, int | float) else retry.total_seconds())


def webhook_secret(token: str, configured: str | None) -> str:
    """The secret Telegram echoes in X-Telegram-Bot-Api-Secret-Token. Derived from the token
    when not configured, so every process behind one URL agrees without sharing state."""
    if configured:
        return configured
    return hashlib.sha256(f"safechild-webhook:{token}".encode()).hexdigest()[:48]


class TelegramWebhook:
    """POST /telegram/webhook: the 200 goes back only after the update is committed.

    A button press is answered in the webhook's own response (the Bot API runs a method
    given there), which saves a round trip per press."""

    def __init__(self, adapter: TelegramAdapter, secret: str) -> None:
        self.adapter = adapter
        self.secret = secret

    async def handle(self, request: web.Request) -> web.Response:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            return web.Response(status=403)
        try:
            update = Update.de_json(await request.json(), self.adapter.bot)
        except (ValueError, KeyError, TypeError):
            # Malformed: telling Telegram to retry would not help.
            return web.Response(status=200)
        if update is None:
            return web.Response(status=200)
        try:
            answer = await self.adapter.process(update)
        except Exception:
            log.exception("update %s failed; Telegram will deliver it again", update.update_id)
            return web.Response(status=500)
        if answer is None:
            return web.Response(status=200)
        body: dict[str, object] = {"method": "answerCallbackQuery",
                                   "callback_query_id": answer.query_id}
        if answer.text:
            body.update(text=answer.text, show_alert=True)
        return web.json_response(body)

    async def register(self, url: str) -> None:
        await self.adapter.bot.set_webhook(url, secret_token=self.secret,
                                           allowed_updates=list(ALLOWED_UPDATES))
