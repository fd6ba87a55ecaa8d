"""Telegram's command menus (telegram channel): the list beside the text box, set with
setMyCommands for everyone (the default scope) and for each staff member's own chat
(BotCommandScopeChat); the descriptions are the catalogs' "command.<name>" texts. The
command menus worker (bot/workers/command_menus.py) says what to set and when."""

from __future__ import annotations

from collections.abc import Sequence

from telegram import Bot, BotCommand, BotCommandScope, BotCommandScopeChat, BotCommandScopeDefault
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from bot import i18n
from bot.domain.delivery import DeliveryError
from bot.handlers.telegram.application import CHANNEL, retry_after_seconds


def _scope(chat: str | None) -> BotCommandScope:
    return BotCommandScopeChat(int(chat)) if chat is not None else BotCommandScopeDefault()


class TelegramCommandMenus:
    name = CHANNEL

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def set_commands(self, chat: str | None, language_code: str | None,
                           language: str, names: Sequence[str]) -> None:
        commands = [BotCommand(name, i18n.t(f"command.{name}", language)) for name in names]
        try:
            await self.bot.set_my_commands(commands, scope=_scope(chat),
                                           language_code=language_code)
        except Exception as exc:
            raise _error(exc) from exc

    async def clear_commands(self, chat: str) -> None:
        try:
            await self.bot.delete_my_commands(scope=_scope(chat))
        except Exception as exc:
            raise _error(exc) from exc


def _error(exc: Exception) -> Exception:
    """The Bot API's answer as the worker's retry decision (anything else: as it is)."""
    if isinstance(exc, RetryAfter):
        return DeliveryError("429", retry_after=retry_after_seconds(exc))
    if isinstance(exc, BadRequest | Forbidden):
        return DeliveryError(f"{type(exc).__name__} {exc.message[:80]}", permanent=True)
    if isinstance(exc, TelegramError):  # timeouts and 5xx: again later
        return DeliveryError(type(exc).__name__)
    return exc
