"""The Telegram channel: a python-telegram-bot Application without an Updater, updates by
our own long polling or a webhook, sends through the outbox (the package's modules: the
Application and its HTTP layer, inbound, render, sender, polling, webhook)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp import web
from telegram.ext import Application

from bot.config import env_number
from bot.handlers.labels import match_label
from bot.handlers.plugin import Base, Core, Inbound, Outbound
from bot.handlers.telegram.application import CHANNEL, make_application
from bot.handlers.telegram.commands import TelegramCommandMenus
from bot.handlers.telegram.inbound import TelegramUpdates
from bot.handlers.telegram.polling import TelegramPoller
from bot.handlers.telegram.sender import TelegramSender
from bot.handlers.telegram.webhook import WEBHOOK_PATH, TelegramWebhook, webhook_secret

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TelegramSettings:
    """Configuration from the environment; the token is kept out of repr()."""

    token: str = field(repr=False)
    api_base_url: str = "https://api.telegram.org/bot"
    file_base_url: str = "https://api.telegram.org/file/bot"
    # With a URL: webhook mode on POST /telegram/webhook instead of long polling.
    webhook_url: str = ""
    webhook_secret: str = field(default="", repr=False)
    read_timeout: float = 10.0
    long_poll: int = 25
    # Off only for a Bot API server without limits (benchmarks, tests whose fake paces
    # sends on their own clock): the limiter would wait in real time.
    rate_limit: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TelegramSettings | None:
        token = environ.get("TELEGRAM_BOT_TOKEN", "")
        if not token:
            return None
        return cls(token=token,
                   api_base_url=environ.get("TELEGRAM_API_BASE_URL",
                                            "https://api.telegram.org/bot"),
                   file_base_url=environ.get("TELEGRAM_FILE_BASE_URL",
                                             "https://api.telegram.org/file/bot"),
                   webhook_url=environ.get("TELEGRAM_WEBHOOK_URL", ""),
                   webhook_secret=environ.get("TELEGRAM_WEBHOOK_SECRET", ""),
                   read_timeout=env_number(environ, "TELEGRAM_READ_TIMEOUT", 10.0))


class TelegramPlugin:
    name = CHANNEL

    def __init__(self, settings: TelegramSettings, *, poll: bool = True) -> None:
        self.settings = settings
        # Long polling runs as the process's loop unless the caller polls by hand (tests).
        self.poll = poll
        self.application: Application | None = None
        self.updates: TelegramUpdates | None = None
        self.poller: TelegramPoller | None = None

    async def open(self, base: Base) -> Outbound:
        settings = self.settings
        application = make_application(settings.token, settings.api_base_url,
                                       settings.file_base_url,
                                       read_timeout=settings.read_timeout,
                                       rate_limit=settings.rate_limit)
        await application.initialize()  # getMe: the bot's username, for invitation links
        self.application = application
        return Outbound(sender=TelegramSender(application.bot), labels=match_label,
                        invite_link=f"https://t.me/{application.bot.username}?start=",
                        command_menus=TelegramCommandMenus(application.bot))

    async def attach(self, core: Core) -> Inbound:
        settings = self.settings
        assert self.application is not None, "open() first"
        self.updates = TelegramUpdates(self.application, core.conversations)
        parts = Inbound()
        if settings.webhook_url:
            hook = TelegramWebhook(self.updates,
                                   webhook_secret(settings.token, settings.webhook_secret))
            parts.routes.append(web.post(WEBHOOK_PATH, hook.handle))

            async def register() -> None:
                await hook.register(settings.webhook_url)
                log.info("telegram webhook registered")

            parts.on_listening.append(register)
            parts.announce = "telegram webhook on POST /telegram/webhook"
        else:
            self.poller = TelegramPoller(self.updates, long_poll=settings.long_poll)
            if self.poll:
                parts.loops.append(self.poller.run)
            parts.announce = "telegram polling started"
        return parts

    async def close(self) -> None:
        if self.application is not None:
            await self.application.shutdown()
