"""Restart: SIGKILL the real process mid-report with deadlines pending, start it again."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from tests.support import START
from tests.support.simulator import Simulator
from tests.support.stories import EMERGENCY_REPORT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BotProcess:
    def __init__(self, db: Path, port: int, env: dict[str, str] | None = None) -> None:
        self.db, self.port, self.env = db, port, env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self, clock_at: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "SAFECHILD_DB": str(self.db), "SAFECHILD_PORT": str(self.port),
               "SAFECHILD_FAKE_CLOCK": clock_at, **self.env}
        env.pop("DATABASE_URL", None)
        return subprocess.Popen([sys.executable, "-m", "bot.cli", "serve"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    async def start(self, clock_at: str) -> None:
        self.proc = self.spawn(clock_at)
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                if self.proc.poll() is not None:
                    raise RuntimeError(self.proc.stderr.read().decode()[-2000:]
                                       if self.proc.stderr else "bot died")
                try:
                    async with http.get(f"{self.base}/healthz") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError("bot did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def bot_process(tmp_path: Path) -> Iterator[BotProcess]:
    proc = BotProcess(tmp_path / "restart.db", free_port())
    yield proc
    proc.stop()


async def escalations(sim: Simulator, key: str) -> int:
    msgs = await sim[key].inbox(all_=True)
    return sum("alert.escalated" in m["ids"] for m in msgs)


async def test_sigkill_mid_report_and_pending_deadline(bot_process: BotProcess) -> None:
    await bot_process.start(START.isoformat())
    async with aiohttp.ClientSession() as http:
        sim = Simulator(None, http, bot_process.base)  # type: ignore[arg-type]
        for kind, value in EMERGENCY_REPORT:
            phone = sim["citizen"]
            await (phone.text(value) if kind == "text" else phone.tap(value))
        # A collaborator is half-way through another report when the process dies.
        mate = sim["collaborator"]
        for kind, value in [s for s in EMERGENCY_REPORT[:9] if not s[1].startswith("village:")]:
            await (mate.text(value) if kind == "text" else mate.tap(value))
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
