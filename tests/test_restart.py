"""Restart: SIGKILL the real process mid-report with deadlines pending, start it again."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from tests.support import START
from tests.support.processes import BotProcess, free_port
from tests.support.simulator import Simulator
from tests.support.stories import EMERGENCY_REPORT


@pytest.fixture
def bot_process(tmp_path: Path) -> Iterator[BotProcess]:
    proc = BotProcess(tmp_path / "restart.db", free_port())
    yield proc
    proc.stop()


async def escalations(sim: Simulator, key: str) -> int:
    msgs = await sim[key].inbox(all_=True)
    return sum("alert.nobody_took" in m["ids"] or "alert.escalated" in m["ids"] for m in msgs)


async def test_sigkill_mid_report_and_pending_deadline(bot_process: BotProcess) -> None:
    await bot_process.start(START.isoformat())
    async with aiohttp.ClientSession() as http:
        sim = Simulator(None, http, bot_process.base)  # type: ignore[arg-type]
        for kind, value in EMERGENCY_REPORT:
            phone = sim["citizen"]
            await (phone.text(value) if kind == "text" else phone.tap(value))
        # A collaborator is half-way through another report when the process dies.
        mate = sim["collaborator"]
        for value in ("menu:report", "danger:no", "type:abandonment", "types:done", "age:0-5",
                      "sex:boy", "skip", "count:2"):
            await mate.tap(value)
        before = await mate.inbox(all_=True)
        assert before[-1]["ids"] == ["report.description.prompt"]
        assert await escalations(sim, "officer2") == 0

    bot_process.kill()
    # 20 minutes later: the 15-minute acknowledgement deadline passed while we were down.
    await bot_process.start((START + timedelta(minutes=20)).isoformat())
    async with aiohttp.ClientSession() as http:
        sim = Simulator(None, http, bot_process.base)  # type: ignore[arg-type]
        for _ in range(100):
            if await escalations(sim, "officer2"):
                break
            await asyncio.sleep(0.05)
        assert await escalations(sim, "officer2") == 1
        # The draft resumes where it was: the next answer is the description.
        mate = sim["collaborator"]
        await mate.inbox()
        await mate.text("Hai anh em bé bị bỏ lại một mình ba ngày nay.")
        assert (await mate.inbox())[-1]["ids"] == ["report.photos.prompt"]
        # A little more time: the missed deadline fired once, not once per restart or sweep.
        await sim.advance(1)
        assert await escalations(sim, "officer2") == 1
        assert await escalations(sim, "police_chief") == 1
    bot_process.stop()
    # And a third start at the same moment repeats nothing.
    await bot_process.start((START + timedelta(minutes=21)).isoformat())
    async with aiohttp.ClientSession() as http:
        sim = Simulator(None, http, bot_process.base)  # type: ignore[arg-type]
        await asyncio.sleep(0.3)
        assert await escalations(sim, "officer2") == 1
