"""What the audit trail's hash chain costs: appends and `verify`, on a fresh database.

    .venv/bin/python -m bench.audit_chain [--rows 100000] [--per-tx 2] [--url URL]

Writes --rows audit rows of one commune, --per-tx to a transaction (the case service audits
one to three rows a turn), from 20 tasks at once, then times `storage.audit.verify` over
the table. SQLite in a temporary file unless --url names a database (PostgreSQL: an empty
database of its own; the rows stay).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from storage import audit, people
from storage.db import Database

AT = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


async def run(url: str, rows: int, per_tx: int) -> None:
    database = await Database.open(url)
    try:
        async with database.transaction() as tx:
            commune = await people.upsert_commune(tx, "bench", "Bench", "BE")
        transactions = rows // per_tx
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(transactions):
            queue.put_nowait(n)

        async def appender() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                async with database.transaction() as tx:
                    for k in range(per_tx):
                        await audit.record(tx, commune_id=commune, actor_id=None,
                                           action="stats_made",
                                           at=AT + timedelta(seconds=n),
                                           detail={"n": n, "k": k, "period": "2026-Q4"})

        started = time.perf_counter()
        await asyncio.gather(*(appender() for _ in range(20)))
        appended = time.perf_counter() - started
        started = time.perf_counter()
        async with database.read() as tx:
            found = await audit.verify(tx)
        verified = time.perf_counter() - started
    finally:
        await database.close()
    print(f"  database                {url.split(':', 1)[0]}")
    print(f"  rows x per transaction  {rows} x {per_tx}")
    print(f"  append s                {appended:.2f} ({transactions / appended:.0f} tx/s)")
    print(f"  verify s                {verified:.2f} ({sum(found.rows.values()) / verified:.0f}"
          f" rows/s)")
    print(f"  verify                  {'OK' if found.ok else found.broken}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--per-tx", type=int, default=2)
    parser.add_argument("--url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.url or f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        asyncio.run(run(url, args.rows, args.per_tx))


if __name__ == "__main__":
    main()
