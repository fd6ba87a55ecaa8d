"""The real `safechild serve` process on Zalo, against the fake Zalo platform on loopback.

    .venv/bin/python -m bench.zalo [--part all|burst|paced] [--users 200] [--gap S]
                                   [--think S] [--database-url URL | --postgres]
                                   [--processes N]

The bot runs as its own process (webhook, inbound worker, outbox, OA client, SQLite WAL
unless --database-url), as in production; this process plays Zalo: it posts signed events
to the webhook and serves the OA API the bot answers through.

- burst: U people all at once, each posting the 14 events of a whole report back to back
  (each as soon as the previous one got its 200), with Zalo's rate limit off: the most
  load the webhook can be given. Reports the time from a POST leaving to its 200 coming
  back (p50/p95/p99/max), events accepted per second, and events handled per second end to
  end (until every reporter has their case code and the officer every alert).
- paced: people who behave like people (one arrives every GAP s, each waits for the bot's
  answer and THINK s more before the next tap), Zalo's 4000 calls a minute enforced: the
  200's p50/p95 and the time from an event's POST to the bot's first answer reaching Zalo.

--postgres starts a throwaway PostgreSQL server on loopback (tests/pg.py) for the run.
--processes N runs N bot processes on the one database, the events spread over them in
turn as a load balancer in front of one webhook URL would; both parts then also count
case codes and alerts that arrived more than once (duplicates, which must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import percentile, until
from bot.config import DEMO_CONFIG
from tests.support.fake_zalo import FakeZalo
from tests.support.pg import PostgresServer, use_test_keys
from tests.support.processes import free_port

STEPS = ("/start", "#menu:report", "#danger:no", "#type:violence", "#types:done", "Thôn Tây",
         "#age:6-10", "#sex:girl", "#skip", "#count:1",
         "Cháu bị đánh nhiều lần, hàng xóm nghe tiếng khóc.", "#photos:done",
         "#contact:anonymous", "#confirm")
OFFICER, POLICE, BASE = "9100000000000000001", "9100000000000000002", 9200000000000000000
UNLIMITED = 10**9
ARRIVAL_GAP, THINK = 0.3, 1.0
CODE = re.compile(r"VT-\d{4}-\d{4}")


def commune_file(tmp: Path) -> Path:
    raw = DEMO_CONFIG.read_text(encoding="utf-8")
    for key, user in (("officer", OFFICER), ("police", POLICE)):
        raw = raw.replace(f'key = "{key}"\n', f'key = "{key}"\nzalo_id = "{user}"\n', 1)
    tomllib.loads(raw)
    path = tmp / "commune.toml"
    path.write_text(raw, encoding="utf-8")
    return path


class BotProcess:
    """`safechild serve` with the ZALO_* settings pointing at the fake."""

    def __init__(self, fake: FakeZalo, tmp: Path, name: str, database_url: str,
                 refresh: str) -> None:
        self.port = free_port()
        env = {**os.environ, **fake.env(refresh), "SAFECHILD_PORT": str(self.port),
               "SAFECHILD_DB": str(tmp / f"{name}.db"),
               "SAFECHILD_CONFIG": str(commune_file(tmp))}
        env.pop("SAFECHILD_FAKE_CLOCK", None)
        env.pop("DATABASE_URL", None)
        if database_url:
            env["DATABASE_URL"] = database_url
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> BotProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "serve", env=self.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        async with aiohttp.ClientSession() as http:
            for _ in range(400):
                if self.proc.returncode is not None:
                    raise RuntimeError("the bot did not start")
                try:
                    async with http.get(f"{self.base}/healthz") as r:
                        if r.status == 200:
                            return self
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError("the bot did not start")

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


class Bots:
    """N bot processes on one database, started one after another (the first stores the
    OA's tokens), the fake's events spread over their webhooks in turn."""

    def __init__(self, fake: FakeZalo, tmp: Path, name: str, database_url: str,
                 processes: int) -> None:
        _, refresh = fake.authorise()
        self.fake = fake
        self.procs = [BotProcess(fake, tmp, name, database_url, refresh)
                      for _ in range(processes)]

    async def __aenter__(self) -> Bots:
        # One that fails to start stops those already running.
        async with contextlib.AsyncExitStack() as stack:
            for proc in self.procs:
                await stack.enter_async_context(proc)
            self._running = stack.pop_all()
        self.fake.users.webhook_urls = [f"{p.base}/zalo/webhook" for p in self.procs]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._running.aclose()


class Inbox:
    """Messages the fake accepted, per user, counted incrementally (rescanning them all
    every few milliseconds would cost this process the time it measures)."""

    def __init__(self, fake: FakeZalo) -> None:
        self.fake, self.seen = fake, 0
        self.counts: dict[str, int] = {}
        self.first_at: dict[str, list[float]] = {}
        self.codes: set[str] = set()
        self.code_messages = 0
        self.alerts = 0

    def update(self) -> None:
        new = self.fake.sent[self.seen:]
        self.seen += len(new)
        now = time.perf_counter()
        for m in new:
            self.counts[m.user_id] = self.counts.get(m.user_id, 0) + 1
            self.first_at.setdefault(m.user_id, []).append(now)
            if m.user_id == OFFICER and "#case:ack" in " ".join(m.payloads):
                self.alerts += 1
            elif CODE.search(m.text) and m.user_id not in (OFFICER, POLICE):
                self.codes.add(m.user_id)
                self.code_messages += 1

    def duplicates(self) -> int:
        """Case codes or officer alerts beyond one per reporter."""
        self.update()
        return (self.code_messages - len(self.codes)) + max(0, self.alerts - len(self.codes))


def summary(acks: list[float]) -> dict[str, float]:
    return {"ack_p50_ms": statistics.median(acks), "ack_p95_ms": percentile(acks, 0.95),
            "ack_p99_ms": percentile(acks, 0.99), "ack_max_ms": max(acks)}


async def post(fake: FakeZalo, user: str, text: str, acks: list[float]) -> None:
    started = time.perf_counter()
    status = await fake.users.send_text(user, text)
    acks.append((time.perf_counter() - started) * 1000)
    if status != 200:
        raise RuntimeError(f"webhook answered {status}")


async def part_burst(tmp: Path, users: int, database_url: str,
                     processes: int) -> dict[str, Any]:
    fake = FakeZalo(per_minute=UNLIMITED)
    await fake.start()
    inbox = Inbox(fake)
    acks: list[float] = []
    async with Bots(fake, tmp, "burst", database_url, processes):

        async def person(i: int) -> None:
            for text in STEPS:
                await post(fake, str(BASE + i), text, acks)

        started = time.perf_counter()
        await asyncio.gather(*(person(i) for i in range(users)))
        posted = time.perf_counter() - started

        def done() -> bool:
            inbox.update()
            return len(inbox.codes) >= users and inbox.alerts >= users

        await until(done, 900, 0.02)
        elapsed = time.perf_counter() - started
        await asyncio.sleep(2)  # time for a duplicate to show
    await fake.stop()
    events = users * len(STEPS)
    return {"events": events, **summary(acks), "accepted_per_s": events / posted,
            "handled_per_s": events / elapsed, "seconds": elapsed,
            "messages_out": len(fake.sent), "duplicates": inbox.duplicates()}


async def part_paced(tmp: Path, users: int, gap: float, think: float,
                     database_url: str, processes: int) -> dict[str, Any]:
    fake = FakeZalo()  # Zalo's 4000 calls a minute, enforced
    await fake.start()
    inbox = Inbox(fake)
    acks: list[float] = []
    answers: list[float] = []
    async with Bots(fake, tmp, "paced", database_url, processes):

        async def person(i: int) -> None:
            await asyncio.sleep(i * gap)
            user = str(BASE + i)
            for text in STEPS:
                before = inbox.counts.get(user, 0)
                sent_at = time.perf_counter()
                await post(fake, user, text, acks)

                def answered(user: str = user, before: int = before) -> bool:
                    inbox.update()
                    return inbox.counts.get(user, 0) > before

                await until(answered, 120, 0.02)
                answers.append((inbox.first_at[user][before] - sent_at) * 1000)
                await asyncio.sleep(think)

        started = time.perf_counter()
        await asyncio.gather(*(person(i) for i in range(users)))
        elapsed = time.perf_counter() - started
        await asyncio.sleep(2)  # time for a duplicate to show
    await fake.stop()
    return {"events": len(acks), **summary(acks),
            "answer_p50_ms": statistics.median(answers),
            "answer_p95_ms": percentile(answers, 0.95), "seconds": elapsed,
            "rate_limited": fake.rejected_rate, "duplicates": inbox.duplicates()}


async def run(part: str, users: int, gap: float, think: float, database_url: str,
              postgres: bool, processes: int) -> None:
    server = PostgresServer() if postgres else None
    if server is not None:
        use_test_keys()

    def database() -> str:
        """Each part starts on an empty database."""
        return server.create_database() if server is not None else database_url

    parts: dict[str, Callable[[Path], Awaitable[dict[str, Any]]]] = {
        "burst": lambda tmp: part_burst(tmp, users, database(), processes),
        "paced": lambda tmp: part_paced(tmp, users, gap, think, database(), processes),
    }
    backend = "PostgreSQL" if database_url or postgres else "SQLite WAL"
    print(f"SafeChild Zalo benchmark (safechild serve against the fake Zalo on 127.0.0.1, "
          f"{backend}, {processes} bot process(es), {os.cpu_count()} CPUs)")
    try:
        with tempfile.TemporaryDirectory() as tmpdir:
            for name, fn in parts.items():
                if part not in ("all", name):
                    continue
                tmp = Path(tmpdir) / name
                tmp.mkdir()
                result = await fn(tmp)
                shown = "  ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                                  for k, v in result.items())
                print(f"  {name:<6} users={users}  {shown}", flush=True)
    finally:
        if server is not None:
            server.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", default="all", choices=("all", "burst", "paced"))
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--gap", type=float, default=ARRIVAL_GAP,
                        help="paced: seconds between people's arrivals")
    parser.add_argument("--think", type=float, default=THINK,
                        help="paced: seconds a person takes before each tap")
    parser.add_argument("--database-url", default="",
                        help="run the bot on this database instead of a fresh SQLite file")
    parser.add_argument("--postgres", action="store_true",
                        help="start a throwaway PostgreSQL server on loopback for the run")
    parser.add_argument("--processes", type=int, default=1,
                        help="bot processes sharing the database and the webhook's events")
    args = parser.parse_args()
    asyncio.run(run(args.part, args.users, args.gap, args.think, args.database_url,
                    args.postgres, args.processes))


if __name__ == "__main__":
    main()
