"""`safechild serve` with Telegram, Zalo and the web simulator in one real process: a citizen
reports on Zalo through the webhook, the officers get the alerts on Telegram; SIGKILL while
Zalo is down, and after the restart every answer arrives once."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

import aiohttp

from bot import i18n
from tests.support import START
from tests.support.fake_telegram import TOKEN, FakeTelegram
from tests.support.fake_zalo import FakeZalo
from tests.support.processes import BotProcess, config_with_telegram, free_port
from tests.support.waiting import eventually

CITIZEN = "8801000000000000001"
OFFICER, POLICE = 6102, 6103
REPORT = ("/start", "#menu:report", "#danger:no", "#type:violence", "#types:done", "Thôn Tây",
          "#age:6-10", "#sex:boy", "#skip", "#count:1",
          "Bố đánh bé bằng roi, bé chạy sang nhà hàng xóm.", "#photos:done",
          "#contact:anonymous", "#confirm")


def pending(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("select count(*) from outbox where status = 'pending' "
                                "and channel = 'zalo'").fetchone()[0])


async def test_three_channels_in_one_process_and_a_sigkill(tmp_path: Path) -> None:
    # The fake's clock stands where the bot's demo clock starts, so signed events are fresh.
    zalo = FakeZalo(now=lambda: START)
    telegram = FakeTelegram(per_chat_burst=100)
    await zalo.start()
    await telegram.start()
    for user in (OFFICER, POLICE):
        telegram.add_user(user)
    _, refresh = zalo.authorise()
    port = free_port()
    env = {**zalo.env(refresh), "TELEGRAM_BOT_TOKEN": TOKEN,
           "TELEGRAM_API_BASE_URL": telegram.base_url,
           "SAFECHILD_CONFIG": str(config_with_telegram(tmp_path, OFFICER, POLICE)),
           "SAFECHILD_SIMULATOR": "1"}  # with real channels, only when asked for
    proc = BotProcess(tmp_path / "bot.db", port, env)
    zalo.users.webhook_url = f"{proc.base}/zalo/webhook"
    try:
        await proc.start(START.isoformat())
        for text in REPORT:
            assert await zalo.users.send_text(CITIZEN, text) == 200
            await asyncio.sleep(0.05)
        await eventually(lambda: any("VT-2026-0001" in m.text for m in zalo.sent_to(CITIZEN)))
        await eventually(lambda: all(any("case:ack:1" in m.callback_data
                                    for m in telegram.inbox(u)) for u in (OFFICER, POLICE)))
        # The simulator runs in the same process.
        async with aiohttp.ClientSession() as http, http.get(f"{proc.base}/api/phones") as r:
            assert r.status == 200 and (await r.json())["phones"]
        # A bad signature is refused by the real server too.
        assert await zalo.users.post(zalo.users.text_event(CITIZEN, "/help"), key="x") == 401

        # Zalo goes down; the citizen asks for help; the process is killed meanwhile.
        zalo.fail_next.extend([502] * 10_000)
        assert await zalo.users.send_text(CITIZEN, "/help") == 200
        await eventually(lambda: pending(proc.db) == 1)
        proc.kill()
        # A send the dead process had in flight is answered (502) before Zalo is back:
        # carried out after the kill, it would be the one resend no channel without
        # idempotency can rule out, not what this test is about.
        await asyncio.sleep(0.3)
        zalo.fail_next.clear()
        # Five minutes later: the failed send is due for its retry.
        await proc.start((START + timedelta(minutes=5)).isoformat())
        prompt = i18n.t("help.prompt", "vi")
        await eventually(lambda: any(m.text == prompt for m in zalo.sent_to(CITIZEN)), 30)
        await asyncio.sleep(0.5)  # a duplicate would show up now
        assert len([m for m in zalo.sent_to(CITIZEN) if m.text == prompt]) == 1
        assert len([m for m in zalo.sent_to(CITIZEN) if "VT-2026-0001" in m.text]) == 1
    finally:
        proc.stop()
        await zalo.stop()
        await telegram.stop()
