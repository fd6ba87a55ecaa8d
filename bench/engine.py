"""Push simulated reports through the engine on SQLite and print the figures.

    .venv/bin/python -m bench.engine [--reports 300] [--concurrency 20] [--no-drain]

Each of N distinct reporters (web senders `bench-<i>`, made citizens on first contact) walks
the whole report flow as InboundEvents straight into ConversationService.handle (no HTTP),
C of them at once. Figures: reports and inbound events per second, p50/p95 from sending
"confirm" to the case's alert rows being committed in the outbox (the handle() call for
confirm returning: they share one transaction), then how fast the real outbox worker drains
every row to the web channel. Afterwards the database is checked: every reporter has exactly
one case and every case has its alert rows; the exit status is non-zero otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import percentile
from bot.app import App, Setup, build_app
from bot.clock import SystemClock
from bot.config import DEMO_CONFIG, load_commune
from bot.domain.messages import Input
from bot.handlers.simulator import SimulatorPlugin
from bot.services.conversation import InboundEvent
from tests.support.database import count, rows

# The whole report flow, as the simulator sends it (see /tmp/smoke.py); "confirm" is last.
STEPS: tuple[Input, ...] = (
    Input("command", command="start"),
    Input("choice", choice="menu:report"),
    Input("choice", choice="danger:no"),
    Input("choice", choice="type:sexual_abuse"),
    Input("choice", choice="types:done"),
    Input("choice", choice="village:tay"),
    Input("choice", choice="age:6-10"),
    Input("choice", choice="sex:girl"),
    Input("choice", choice="skip"),
    Input("choice", choice="count:1"),
    Input("text", text="Bé bị hàng xóm sàm sỡ nhiều lần"),
    Input("choice", choice="photos:done"),
    Input("choice", choice="contact:anonymous"),
    Input("choice", choice="confirm"),
)
POLL = 0.02  # seconds between outbox checks while draining


class BenchFailure(Exception):
    """The run did not do what it should (missing cases or alerts, undelivered rows)."""


@dataclass
class Figures:
    reports: int
    concurrency: int
    url: str
    elapsed: float = 0.0
    events: int = 0
    event_latencies: list[float] = field(default_factory=list)
    confirm_latencies: list[float] = field(default_factory=list)
    cases: int = 0
    alert_rows: int = 0
    outbox_rows: int = 0
    drain: float | None = None
    failures: list[str] = field(default_factory=list)


async def walk(engine: App, sender: str, figures: Figures) -> None:
    """One reporter, start to confirm; each step waits for the previous one, like a phone."""
    for n, inp in enumerate(STEPS):
        event = InboundEvent("web", sender, inp, key=f"bench:{sender}:{n}")
        started = time.perf_counter()
        handled = await engine.conversations.handle(event)
        took = time.perf_counter() - started
        figures.events += 1
        figures.event_latencies.append(took)
        if inp.choice == "confirm":
            figures.confirm_latencies.append(took)
        if not handled:
            figures.failures.append(f"{sender}: step {n} taken for a duplicate")


async def report_phase(engine: App, figures: Figures) -> None:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in range(figures.reports):
        queue.put_nowait(f"bench-{i}")

    async def reporter_slot() -> None:
        while True:
            try:
                sender = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await walk(engine, sender, figures)

    started = time.perf_counter()
    await asyncio.gather(*(reporter_slot() for _ in range(figures.concurrency)))
    figures.elapsed = time.perf_counter() - started


async def verify(engine: App, figures: Figures) -> None:
    """Every bench reporter has exactly one case, and every case has its alert rows."""
    senders = {i.person_id: i.external_id for i in await rows(engine, "identities",
                                                                channel="web")
               if i.external_id.startswith("bench-")}
    alerts: dict[int, int] = {}
    for message in await rows(engine, "outbox", kind="alert"):
        alerts[message.case_id] = alerts.get(message.case_id, 0) + 1
    figures.outbox_rows = await count(engine, "outbox")
    cases_of: dict[str, list[int]] = {}
    for case in await rows(engine, "cases"):
        if case.reporter_id in senders:
            cases_of.setdefault(senders[case.reporter_id], []).append(alerts.get(case.id, 0))
    figures.cases = sum(len(v) for v in cases_of.values())
    figures.alert_rows = sum(sum(v) for v in cases_of.values())
    for i in range(figures.reports):
        sender = f"bench-{i}"
        found = cases_of.get(sender, [])
        if len(found) != 1:
            figures.failures.append(f"{sender}: {len(found)} cases, expected 1")
        elif found[0] < 1:
            figures.failures.append(f"{sender}: case has no alert rows in the outbox")


async def drain_phase(engine: App, figures: Figures, limit: float) -> None:
    """Start the real workers and time them until no outbox row is pending any more."""
    started = time.perf_counter()
    await engine.start()
    engine.wake()
    while True:
        left = await count(engine, "outbox", status="pending")
        if left == 0:
            break
        if time.perf_counter() - started > limit:
            figures.failures.append(f"outbox drain: {left} rows still pending after {limit}s")
            return
        await asyncio.sleep(POLL)
    figures.drain = time.perf_counter() - started
    by_status: dict[str, int] = {}
    for message in await rows(engine, "outbox"):
        by_status[message.status] = by_status.get(message.status, 0) + 1
    unsent = {k: v for k, v in by_status.items() if k != "sent"}
    if unsent:
        figures.failures.append(f"outbox rows not sent: {unsent}")


def peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def print_table(figures: Figures) -> None:
    ms = 1000.0
    lines: list[tuple[str, str]] = [
        ("python", sys.version.split()[0]),
        ("database", f"{figures.url.split(':', 1)[0]} (temp file, WAL)"),
        ("reports x concurrency", f"{figures.reports} x {figures.concurrency}"),
        ("inbound events", f"{figures.events} ({len(STEPS)} per report)"),
        ("wall time s", f"{figures.elapsed:.2f}"),
        ("reports/s", f"{figures.reports / figures.elapsed:.1f}"),
        ("events/s", f"{figures.events / figures.elapsed:.1f}"),
        ("event p50 / p95 ms", f"{percentile(figures.event_latencies, 0.5) * ms:.1f} / "
                               f"{percentile(figures.event_latencies, 0.95) * ms:.1f}"),
        ("confirm->outbox p50 ms", f"{percentile(figures.confirm_latencies, 0.5) * ms:.1f}"),
        ("confirm->outbox p95 ms", f"{percentile(figures.confirm_latencies, 0.95) * ms:.1f}"),
        ("cases / alert rows", f"{figures.cases} / {figures.alert_rows}"),
    ]
    if figures.drain is not None:
        lines += [
            ("outbox rows", str(figures.outbox_rows)),
            ("outbox drain s", f"{figures.drain:.2f}"),
            ("outbox drain rows/s", f"{figures.outbox_rows / figures.drain:.1f}"),
        ]
    lines.append(("peak RSS MiB", f"{peak_rss_mib():.1f}"))
    width = max(len(k) for k, _ in lines)
    print("SafeChild engine benchmark")
    for key, value in lines:
        print(f"  {key:<{width}}  {value}")


async def run(reports: int, concurrency: int, drain: bool, limit: float) -> int:
    with tempfile.TemporaryDirectory(prefix="safechild-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        figures = Figures(reports, concurrency, url)
        clock = SystemClock()
        engine = await build_app(Setup(url, load_commune(DEMO_CONFIG), clock),
                                 [SimulatorPlugin(serve_page=False)])
        try:
            async with asyncio.timeout(limit):
                await report_phase(engine, figures)
            await verify(engine, figures)
            if drain:
                await drain_phase(engine, figures, limit)
        except TimeoutError:
            print(f"FAILED: reports not done within {limit:.0f}s "
                  f"({len(figures.confirm_latencies)} of {reports} confirmed)", file=sys.stderr)
            return 2
        finally:
            await engine.close()
    print_table(figures)
    if figures.failures:
        print(f"FAILED: {len(figures.failures)} problem(s)", file=sys.stderr)
        for problem in figures.failures[:20]:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"  check: OK, {reports} cases, each with its alert rows")
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=300, help="reporters (default 300)")
    parser.add_argument("--concurrency", type=int, default=20,
                        help="reporters in flight at once (default 20)")
    parser.add_argument("--no-drain", dest="drain", action="store_false",
                        help="skip the outbox delivery measurement")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds allowed for each phase (default 600)")
    args = parser.parse_args(argv)
    if args.reports < 1 or args.concurrency < 1:
        parser.error("--reports and --concurrency must be positive")
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger().setLevel(logging.WARNING)
    raise SystemExit(asyncio.run(run(args.reports, args.concurrency, args.drain, args.timeout)))


if __name__ == "__main__":
    main()
