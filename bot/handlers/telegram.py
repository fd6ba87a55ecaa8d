"""Telegram channel adapter: updates in, rendered replies out (channel adapter).

Inbound is our own long-polling loop: an update is handed to the conversation service,
which commits it (deduplicated by update_id) before the next getUpdates confirms it, so a
crash never loses one. Outbound is the `telegram` outbox channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.request import HTTPXRequest

from bot import i18n
from bot.flows.vocabulary import Input, Reply
from bot.services.conversation import ConversationService, InboundEvent
from bot.services.outbox import Delivery, DeliveryError

log = logging.getLogger(__name__)
TEXT_LIMIT = 4096
ALLOWED_UPDATES = ("message", "callback_query")
SHORT_LABEL = 18


def make_bot(token: str, base_url: str = "https://api.telegram.org/bot",
             file_base_url: str = "https://api.telegram.org/file/bot") -> Bot:
    return Bot(token, base_url=base_url, base_file_url=file_base_url,
               request=HTTPXRequest(connection_pool_size=64, read_timeout=10),
               get_updates_request=HTTPXRequest(connection_pool_size=2, read_timeout=40))


def to_event(update: Update) -> tuple[InboundEvent, str | None] | None:
    """The update as an InboundEvent, plus the callback query id to answer, if any."""
    key = f"tg:{update.update_id}"
    if update.callback_query is not None:
        query = update.callback_query
        inp = Input("choice", choice=(query.data or "")[:64])
        return InboundEvent("telegram", str(query.from_user.id), inp, key), query.id
    msg = update.message
    if msg is None or msg.chat.type != "private" or msg.from_user is None:
        return None
    sender = str(msg.from_user.id)
    if msg.text is not None:
        text = msg.text
        if text.startswith("/") and len(text) > 1:
            command, _, args = text[1:].partition(" ")
            inp = Input("command", command=command.split("@")[0].lower()[:32], args=args)
        else:
            inp = Input("text", text=text)
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


async def on_update(bot: Bot, conversations: ConversationService, update: Update) -> None:
    """Hand one update to the engine (which commits it), then answer its button press."""
    parsed = to_event(update)
    if parsed is None:
        return
    event, query_id = parsed
    await conversations.handle(event)
    if query_id is not None:
        # Stops the button's spinner; a failure here loses nothing.
        with contextlib.suppress(TelegramError):
            await bot.answer_callback_query(query_id)


class TelegramChannel:
    """Sends outbox rows through the Bot API and maps its errors onto retry decisions."""

    name = "telegram"

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def deliver(self, session: AsyncSession, delivery: Delivery) -> str | None:
        text, markup = render(delivery.reply, delivery.language)
        try:
            if delivery.kind == "edit":
                ref = str(delivery.meta["message_ref"])
                inline = markup if isinstance(markup, InlineKeyboardMarkup) else None
                await self.bot.edit_message_text(text, chat_id=int(delivery.address),
                                                 message_id=int(ref), reply_markup=inline)
                return ref
            message = await self.bot.send_message(int(delivery.address), text,
                                                  reply_markup=markup)
        except RetryAfter as exc:
            retry = exc.retry_after
            seconds = retry if isinstance(retry, int | float) else retry.total_seconds()
            raise DeliveryError("429", retry_after=float(seconds)) from exc
        except Forbidden as exc:
            raise DeliveryError("403 blocked", permanent=True, unreachable=True) from exc
        except BadRequest as exc:
            if "not modified" in exc.message:
                return str(delivery.meta.get("message_ref", ""))
            raise DeliveryError(f"400 {exc.message[:80]}", permanent=True) from exc
        except (NetworkError, TelegramError) as exc:  # timeouts and 5xx: retry with backoff
            raise DeliveryError(type(exc).__name__) from exc
        return str(message.message_id)


class TelegramPoller:
    """Long polling that confirms an update only after it has been committed."""

    def __init__(self, bot: Bot, conversations: ConversationService,
                 long_poll: int = 25) -> None:
        self.bot = bot
        self.conversations = conversations
        self.long_poll = long_poll
        self.offset: int | None = None

    async def poll_once(self) -> int:
        updates = await self.bot.get_updates(offset=self.offset, timeout=self.long_poll,
                                             allowed_updates=ALLOWED_UPDATES)
        for update in updates:
            await on_update(self.bot, self.conversations, update)
            # Only now may Telegram forget it: the next getUpdates carries this offset.
            self.offset = update.update_id + 1
        return len(updates)

    async def run(self, stop: asyncio.Event) -> None:
        webhook_cleared = False
        while not stop.is_set():
            try:
                if not webhook_cleared:
                    # getUpdates refuses to work while a webhook is set.
                    webhook_cleared = await self.bot.delete_webhook()
                await self.poll_once()
            except RetryAfter as exc:
                retry = exc.retry_after
                await asyncio.sleep(retry if isinstance(retry, int | float)
                                    else retry.total_seconds())
            except (NetworkError, TelegramError):
                log.warning("getUpdates failed; retrying")
                await asyncio.sleep(1)
            except Exception:
                # A bug in handling one update must not kill polling; the update stays
                # unconfirmed and comes back.
                log.exception("update handling failed")
                await asyncio.sleep(1)


def webhook_secret(token: str, configured: str | None) -> str:
    """The secret Telegram echoes in X-Telegram-Bot-Api-Secret-Token. Derived from the token
    when not configured, so every process behind one URL agrees without sharing state."""
    if configured:
        return configured
    return hashlib.sha256(f"safechild-webhook:{token}".encode()).hexdigest()[:48]


class TelegramWebhook:
    """POST /telegram/webhook: the 200 goes back only after the update is committed."""

    def __init__(self, bot: Bot, conversations: ConversationService, secret: str) -> None:
        self.bot = bot
        self.conversations = conversations
        self.secret = secret

    async def handle(self, request: web.Request) -> web.Response:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            return web.Response(status=403)
        try:
            update = Update.de_json(await request.json(), self.bot)
        except (ValueError, KeyError, TypeError):
            # Malformed: telling Telegram to retry would not help.
            return web.Response(status=200)
        if update is not None:
            await on_update(self.bot, self.conversations, update)
        return web.Response(status=200)

    async def register(self, url: str) -> None:
        await self.bot.set_webhook(url, secret_token=self.secret,
                                   allowed_updates=list(ALLOWED_UPDATES))
