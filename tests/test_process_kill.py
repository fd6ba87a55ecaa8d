"""Two real `safechild serve` processes on one PostgreSQL database: SIGKILL the one that
holds claims in the middle of its sends, and the other delivers them within seconds, not
after the minute their leases would last (issue 12, defect 3)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bot.domain.delivery import OutboxMessage
from storage import outbox
from storage.db import Database
from tests.support import pg
from tests.support.database import rows
from tests.support.fake_telegram import TOKEN, FakeTelegram
from tests.support.processes import BotProcess, config_with_telegram, free_port
from tests.support.waiting import eventually

OFFICER, POLICE = 6002, 6003
CITIZENS = list(range(7001, 7007))


async def held_by(database: Database) -> dict[str, list[int]]:
    """Claimed outbox rows by the port of the process holding them."""
    names = {r.id: r.name for r in await rows(database, "processes")}
    claims: dict[str, list[int]] = {}
    for row in await rows(database, "outbox"):
        if row.lease_owner:
            process_id = row.lease_owner.split("/", 1)[0]
            port = names.get(process_id, "gone:?").rsplit(":", 1)[1]
            claims.setdefault(port, []).append(row.id)
    return claims


async def message(database: Database, outbox_id: int) -> OutboxMessage | None:
    async with database.read() as tx:
        return await outbox.message(tx, outbox_id)


async def test_sigkill_one_of_two_processes_and_the_other_delivers_its_rows(
        tmp_path: Path, pg_server: pg.PostgresServer | None) -> None:
    if pg_server is None:
        pytest.skip("PostgreSQL is not installed here")
    url = pg_server.create_database()
    fake = FakeTelegram(per_chat_burst=100)
    fake.hang_seconds = 120
    await fake.start()
    for user in (OFFICER, POLICE, *CITIZENS):
        fake.add_user(user)
    env = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": fake.base_url,
           "SAFECHILD_CONFIG": str(config_with_telegram(tmp_path, OFFICER, POLICE)),
           "SAFECHILD_KEYS": pg.TEST_KEYS}
    procs = {str(port): BotProcess(tmp_path / "unused.db", port, env, database_url=url)
             for port in (free_port(), free_port())}
    database = await Database.open(url, pg.TEST_KEYS)
    try:
        for proc in procs.values():
            await proc.start(None)  # the real clock: a lease lasts a real minute
        # Every send hangs (a connection that died silently): the replies to six citizens
        # are claimed and held by whichever process took their updates.
        fake.fail_next.extend(["timeout"] * len(CITIZENS))
        for user in CITIZENS:
            fake.user_text(user, "/start")
        await eventually(lambda: fake.calls.count("sendMessage:timeout") == len(CITIZENS))
        claims = await held_by(database)
        port, victims = max(claims.items(), key=lambda item: len(item[1]))
        assert victims and not fake.sent

        procs[port].kill()
        killed_at = time.monotonic()

        async def delivered() -> bool:
            for outbox_id in victims:
                row = await message(database, outbox_id)
                if row is None or row.status != "sent":
                    return False
            return True

        await eventually(delivered, seconds=15)
        took = time.monotonic() - killed_at
        assert took < 10, f"the survivor took {took:.1f} s"
        print(f"delivered {len(victims)} rows of the killed process {took:.2f} s after")
        survivor = next(p for key, p in procs.items() if key != port)
        assert survivor.proc is not None and survivor.proc.poll() is None
        # Each reply went once: the hung sends were never carried out.
        for user in CITIZENS:
            await eventually(lambda user=user: len(fake.inbox(user)) >= 1, seconds=15)
        await asyncio.sleep(0.5)
        assert sorted(len(fake.inbox(u)) for u in CITIZENS) == [1] * len(CITIZENS)
    finally:
        for proc in procs.values():
            proc.stop()
        await database.close()
        await fake.stop()
