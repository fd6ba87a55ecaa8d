"""The web simulator has no login: anyone who reaches it can act as any configured person.
With a real channel it stays off unless asked for, so a deployment whose webhooks face the
internet does not hand strangers an officer's alerts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from bot.config import ConfigError, Settings
from tests.support import START
from tests.support.fake_telegram import TOKEN, FakeTelegram
from tests.support.processes import BotProcess, config_with_telegram, free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("env", "expected"), [
    ({}, True),
    ({"TELEGRAM_BOT_TOKEN": "t"}, False),
    ({"ZALO_APP_ID": "a"}, False),
    ({"TELEGRAM_BOT_TOKEN": "t", "SAFECHILD_SIMULATOR": "1"}, True),
    ({"ZALO_APP_ID": "a", "SAFECHILD_SIMULATOR": "off"}, False),
])
def test_simulator_is_on_only_without_a_real_channel_unless_asked(
        env: dict[str, str], expected: bool) -> None:
    assert Settings.from_env(env).simulator is expected


@pytest.mark.parametrize("env", [{"SAFECHILD_SIMULATOR": "maybe"},
                                 {"SAFECHILD_SIMULATOR": "0"}])
def test_a_setting_that_leaves_nothing_sensible_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env(env)


def test_serve_says_why_it_will_not_start() -> None:
    result = subprocess.run([sys.executable, "-m", "bot.cli", "serve"], cwd=ROOT,
                            env={"PATH": "/usr/bin:/bin", "SAFECHILD_SIMULATOR": "0"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "SAFECHILD_SIMULATOR=0 leaves no channel" in result.stderr
    assert "Traceback" not in result.stderr


async def test_a_telegram_deployment_serves_no_simulator(tmp_path: Path) -> None:
    fake = FakeTelegram()
    await fake.start()
    env = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": fake.base_url,
           "SAFECHILD_CONFIG": str(config_with_telegram(tmp_path))}
    proc = BotProcess(tmp_path / "bot.db", free_port(), env)
    try:
        await proc.start(START.isoformat())
        async with aiohttp.ClientSession() as http:
            for method, path in (("GET", "/"), ("GET", "/api/phones"),
                                 ("GET", "/api/phones/officer/messages"),
                                 ("POST", "/api/phones/officer/send"),
                                 ("POST", "/api/clock")):
                async with http.request(method, f"{proc.base}{path}",
                                        json={"kind": "text", "text": "/start"}) as r:
                    assert r.status in (404, 405), (method, path, r.status)
            async with http.get(f"{proc.base}/healthz") as r:
                assert r.status == 200
    finally:
        proc.stop()
        await fake.stop()
