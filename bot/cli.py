"""The `safechild` command: `safechild serve` runs the bot (web simulator by default)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from aiohttp import web

from bot import logs
from bot.app import Setup, build_app
from bot.config import ConfigError, Settings
from bot.handlers.plugin import ChannelPlugin
from bot.handlers.simulator import SimulatorPlugin
from bot.handlers.telegram import TelegramPlugin, TelegramSettings
from bot.handlers.zalo import ZaloPlugin
from bot.handlers.zalo.api import ZaloSettings
from bot.handlers.zalo.webhook import WebhookSettings

log = logging.getLogger("safechild")


def channels_of(settings: Settings) -> list[ChannelPlugin]:
    """The channels the environment configures, the simulator when it is on."""
    channels: list[ChannelPlugin] = []
    if settings.simulator:
        channels.append(SimulatorPlugin())
    telegram = TelegramSettings.from_env(settings.environ)
    if telegram is not None:
        channels.append(TelegramPlugin(telegram))
    zalo = ZaloSettings.from_env(settings.environ)
    if zalo is not None:
        channels.append(ZaloPlugin(zalo, WebhookSettings.from_env(settings.environ),
                                   public_url=settings.environ.get("SAFECHILD_PUBLIC_URL", "")))
    return channels


async def serve(settings: Settings, setup: Setup, channels: list[ChannelPlugin]) -> None:
    app = await build_app(setup, channels)
    await app.start()
    runner = web.AppRunner(app.server, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    await app.listening()
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
    await app.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="safechild")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the bot (web simulator when no channel token is set)")
    args = parser.parse_args(argv)
    logs.configure()
    if args.command == "serve":
        try:
            settings = Settings.from_env()
            channels = channels_of(settings)
            # The commune file is read here, so a mistake in it is one line, not a traceback.
            setup = Setup.from_settings(settings)
        except (ConfigError, ValueError) as exc:
            parser.exit(2, f"safechild: {exc}\n")
        asyncio.run(serve(settings, setup, channels))


if __name__ == "__main__":
    main()
