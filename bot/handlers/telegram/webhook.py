"""POST /telegram/webhook (telegram channel): the 200 goes back only after the update is
committed."""

from __future__ import annotations

import hashlib
import hmac
import logging

from aiohttp import web
from telegram import Update

from bot.domain.messages import storable
from bot.handlers.telegram.application import ALLOWED_UPDATES
from bot.handlers.telegram.inbound import TelegramUpdates

log = logging.getLogger(__name__)
WEBHOOK_PATH = "/telegram/webhook"


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

    def __init__(self, adapter: TelegramUpdates, secret: str) -> None:
        self.adapter = adapter
        self.secret = secret

    async def handle(self, request: web.Request) -> web.Response:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            return web.Response(status=403)
        # Telegram sends an Update object; anything else is no update (a 400 says why, and
        # Telegram itself never sends one, so nothing it would retry is refused).
        try:
            raw = await request.json()
        except (ValueError, RecursionError):
            return web.json_response({"error": "the body is not JSON"}, status=400)
        if not isinstance(raw, dict):
            return web.json_response({"error": "the body must be a JSON object"}, status=400)
        if isinstance(raw.get("update_id"), bool) or not isinstance(raw.get("update_id"), int):
            return web.json_response({"error": "update_id must be a whole number"}, status=400)
        try:
            update = Update.de_json(storable(raw), self.adapter.bot)
        except (ValueError, KeyError, TypeError, AttributeError):
            return web.json_response({"error": "not a Telegram update"}, status=400)
        if update is None:
            return web.json_response({"error": "not a Telegram update"}, status=400)
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
