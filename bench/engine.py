"""Push simulated reports through the engine on SQLite and print the figures.

    .venv/bin/python -m bench.engine [--reports 300] [--concurrency 20]

Each reporter walks the whole report flow as InboundEvents (no HTTP), many at once. The
figures: reports and events per second, p50/p95 time from confirm to the alert rows being
committed in the outbox, and how fast the outbox worker drains to the web channel.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from bot.app import Engine, build_engine
from bot.clock import SystemClock
from bot.config import DEMO_CONFIG, load_commune
from bot.flows.vocabulary import Input
from bot.handlers.web import WebChannel
from bot.services.conversation import InboundEvent
from storage.models import Case, Outbox

STEPS: list[Input] = [
    Input("command", command="start"), Input("choice", choice="menu:report"),
    Input("choice", choice="danger:no"), Input("choice", choice="type:violence"),
    Input("choice", choice="types:done"), Input("choice", choice="village:tay"),
    Input("choice", choice="age:6-10"), Input("choice", choice="sex:girl"),
    Input("choice", choice="skip"), Input("choice", choice="count:1"),
    Input("text", text="Cháu bị bố đánh nhiều lần, hàng xóm nghe thấy tiếng khóc."),
    Input("choice", choice="photos:done"), Input("choice", choice="contact:anonymous"),
]
CONFIRM = Input("choice", choice="confirm")


async def reporter(engine: Engine, sender: str, latencies: list[float]) -> None:
    for n, inp in enumerate(STEPS):
        await engine.conversations.handle(InboundEvent("web", sender, inp, key=f"{sender}:{n}"))
    started = time.perf_counter()
    await engine.conversations.handle(InboundEvent("web", sender, CONFIRM, key=f"{sender}:c"))
    latencies.append(time.perf_counter() - started)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(reports: int, concurrency: int) -> int:
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        clock = SystemClock()
        engine = await build_engine(url, load_commune(DEMO_CONFIG), clock,
                                    {"web": WebChannel(clock)})
        latencies: list[float] = []
        queue: asyncio.Queue[str] = asyncio.Queue()
        for i in range(reports):
            queue.put_nowait(f"bench-{i}")

        async def worker() -> None:
            while not queue.empty():
                await reporter(engine, queue.get_nowait(), latencies)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started

        async with engine.sessions() as s:
            cases = await s.scalar(select(func.count()).select_from(Case))
            alerts = await s.scalar(select(func.count()).select_from(Outbox)
                                    .where(Outbox.kind == "alert"))
            rows = await s.scalar(select(func.count()).select_from(Outbox))
        drain_start = time.perf_counter()
        while await engine.outbox.deliver_due():
            pass
        drain = time.perf_counter() - drain_start
        await engine.close()

    events = reports * (len(STEPS) + 1)
    ok = cases == reports and alerts == reports * 2
    print(f"SafeChild engine benchmark (Python {sys.version.split()[0]}, SQLite file, WAL)")
    print(f"  reporters                 {reports} ({concurrency} at once)")
    print(f"  reports/s                 {reports / elapsed:8.1f}")
    print(f"  inbound events/s          {events / elapsed:8.1f}")
    print(f"  confirm->outbox p50 ms    {percentile(latencies, 0.5) * 1000:8.1f}")
    print(f"  confirm->outbox p95 ms    {percentile(latencies, 0.95) * 1000:8.1f}")
    print(f"  outbox drain rows/s       {(rows or 0) / drain:8.1f} ({rows} rows)")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS MiB              {rss:8.1f}")
    print(f"  cases {cases}, alert rows {alerts}: {'OK' if ok else 'MISSING ROWS'}")
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(run(args.reports, args.concurrency)))


if __name__ == "__main__":
    main()
