"""Real `safechild serve` processes for the tests that kill and restart them."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from bot.config import DEMO_CONFIG


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BotProcess:
    """`python -m bot.cli serve` on a SQLite file (or `database_url`) and a port, on a fake
    clock starting at `clock_at` (None: the real clock). With `log`, every incarnation's
    stderr is appended to that file (a busy process would fill an unread pipe and stall)."""

    # What `python -m` runs (with `serve`).
    module = "bot.cli"

    def __init__(self, db: Path, port: int, env: dict[str, str] | None = None,
                 database_url: str | None = None, log: Path | None = None) -> None:
        self.db, self.port, self.env = db, port, env or {}
        self.database_url = database_url
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self, clock_at: str | None) -> subprocess.Popen[bytes]:
        env = {**os.environ, "SAFECHILD_DB": str(self.db), "SAFECHILD_PORT": str(self.port),
               **self.env}
        env.pop("DATABASE_URL", None)
        env.pop("SAFECHILD_FAKE_CLOCK", None)
        if clock_at is not None:
            env["SAFECHILD_FAKE_CLOCK"] = clock_at
        if self.database_url is not None:
            env["DATABASE_URL"] = self.database_url
        command = [sys.executable, "-m", self.module, "serve"]
        if self.log is None:
            return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
        with self.log.open("ab") as log:
            return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)

    def died(self) -> str:
        """What a process that exited said last."""
        if self.log is not None:
            return self.log.read_text(encoding="utf-8", errors="replace")[-2000:]
        if self.proc is not None and self.proc.stderr is not None:
            return self.proc.stderr.read().decode()[-2000:]
        return "bot died"

    async def start(self, clock_at: str | None, seconds: float = 10.0) -> None:
        self.proc = self.spawn(clock_at)
        async with aiohttp.ClientSession() as http:
            for _ in range(int(seconds / 0.05)):
                if self.proc.poll() is not None:
                    raise RuntimeError(self.died())
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


def config_with_telegram(tmp: Path, officer: int = 6002, police: int = 6003) -> Path:
    """The demo commune file with the officer's and the police's Telegram ids bound, and
    no calendar: these processes run on the real clock, and a reminder due on the day the
    suite runs would be one more message to whoever a test counts."""
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    assert "[calendar]\ndefaults = true\n" in text
    text = text.replace("[calendar]\ndefaults = true\n", "[calendar]\ndefaults = false\n")
    for key, user in (("officer", officer), ("police", police)):
        text = text.replace(f'key = "{key}"\n', f'key = "{key}"\ntelegram_id = {user}\n', 1)
    path = tmp / "commune.toml"
    path.write_text(text, encoding="utf-8")
    return path


def serve_refused(env: dict[str, str], timeout: float = 30.0,
                  args: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """`python -m bot.cli serve *args` expected to refuse to start (a mistake in its
    settings): what it said and its exit code. One that starts anyway runs into the
    timeout. DATABASE_URL is only what `env` says."""
    full = {**os.environ, "SAFECHILD_PORT": str(free_port())}
    full.pop("DATABASE_URL", None)
    full.update(env)
    return subprocess.run([sys.executable, "-m", "bot.cli", "serve", *args], env=full,
                          capture_output=True, text=True, timeout=timeout, check=False)
