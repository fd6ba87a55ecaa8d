"""Zalo out (zalo channel): outbox messages as Zalo messages.

Each outbox message is rendered (bot/handlers/zalo/render.py) into one or more Zalo messages and
sent through the OA API client; Zalo's answers become the outbox's retry decisions. A person
outside Zalo's messaging window (or who left the OA) is unreachable here: the outbox marks
them so, and an alert is rerouted at once to their other channel, or up the chain.
"""

from __future__ import annotations

import logging
from typing import Protocol

from bot.domain.delivery import ASK_TAP, TOLD_APART, Delivery, DeliveryError, file_url
from bot.domain.message_kinds import Kind
from bot.domain.messages import Reply
from bot.handlers.zalo.api import ZaloButton, ZaloError, ZaloUnavailable
from bot.handlers.zalo.render import ZaloMessage, render
from bot.handlers.zalo.webhook import CHANNEL

log = logging.getLogger(__name__)
# Zalo cannot change a message it has sent, and every message spends one of the few
# replies Zalo allows since the person last wrote. Of the edits SafeChild makes, only an
# alert someone has taken matters enough for a new message (so nobody else goes out to the
# family), and only when its news is not told apart (TOLD_APART: the team's notice, the
# taker's own answer); a broadcast's running count, say, is skipped.
EDITS_WORTH_A_MESSAGE = frozenset({"case.taken_by"})
RATE_LIMIT_WAIT = 60.0


class OaApi(Protocol):
    """The part of bot.handlers.zalo.api.ZaloApi the sender uses."""

    max_buttons: int

    async def send_text(self, user_id: str, text: str) -> str: ...

    async def send_buttons(self, user_id: str, text: str,
                           buttons: list[ZaloButton]) -> str: ...

    async def send_image(self, user_id: str, image_url: str, text: str = "") -> str: ...


class ZaloSender:
    """Sends outbox messages as Zalo messages and maps Zalo's errors onto retry decisions."""

    name = CHANNEL

    def __init__(self, api: OaApi, public_url: str = "") -> None:
        self.api = api
        # The web server's public address: files the bot made are linked from there.
        self.public_url = public_url.rstrip("/")
        # A row rendered as several messages that failed part-way: the parts already sent,
        # so the outbox's retry sends only the rest (kept in memory: a restart may repeat
        # a part, never lose one).
        self._sent_parts: dict[int, list[str]] = {}

    def messages(self, delivery: Delivery) -> list[ZaloMessage]:
        reply = delivery.reply
        if delivery.kind == Kind.EDIT:
            if (not reply.texts or reply.texts[0].id not in EDITS_WORTH_A_MESSAGE
                    or delivery.meta.get(TOLD_APART)):
                return []
            reply = Reply(reply.texts[:1])
        link = None
        if delivery.file is not None and delivery.file.token and self.public_url:
            link = self.public_url + file_url(delivery.file)
        return render(reply, delivery.language, max_buttons=self.api.max_buttons,
                      file_url=link, ask_tap=bool(delivery.meta.get(ASK_TAP)))

    def cost(self, delivery: Delivery) -> int:
        """Zalo messages the delivery took (each spends one of the person's few replies)."""
        return len(self.messages(delivery))

    async def deliver(self, delivery: Delivery) -> str | None:
        messages = self.messages(delivery)
        if not messages:
            # An edit Zalo cannot show: the original message stands.
            return str(delivery.meta.get("message_ref", "")) or None
        done = self._sent_parts.pop(delivery.outbox_id, [])
        try:
            for message in messages[len(done):]:
                done.append(await self._send(delivery.address, message))
        except ZaloError as exc:
            error = _delivery_error(exc)
            if done and not error.permanent:
                self._sent_parts[delivery.outbox_id] = done
            raise error from exc
        except ZaloUnavailable as exc:
            if done:
                self._sent_parts[delivery.outbox_id] = done
            raise DeliveryError(f"zalo unavailable: {str(exc)[:60]}") from exc
        except ValueError as exc:
            # The client refused it before sending (a limit): retrying cannot help.
            raise DeliveryError(f"zalo refused locally: {str(exc)[:80]}",
                                permanent=True) from exc
        return done[0]

    async def _send(self, user_id: str, message: ZaloMessage) -> str:
        if message.image_url:
            return await self.api.send_image(user_id, message.image_url, message.text)
        if message.buttons:
            return await self.api.send_buttons(user_id, message.text, list(message.buttons))
        return await self.api.send_text(user_id, message.text)


def _delivery_error(exc: ZaloError) -> DeliveryError:
    if exc.outside_window:
        return DeliveryError(f"zalo {exc.code}: cannot be messaged now", permanent=True,
                             unreachable=True)
    if exc.rate_limited:
        return DeliveryError(f"zalo {exc.code}: rate limited",
                             retry_after=exc.retry_after or RATE_LIMIT_WAIT)
    return DeliveryError(f"zalo {exc.code}", permanent=exc.permanent)
