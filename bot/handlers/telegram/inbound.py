"""Telegram updates in (telegram channel): each update becomes an InboundEvent for the
conversation service, which commits it (deduplicated by update_id) before the update is
confirmed to Telegram, by the poller (bot/handlers/telegram/polling.py) or in the webhook's
answer (bot/handlers/telegram/webhook.py)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from telegram import Bot, Update
from telegram.error import TelegramError
from telegram.ext import Application, ContextTypes, TypeHandler

from bot.domain.messages import Input
from bot.handlers.telegram.application import CHANNEL
from bot.handlers.typed import typed_input
from bot.services.conversation import ConversationService, InboundEvent

CALLBACK_TEXT_LIMIT = 200


def to_event(update: Update) -> tuple[InboundEvent, str | None] | None:
    """The update as an InboundEvent, plus the callback query id to answer, if any."""
    key = f"tg:{update.update_id}"
    if update.callback_query is not None:
        query = update.callback_query
        inp = Input("choice", choice=(query.data or "")[:64])
        chat = query.message.chat if query.message is not None else None
        group = str(chat.id) if chat is not None and chat.type != "private" else None
        return (InboundEvent(CHANNEL, str(query.from_user.id), inp, key, group=group),
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
    return InboundEvent(CHANNEL, sender, inp, key), None


@dataclass(frozen=True)
class ButtonAnswer:
    """The answer a pressed button is owed (stops its spinner, may show a short text)."""

    query_id: str
    text: str | None


class TelegramUpdates:
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
