"""The `safechild` command: `safechild serve` runs the bot (web simulator by default)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from aiohttp import web

from bot.app import build_engine, make_clock
from bot.config import Settings, load_commune
from bot.handlers.web import WebChannel, make_app

log = logging.getLogger("safechild")


async def serve(settings: Settings) -> None:
    clock = make_clock(settings)
    engine = await build_engine(settings.database_url, load_commune(settings.config_path),
                                clock, {"web": WebChannel(clock)})
    await engine.start_workers()
    runner = web.AppRunner(make_app(engine), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    log.info("web simulator on http://%s:%s", settings.host, settings.port)
    print(f"SafeChild web simulator: http://{settings.host}:{settings.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    await engine.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="safechild")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the bot (web simulator when no channel token is set)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        asyncio.run(serve(Settings.from_env()))


if __name__ == "__main__":
    main()
