"""A year of a commune, purged by the retention job: what it purged and how long it took.

    .venv/bin/python -m bench.retention [--cases 1100] [--messages 20] [--postgres]

The demo commune's process on a fresh database (SQLite, or a throwaway PostgreSQL server).
Written straight into its tables: a year of closed cases (`--cases`, spread over 2026,
each closed a week after it came in) with a description, the child's name, the
reporter's phone, measures, a closing note, two photos and a close request; for each,
`--messages` outbox messages sent with their words, one conversation left half-way
through a report. Then the process's own PruningWorker, two
years and a day after the last close, runs until it has nothing left (as the scheduler
runs it: again at once while a batch is full), and once more, which must purge nothing.
Printed: the rows per kind, the batches, the time, and whether the year's statistics and
the structured fields came out the same.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.app import Setup, build_app
from bot.clock import FakeClock
from bot.config import DEMO_CONFIG, load_commune
from bot.domain.commune import Retention
from bot.handlers.simulator import SimulatorPlugin
from bot.workers.pruning import PruningWorker
from storage import statistics
from tests.support import START
from tests.support.database import insert_rows, raw_texts, read, rows
from tests.support.pg import PostgresServer
from tests.support.workers import worker_of

YEAR = datetime(2026, 1, 1, tzinfo=UTC)
STRUCTURED = ("code", "types", "urgency", "village_id", "age_band", "sex", "outcome",
              "status", "created_at", "closed_at", "risk", "setting", "confirmed_form")


async def year_statistics(app: Any, commune_id: int) -> list[tuple[Any, ...]]:
    async def counted(tx: Any) -> list[tuple[Any, ...]]:
        found: list[tuple[Any, ...]] = []
        async for chunk in statistics.case_counts(tx, [commune_id], YEAR,
                                                  YEAR.replace(year=2027)):
            found.extend(tuple(r) for r in chunk)
        return sorted(found, key=repr)

    return await read(app, counted)


async def populate(app: Any, cases: int, messages: int) -> int:
    (citizen,) = await rows(app, "people", key="citizen")
    villages = [v.id for v in await rows(app, "villages")]
    commune_id = int(citizen.commune_id)
    step = timedelta(days=365) / cases
    case_rows, people_rows = [], []
    for n in range(cases):
        opened = YEAR + step * n
        case_rows.append({
            "commune_id": commune_id, "code": f"VT-2026-{n + 1:04d}",
            "types": ["violence", "neglect", "sexual_abuse"][n % 3],
            "urgency": ["URGENT", "STANDARD", "EMERGENCY"][n % 3], "danger": "no",
            "police_case": n % 2 == 0, "status": "closed",
            "village_id": villages[n % len(villages)], "age_band": "6-10",
            "sex": ["girl", "boy"][n % 2], "child_count": 1, "reporter_anonymous": False,
            "reporter_id": citizen.id, "escalation_level": 1, "created_at": opened,
            "acknowledged_at": opened + timedelta(minutes=20),
            "assessed_at": opened + timedelta(hours=5), "closed_at": opened + timedelta(days=7),
            "outcome": "referred", "risk": "high", "setting": "family",
            "confirmed_form": "violence", "version": 5,
            "description": f"Mô tả riêng tư số {n}: bé bị đánh nhiều lần ở nhà.",
            "child_name": f"Tên bé số {n}", "reporter_phone": f"09{n:08d}",
            "measures": f"Biện pháp số {n}", "closing_note": f"Ghi chú đóng số {n}"})
        people_rows.append({"commune_id": commune_id, "key": None, "role": "citizen",
                            "name": "", "language": "vi", "created_at": opened})
    await insert_rows(app, "cases", case_rows)
    await insert_rows(app, "people", people_rows)
    ids = {r.code: int(r.id) for r in await rows(app, "cases")}
    walk_ins = [int(p.id) for p in await rows(app, "people") if p.key is None]
    attachments: list[dict[str, Any]] = []
    requests: list[dict[str, Any]] = []
    outbox: list[dict[str, Any]] = []
    drafts: list[dict[str, Any]] = []
    for n, row in enumerate(case_rows):
        case_id, opened = ids[row["code"]], row["created_at"]
        attachments += [{"case_id": case_id, "kind": "photo", "channel": "zalo",
                         "file_ref": f"photo-{n}-{k}", "created_at": opened}
                        for k in range(2)]
        requests.append({"case_id": case_id, "requested_by": citizen.id,
                         "outcome": "referred", "note": row["closing_note"],
                         "requested_at": row["closed_at"], "decision": "approved"})
        outbox += [{"person_id": citizen.id, "case_id": case_id, "channel": "web",
                    "address": "officer", "kind": "alert" if k == 0 else "team_notice",
                    "payload": {"reply": {"texts": [{"id": "alert.new", "params": {
                        "description": row["description"], "name": row["child_name"]}}]},
                        "language": "vi", "meta": {}},
                    "dedupe_key": f"bench:{n}:{k}", "status": "sent", "attempts": 1,
                    "next_attempt_at": opened, "created_at": opened, "sent_at": opened,
                    "external_ref": f"{n}-{k}"} for k in range(messages)]
        drafts.append({"person_id": walk_ins[n], "version": 3, "updated_at": opened,
                       "state": {"flow": "report", "step": "description",
                                 "data": {"child_name": row["child_name"]}, "history": [],
                                 "parked": None}})
    for table, values in (("attachments", attachments), ("close_requests", requests),
                          ("outbox", outbox), ("conversations", drafts)):
        await insert_rows(app, table, values)
    return commune_id


async def run(cases: int, messages: int, postgres: bool) -> int:
    server = PostgresServer() if postgres else None
    try:
        with tempfile.TemporaryDirectory(prefix="safechild-retention-") as tmp:
            url = (str(server.create_database()) if server is not None
                   else f"sqlite+aiosqlite:///{Path(tmp) / 'year.db'}")
            clock = FakeClock(START)
            app = await build_app(Setup(url, load_commune(DEMO_CONFIG), clock),
                                  [SimulatorPlugin()])
            try:
                return await measure(app, clock, cases, messages,
                                     "PostgreSQL" if postgres else "SQLite WAL")
            finally:
                await app.close()
    finally:
        if server is not None:
            server.close()


async def measure(app: Any, clock: FakeClock, cases: int, messages: int,
                  backend: str) -> int:
    commune_id = await populate(app, cases, messages)
    before = await year_statistics(app, commune_id)
    structured = [tuple(getattr(c, f) for f in STRUCTURED) for c in await rows(app, "cases")]
    worker: PruningWorker = worker_of(app, PruningWorker)
    later = YEAR + timedelta(days=365 + 7 + 731)
    purge_log = logging.getLogger("bot.services.retention")
    handler = _Counts()
    purge_log.addHandler(handler)
    purge_log.setLevel(logging.INFO)
    purge_log.propagate = False
    print(f"A year of a commune ({backend}): {cases} closed cases, {cases * messages} sent "
          f"messages, {cases} drafts left half-way")
    # First what goes within the hour (the messages' words, the drafts), nothing deleted,
    # as the hourly job meets them; then, two years after the closes, the cases' text (and
    # the messages, long past their 30 days).
    hourly = PruningWorker(app.database, Retention(36_500, 36_500, 36_500, 36_500),
                           batch=worker.batch)
    for title, job in (("within the hour", hourly), ("two years on", worker)):
        handler.counts = {}
        runs, started = 0, time.perf_counter()
        while await job.run_due(later):
            runs += 1
        seconds = time.perf_counter() - started
        print(f"  {title}: {runs} runs (batches of {job.batch}) in {seconds:.2f} s: "
              + ", ".join(f"{kind} {n}" for kind, n in sorted(handler.counts.items())))
    again = await PruningWorker(app.database, worker.retention, batch=worker.batch,
                                closed_case_text=worker.closed_case_text).run_due(later)
    purge_log.removeHandler(handler)
    after = await year_statistics(app, commune_id)
    kept = [tuple(getattr(c, f) for f in STRUCTURED) for c in await rows(app, "cases")]
    left = 0
    for table in ("cases", "outbox", "conversations", "close_requests", "attachments"):
        left += sum("Mô tả riêng tư" in t or "Tên bé số" in t or "photo-" in t
                    for t in await raw_texts(app, table))
    print(f"  once more: {again} rows")
    print(f"  statistics of 2026 the same: {after == before}; structured fields the same: "
          f"{kept == structured}; rows still holding the year's words: {left}")
    ok = after == before and kept == structured and left == 0 and again == 0
    return 0 if ok else 1


class _Counts(logging.Handler):
    """Adds up the counts record_purge logs ("purged commune=... kind=n ...")."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        for part in record.getMessage().split()[2:]:
            kind, _, n = part.partition("=")
            self.counts[kind] = self.counts.get(kind, 0) + int(n)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.retention", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1100, help="closed cases (default 1100)")
    parser.add_argument("--messages", type=int, default=20,
                        help="sent messages per case (default 20)")
    parser.add_argument("--postgres", action="store_true",
                        help="a throwaway PostgreSQL server on loopback instead of SQLite")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    raise SystemExit(asyncio.run(run(args.cases, args.messages, args.postgres)))


if __name__ == "__main__":
    main()
