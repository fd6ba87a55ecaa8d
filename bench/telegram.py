"""The real Telegram adapter against the fake Bot API server on loopback, SQLite.

    .venv/bin/python -m bench.telegram [--part all|inbound|echo|latency|emergency|broadcast]
                                       [--reporters 100] [--chats 2000] [--gap S] [--think S]

- inbound: N reporters' whole report flows (14 updates each) queued at the fake server;
  our poller, engine and outbox handle them all, every reply delivered. Rate limits off
  on both sides, so this is our own cost per update.
- echo: the same number of text updates through a bare python-telegram-bot echo bot
  (Application + its own Updater, reply_text) against the same fake server: the yardstick.
  Both print CPU milliseconds per update as well (this process: bot, fake server and
  SQLite's thread), steadier than the rate on a machine whose speed varies.
- latency: reporters who behave like people (arriving one every 0.6 s, each waiting for the
  bot's answer and 1 s more before the next tap, about 30 at once), with the AIORateLimiter
  on and the fake enforcing 30 messages a second;
  p50/p95 from the fake receiving a report's "confirm" press to the officer's alert
  reaching the fake.
- emergency: reporters of a child in danger now (one every --gap s, tapping --think s after
  each answer): answers from /start to the officer's alert for this path and the STANDARD
  one, and p50/p95 from the fake receiving the "danger: yes" press to the officer's alert
  reaching the fake, with the AIORateLimiter on.
- broadcast: one message to each of C chats through the outbox and the rate limiter,
  with the fake enforcing 30 a second overall; rate, 429s, and a check that every chat got
  it exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import statistics
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from bench.common import percentile, until
from bot.app import App, Setup, build_app
from bot.clock import SystemClock
from bot.config import DEMO_CONFIG, parse_commune
from bot.domain.messages import Reply, Text
from bot.handlers.telegram import TelegramPlugin, TelegramSettings
from storage import people
from storage.crypto import FieldCipher
from storage.db import cipher_of
from tests.support.fake_telegram import TOKEN, FakeTelegram, Sent

STEPS = [("text", "/start"), ("choice", "menu:report"), ("choice", "danger:no"),
         ("choice", "type:violence"), ("choice", "types:done"), ("text", "Thôn Tây"),
         ("choice", "age:6-10"), ("choice", "sex:girl"), ("choice", "skip"),
         ("choice", "count:1"), ("text", "Cháu bị đánh nhiều lần, hàng xóm nghe tiếng khóc."),
         ("choice", "photos:done"), ("choice", "contact:anonymous"), ("choice", "confirm")]
# A child hurt right now: alerted at the village, the questions go on after it.
EMERGENCY_STEPS = [("text", "/start"), ("choice", "menu:report"), ("choice", "danger:yes"),
                   ("choice", "type:injury"), ("text", "Thôn Đông")]
OFFICER, POLICE, BASE = 1, 2, 10_000
UNLIMITED = 10**9
# Latency part: a reporter starts every ARRIVAL_GAP s and taps THINK s after each answer, so
# about 30 report at once and the traffic stays near (not over) Telegram's 30 messages/s.
ARRIVAL_GAP, THINK = 0.6, 1.0
CODE = re.compile(r"VT-\d{4}-\d{4}")


class Bot:
    """Our whole bot in this process: engine, Application, poller, outbox worker."""

    def __init__(self, fake: FakeTelegram, db: Path, rate_limit: bool,
                 sealed: bool = True) -> None:
        self.fake, self.db, self.rate_limit, self.sealed = fake, db, rate_limit, sealed

    async def __aenter__(self) -> Bot:
        raw = tomllib.loads(DEMO_CONFIG.read_text(encoding="utf-8"))
        for person in raw["people"]:
            if person["key"] in ("officer", "police"):
                person["telegram_id"] = OFFICER if person["key"] == "officer" else POLICE
        telegram = TelegramPlugin(TelegramSettings(
            token=TOKEN, api_base_url=self.fake.base_url, long_poll=1,
            rate_limit=self.rate_limit))
        self.engine: App = await build_app(
            Setup(f"sqlite+aiosqlite:///{self.db}", parse_commune(raw), SystemClock()),
            [telegram])
        if not self.sealed:
            unseal(self.engine)
        await self.engine.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.engine.close()


class _Unsealed(FieldCipher):
    """Writes values plain (reads either): the private fields' encryption off, to measure
    what it costs (bench/encryption.py)."""

    def __init__(self, sealing: FieldCipher) -> None:
        # The database's own keys, to open what the start sealed.
        self.__dict__.update(sealing.__dict__)

    def seal(self, plain: str) -> str:
        return plain


def unseal(app: App) -> None:
    dialect = app.database.engine.sync_engine.dialect
    dialect.safechild_cipher = _Unsealed(cipher_of(app.database.engine))  # type: ignore[attr-defined]


class Tally:
    """Counts the fake's sent messages that match, looking at each one once: a check that
    rescans them all every 10 ms would cost the measured process real time."""

    def __init__(self, fake: FakeTelegram, match: Callable[[Sent], bool]) -> None:
        self.fake, self.match, self.seen, self.count = fake, match, 0, 0

    def __call__(self) -> int:
        new = self.fake.sent[self.seen:]
        self.seen += len(new)
        self.count += sum(1 for m in new if self.match(m))
        return self.count


def queue_reports(fake: FakeTelegram, reporters: int) -> None:
    shown = Sent(0, 1, "", None)
    for kind, value in STEPS:
        for i in range(reporters):
            if kind == "text":
                fake.user_text(BASE + i, value)
            else:
                fake.forge(BASE + i, value, shown)


async def part_inbound(tmp: Path, reporters: int, sealed: bool = True) -> dict[str, Any]:
    fake = FakeTelegram(per_second=UNLIMITED, per_chat_burst=UNLIMITED)
    await fake.start()
    for i in range(reporters):
        fake.add_user(BASE + i)
    fake.add_user(OFFICER), fake.add_user(POLICE)
    async with Bot(fake, tmp / "inbound.db", rate_limit=False, sealed=sealed):
        queue_reports(fake, reporters)
        total = len(fake.updates)
        started, cpu = time.perf_counter(), time.process_time()
        alerts = Tally(fake, lambda m: m.chat_id == OFFICER)
        await until(lambda: alerts() >= reporters and not fake.updates)
        # Every reporter's last answer (the case code) has reached the fake server too.
        codes = Tally(fake, lambda m: m.chat_id >= BASE and "VT-" in m.text)
        await until(lambda: codes() >= reporters)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    await fake.stop()
    return {"updates": total, "seconds": elapsed, "per_second": total / elapsed,
            "cpu_ms_per_update": 1000 * cpu / total,
            "messages_out": len(fake.sent)}


async def part_echo(updates: int) -> dict[str, Any]:
    fake = FakeTelegram(per_second=UNLIMITED, per_chat_burst=UNLIMITED)
    await fake.start()
    users = 100
    for i in range(users):
        fake.add_user(BASE + i)

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.text is not None
        await update.message.reply_text(update.message.text)

    application = (Application.builder().token(TOKEN).base_url(fake.base_url)
                   .concurrent_updates(True).build())
    application.add_handler(MessageHandler(filters.TEXT, echo))
    await application.initialize()
    await application.start()
    assert application.updater is not None
    for n in range(updates):
        fake.user_text(BASE + n % users, f"tin nhắn {n}")
    started, cpu = time.perf_counter(), time.process_time()
    await application.updater.start_polling(timeout=1, poll_interval=0)
    await until(lambda: len(fake.sent) >= updates)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    await application.updater.stop()
    await application.stop()
    await application.shutdown()
    await fake.stop()
    return {"updates": updates, "seconds": elapsed, "per_second": updates / elapsed,
            "cpu_ms_per_update": 1000 * cpu / updates}


async def part_latency(tmp: Path, reporters: int, gap: float = ARRIVAL_GAP,
                       think: float = THINK) -> dict[str, Any]:
    fake = FakeTelegram(per_chat_burst=5)  # Telegram's 30 a second overall, enforced
    await fake.start()
    for i in range(reporters):
        fake.add_user(BASE + i)
    fake.add_user(OFFICER), fake.add_user(POLICE)
    confirmed: dict[int, float] = {}

    async def person(i: int) -> None:
        await asyncio.sleep(i * gap)
        user = BASE + i
        event = fake.chat_events.setdefault(user, asyncio.Event())
        for kind, value in STEPS:
            event.clear()
            if kind == "text":
                update_id = fake.user_text(user, value)
            else:
                update_id = fake.press(user, value)
            if value == "confirm":
                confirmed[i] = fake.pushed_at[update_id]
            await asyncio.wait_for(event.wait(), 120)
            await asyncio.sleep(think)  # a person reads and taps

    async with Bot(fake, tmp / "latency.db", rate_limit=True):
        started = time.perf_counter()
        await asyncio.gather(*(person(i) for i in range(reporters)))
        await until(lambda: len(alert_times(fake)) >= reporters)
        elapsed = time.perf_counter() - started
    alerts = alert_times(fake)
    waits = []
    for i in range(reporters):
        # The reporter's last answer names the case code, the alert too.
        code = CODE.search(fake.inbox(BASE + i)[-1].text)
        assert code is not None, "the reporter got no case code"
        waits.append((alerts[code.group(0)] - confirmed[i]) * 1000)
    waits.sort()
    await fake.stop()
    return {"reports": len(waits), "seconds": elapsed,
            "p50_ms": statistics.median(waits),
            "p95_ms": percentile(waits, 0.95),
            "rejected_429": fake.rejected_429}


async def part_emergency(tmp: Path, reporters: int, gap: float = ARRIVAL_GAP,
                         think: float = THINK) -> dict[str, Any]:
    fake = FakeTelegram(per_chat_burst=5)
    await fake.start()
    for i in range(reporters):
        fake.add_user(BASE + i)
    fake.add_user(OFFICER), fake.add_user(POLICE)
    in_danger: dict[int, float] = {}

    async def person(i: int) -> None:
        await asyncio.sleep(i * gap)
        user = BASE + i
        event = fake.chat_events.setdefault(user, asyncio.Event())
        for kind, value in EMERGENCY_STEPS:
            if kind == "choice":  # its button may come a message after the first answer
                await until(lambda v=value: any(v in m.callback_data  # type: ignore[misc]
                                                for m in fake.inbox(user)))
            event.clear()
            update_id = (fake.user_text(user, value) if kind == "text"
                         else fake.press(user, value))
            if value == "danger:yes":
                in_danger[i] = fake.pushed_at[update_id]
            await asyncio.wait_for(event.wait(), 120)
            await asyncio.sleep(think)

    async with Bot(fake, tmp / "emergency.db", rate_limit=True):
        await asyncio.gather(*(person(i) for i in range(reporters)))
        await until(lambda: len(alert_times(fake)) >= reporters)
    alerts = alert_times(fake)
    waits = []
    for i in range(reporters):
        # The reporter is told the code the moment the team is alerted.
        code = next(m for m in (CODE.search(x.text) for x in fake.inbox(BASE + i)) if m)
        waits.append((alerts[code.group(0)] - in_danger[i]) * 1000)
    waits.sort()
    await fake.stop()
    # Answers after /start until the team is alerted, on each path.
    standard = len(STEPS) - 1
    emergency = len(EMERGENCY_STEPS) - 1
    return {"reports": len(waits), "answers_emergency": emergency,
            "answers_standard": standard, "think_s": think,
            "danger_to_alert_p50_ms": statistics.median(waits),
            "danger_to_alert_p95_ms": percentile(waits, 0.95)}


def alert_times(fake: FakeTelegram) -> dict[str, float]:
    found = {}
    for m in fake.sent:
        code = CODE.search(m.text) if m.chat_id == OFFICER and m.callback_data else None
        if code is not None:
            found.setdefault(code.group(0), m.at)
    return found


async def part_broadcast(tmp: Path, chats: int) -> dict[str, Any]:
    fake = FakeTelegram(per_chat_burst=5)  # 30 a second overall, enforced with 429
    await fake.start()
    for i in range(chats):
        fake.add_user(BASE + i)
    async with Bot(fake, tmp / "broadcast.db", rate_limit=True) as bot:
        engine = bot.engine
        now = engine.clock.now()
        async with engine.database.transaction() as s:
            for i in range(chats):
                person = await people.add_person(
                    s, commune_id=engine.directory.commune_id, key=f"ctv-{i}",
                    role="collaborator", name=f"CTV {i}", language="vi", created_at=now)
                await people.bind_identity(s, person.id, "telegram", str(BASE + i))
        reply = Reply((Text("raw", {"text": "Họp cộng tác viên 8 giờ sáng thứ Hai tại UBND xã."}),))
        started = time.perf_counter()
        async with engine.database.transaction() as s:
            for person in await people.configured_people(s, engine.directory.commune_id):
                if person.role == "collaborator" and person.key and person.key.startswith(
                        "ctv-"):
                    await engine.outbox.send(s, person, reply, now, kind="broadcast",
                                             to=("telegram", str(BASE + int(person.key[4:]))))
        engine.wake()
        delivered = Tally(fake, lambda m: m.chat_id >= BASE)
        await until(lambda: delivered() >= chats)
        elapsed = time.perf_counter() - started
        await asyncio.sleep(1.0)  # room for a duplicate to show up
    per_chat = Counter(m.chat_id for m in fake.sent if m.chat_id >= BASE)
    await fake.stop()
    return {"chats": chats, "seconds": elapsed, "per_second": chats / elapsed,
            "rejected_429": fake.rejected_429, "lost": chats - len(per_chat),
            "duplicated": sum(1 for n in per_chat.values() if n > 1)}


async def run(part: str, reporters: int, chats: int, gap: float, think: float) -> None:
    logging.basicConfig(level=logging.ERROR)
    parts: dict[str, Callable[[Path], Awaitable[dict[str, Any]]]] = {
        "inbound": lambda tmp: part_inbound(tmp, reporters),
        "echo": lambda tmp: part_echo(reporters * len(STEPS)),
        "latency": lambda tmp: part_latency(tmp, reporters, gap, think),
        "emergency": lambda tmp: part_emergency(tmp, min(reporters, 30), gap, think),
        "broadcast": lambda tmp: part_broadcast(tmp, chats),
    }
    print("SafeChild Telegram benchmark (fake Bot API on 127.0.0.1, SQLite WAL)")
    with tempfile.TemporaryDirectory() as tmpdir:
        for name, fn in parts.items():
            if part not in ("all", name):
                continue
            result = await fn(Path(tmpdir))
            shown = "  ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in result.items())
            print(f"  {name:<10} {shown}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", default="all",
                        choices=("all", "inbound", "echo", "latency", "emergency",
                                 "broadcast"))
    parser.add_argument("--reporters", type=int, default=100)
    parser.add_argument("--chats", type=int, default=2000)
    parser.add_argument("--gap", type=float, default=ARRIVAL_GAP,
                        help="latency: seconds between reporters' arrivals (0: all at once)")
    parser.add_argument("--think", type=float, default=THINK,
                        help="latency: seconds a reporter takes before each tap")
    args = parser.parse_args()
    asyncio.run(run(args.part, args.reporters, args.chats, args.gap, args.think))


if __name__ == "__main__":
    main()
