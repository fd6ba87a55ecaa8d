"""Telegram out (telegram channel): outbox messages sent through the Bot API, its errors
mapped onto the outbox's retry decisions; the Application's AIORateLimiter paces sends
(30 messages a second overall, 20 a minute per group)."""

from __future__ import annotations

from telegram import Bot, InlineKeyboardMarkup, InputFile, Message
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.domain.delivery import Delivery, DeliveryError, FileToSend
from bot.domain.message_kinds import Kind
from bot.domain.messages import Media
from bot.handlers.telegram.application import CHANNEL, retry_after_seconds
from bot.handlers.telegram.render import Markup, caption, render


class TelegramSender:
    """Sends outbox rows through the Bot API and maps its errors onto retry decisions."""

    name = CHANNEL

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def deliver(self, delivery: Delivery) -> str | None:
        text, markup = render(delivery.reply, delivery.language)
        # An alert or a case card is not to be forwarded or saved ([privacy]); None leaves
        # the parameter out of every other message.
        protect = True if delivery.reply.protect else None
        try:
            if delivery.kind == Kind.EDIT:
                ref = str(delivery.meta["message_ref"])
                inline = markup if isinstance(markup, InlineKeyboardMarkup) else None
                await self.bot.edit_message_text(text, chat_id=int(delivery.address),
                                                 message_id=int(ref), reply_markup=inline)
                return ref
            media = delivery.reply.media
            if media is not None and media.channel == self.name:
                message = await self._send_media(int(delivery.address), media, text, markup,
                                                 protect)
            elif media is not None and delivery.file is not None:
                message = await self._upload(int(delivery.address), media.kind, delivery.file,
                                             text, markup, protect)
            else:
                message = await self.bot.send_message(int(delivery.address), text,
                                                      reply_markup=markup,
                                                      protect_content=protect)
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
                          markup: Markup | None, protect: bool | None) -> Message:
        if media.kind == "photo":
            return await self.bot.send_photo(chat_id, media.ref, caption=caption(text),
                                             reply_markup=markup, protect_content=protect)
        if media.kind == "voice":
            return await self.bot.send_voice(chat_id, media.ref, caption=caption(text),
                                             reply_markup=markup, protect_content=protect)
        return await self.bot.send_document(chat_id, media.ref, caption=caption(text),
                                            reply_markup=markup, protect_content=protect)


    async def _upload(self, chat_id: int, kind: str, file: FileToSend, text: str,
                      markup: Markup | None, protect: bool | None) -> Message:
        """A file the bot made (statistics workbook, chart): uploaded, the texts as caption."""
        upload = InputFile(file.content, filename=file.name)
        if kind == "photo":
            return await self.bot.send_photo(chat_id, upload, caption=caption(text),
                                             reply_markup=markup, protect_content=protect)
        return await self.bot.send_document(chat_id, upload, caption=caption(text),
                                            reply_markup=markup, protect_content=protect)
