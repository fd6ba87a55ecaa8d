"""The `safechild` command: `safechild serve` runs the bot (web simulator by default)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from aiohttp import web

from bot.app import build_engine, make_clock
from bot.config import ConfigError, Settings, load_commune
from bot.handlers.telegram import (
    TelegramAdapter,
    TelegramChannel,
    TelegramPoller,
    TelegramWebhook,
    make_application,
    webhook_secret,
)
from bot.handlers.web import WebChannel, make_app
from bot.handlers.zalo import WebhookSettings
from bot.handlers.zalo_api import ZaloSettings
from bot.handlers.zalo_channel import connect_zalo
from bot.services.outbox import Channel

log = logging.getLogger("safechild")


async def serve(settings: Settings) -> None:
    clock = make_clock(settings)
    channels: dict[str, Channel] = {"web": WebChannel(clock)} if settings.simulator else {}
    token = settings.environ.get("TELEGRAM_BOT_TOKEN", "")
    application = None
    if token:
        application = make_application(
            token, settings.environ.get("TELEGRAM_API_BASE_URL", "https://api.telegram.org/bot"),
            settings.environ.get("TELEGRAM_FILE_BASE_URL", "https://api.telegram.org/file/bot"))
        await application.initialize()
        channels["telegram"] = TelegramChannel(application.bot)
    zalo_settings = ZaloSettings.from_env(settings.environ)
    engine = await build_engine(settings.database_url, load_commune(settings.config_path),
                                clock, channels)
    zalo = None
    if zalo_settings is not None:
        # After the engine: the client keeps the OA's tokens in its database.
        zalo = connect_zalo(engine, zalo_settings,
                            WebhookSettings.from_env(settings.environ),
                            public_url=settings.environ.get("SAFECHILD_PUBLIC_URL", ""))
        await zalo.api.start()
    adapter = None
    if application is not None:
        adapter = TelegramAdapter(application, engine.conversations)
        engine.conversations.invites.links["telegram"] = (
            f"https://t.me/{application.bot.username}?start=")
    await engine.start_workers()
    routes: list[web.RouteDef] = zalo.routes() if zalo is not None else []
    webhook_url = settings.environ.get("TELEGRAM_WEBHOOK_URL", "")
    if adapter is not None and webhook_url:
        hook = TelegramWebhook(adapter, webhook_secret(
            token, settings.environ.get("TELEGRAM_WEBHOOK_SECRET")))
        routes.append(web.post("/telegram/webhook", hook.handle))
    elif adapter is not None:
        poller = TelegramPoller(adapter)
        engine.tasks.append(asyncio.create_task(poller.run(engine.stop)))
        log.info("telegram polling started")
    runner = web.AppRunner(make_app(engine, routes, simulator=settings.simulator),
                           access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    if adapter is not None and webhook_url:
        await hook.register(webhook_url)
        log.info("telegram webhook registered")
    if zalo is not None:
        log.info("zalo webhook on POST /zalo/webhook")
    if settings.simulator:
        log.info("web simulator on http://%s:%s", settings.host, settings.port)
        print(f"SafeChild web simulator: http://{settings.host}:{settings.port}", flush=True)
    else:
        log.info("listening on http://%s:%s (no simulator)", settings.host, settings.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    # Zalo's token refresher uses the engine's database: it stops first.
    if zalo is not None:
        await zalo.close()
    await engine.close()
    if application is not None:
        await application.shutdown()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="safechild")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the bot (web simulator when no channel token is set)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request URL, and Telegram's URLs carry the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.command == "serve":
        try:
            settings = Settings.from_env()
        except ConfigError as exc:
            parser.exit(2, f"safechild: {exc}\n")
        asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
