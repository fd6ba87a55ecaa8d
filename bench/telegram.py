"""The real Telegram adapter against the fake Bot API server: inbound updates per second
and confirm -> alert at the server, with many simultaneous reporters.

    .venv/bin/python -m bench.telegram [--reporters 100]

The fake server enforces Telegram's 30 messages per second overall, so replies and alerts
queue in the outbox and drain at that pace; inbound handling is measured on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from pathlib import Path

from bot.app import build_engine
from bot.clock import SystemClock
from bot.config import DEMO_CONFIG, load_commune
from bot.handlers.telegram import (
    TelegramAdapter,
    TelegramChannel,
    TelegramPoller,
    make_application,
)
from tests.fake_telegram import TOKEN, FakeTelegram, Sent

STEPS = [("text", "/start"), ("choice", "menu:report"), ("choice", "danger:no"),
         ("choice", "type:violence"), ("choice", "types:done"), ("text", "Thôn Tây"),
         ("choice", "age:6-10"), ("choice", "sex:girl"), ("choice", "skip"),
         ("choice", "count:1"), ("text", "Cháu bị đánh nhiều lần, hàng xóm nghe tiếng khóc."),
         ("choice", "photos:done"), ("choice", "contact:anonymous"), ("choice", "confirm")]


async def run(reporters: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    fake = FakeTelegram(per_chat_burst=1000)
    await fake.start()
    base = 10_000
    for i in range(reporters):
        fake.add_user(base + i)
    fake.add_user(1)  # the officer
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_commune(DEMO_CONFIG)
        application = make_application(TOKEN, base_url=fake.base_url)
        await application.initialize()
        clock = SystemClock()
        engine = await build_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'b.db'}", cfg, clock,
                                    {"telegram": TelegramChannel(application.bot)})
        poller = TelegramPoller(TelegramAdapter(application, engine.conversations),
                                long_poll=0)
        shown = Sent(0, 1, "", None)
        for kind, value in STEPS:
            for i in range(reporters):
                user = base + i
                if kind == "text":
                    fake.user_text(user, value)
                else:
                    fake.forge(user, value, shown)
        total = len(fake.updates)
        started = time.perf_counter()
        while await poller.poll_once():
            pass
        inbound = time.perf_counter() - started
        await engine.close()
        await application.shutdown()
    await fake.stop()
    print("SafeChild Telegram adapter benchmark (fake Bot API on loopback, SQLite)")
    print(f"  updates handled           {total} from {reporters} reporters")
    print(f"  inbound updates/s         {total / inbound:8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reporters", type=int, default=100)
    asyncio.run(run(parser.parse_args().reporters))


if __name__ == "__main__":
    main()
