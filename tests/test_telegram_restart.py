"""SIGKILL the real bot process while alerts wait in the outbox; after restart they reach
Telegram, none twice."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from bot import i18n
from tests.support import START
from tests.support.fake_telegram import TOKEN, FakeTelegram, Sent
from tests.support.processes import BotProcess, config_with_telegram, free_port
from tests.support.stories import EMERGENCY_REPORT
from tests.support.waiting import eventually

CITIZEN, OFFICER, POLICE = 6001, 6002, 6003


def pending_alerts(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        row = conn.execute("select count(*) from outbox where kind = 'alert' "
                           "and status = 'pending'").fetchone()
    return int(row[0])


def alerts_failed_once_and_nothing_in_flight(db: Path) -> bool:
    """Both alerts were tried and refused, what the reporter told after them waits behind
    them, and no send is under way. Killed earlier, a request already on its way would
    reach Telegram after the outage ends, with nobody left to record it: the one resend no
    outbox can prevent (Telegram has no idempotency key). Killed before the reporter's last
    answers were handled, the restart (five minutes on) would find their quiet timer due
    and send what they had told so far, then the rest: two messages, rightly."""
    with sqlite3.connect(db) as conn:
        failed = conn.execute("select count(*) from outbox where kind = 'alert' and "
                              "status = 'pending' and attempts >= 1 and last_error is not null"
                              ).fetchone()[0]
        told = conn.execute("select count(*) from outbox where kind = 'additions'"
                            ).fetchone()[0]
        leased = conn.execute("select count(*) from outbox where lease_owner is not null"
                              ).fetchone()[0]
    return failed == 2 and told == 2 and leased == 0


def outbox_rows(db: Path, address: int) -> list[tuple[object, ...]]:
    """What the database says was queued for a chat: shown when a check fails."""
    with sqlite3.connect(db) as conn:
        return conn.execute("select id, kind, status, attempts, dedupe_key, external_ref "
                            "from outbox where address = ? order by id",
                            (str(address),)).fetchall()


async def test_alerts_queued_at_sigkill_arrive_once_after_restart(tmp_path: Path) -> None:
    fake = FakeTelegram(per_chat_burst=100)
    await fake.start()
    for user in (CITIZEN, OFFICER, POLICE):
        fake.add_user(user)
    env = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": fake.base_url,
           "SAFECHILD_CONFIG": str(config_with_telegram(tmp_path, OFFICER, POLICE))}
    proc = BotProcess(tmp_path / "bot.db", free_port(), env)
    try:
        # Telegram is down for sending: every answer and alert stays in the outbox.
        fake.fail_next.extend([502] * 10_000)
        await proc.start(START.isoformat())
        # Nothing reached the citizen, so their presses are on a message we never saw
        # arrive; the bot only reads the button data, as with any press.
        shown = Sent(CITIZEN, 1, "…", None)
        for kind, value in EMERGENCY_REPORT:
            if kind == "text":
                fake.user_text(CITIZEN, value)
            else:
                fake.forge(CITIZEN, value, shown)
        await eventually(lambda: alerts_failed_once_and_nothing_in_flight(proc.db))
        proc.kill()

        fake.fail_next.clear()
        # Five minutes later: failed sends are due for their retry, no reminder is due yet.
        await proc.start((START + timedelta(minutes=5)).isoformat())
        await eventually(lambda: all(
            any("VT-2026-0001" in m.text for m in fake.inbox(u)) for u in (OFFICER, POLICE)))
        await asyncio.sleep(0.5)  # give a duplicate the chance to show up
        more = i18n.t("alert.additions", "vi", code="VT-2026-0001")
        for user in (OFFICER, POLICE):
            # The alert, and what the reporter told after it: each once.
            alerts = [m for m in fake.inbox(user) if "case:ack:1" in m.callback_data
                      and more not in m.text]
            added = [m for m in fake.inbox(user) if more in m.text]
            assert len(added) == 1, user
            if len(alerts) != 1:  # spelled out in full: pytest would shorten an assert's
                pytest.fail(f"{len(alerts)} alerts for {user}: "  # message
                            f"{[(m.message_id, round(m.at, 3)) for m in alerts]}\n"
                            f"outbox: {outbox_rows(proc.db, user)}\n"
                            f"last calls: {fake.calls[-40:]}", pytrace=False)
        assert pending_alerts(proc.db) == 0
    finally:
        proc.stop()
        await fake.stop()
