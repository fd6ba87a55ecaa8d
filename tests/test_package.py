"""SafeChild installed as a package, outside the checkout: a wheel built from the tree,
installed into a new virtual environment, started from there, answers in Vietnamese."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import tomllib
from pathlib import Path

import aiohttp
import pytest

from bot import i18n

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_every_package_of_the_tree_is_listed_in_pyproject() -> None:
    """Packages are listed by hand (the catalogs need a mapping discovery cannot make); a
    package left out would be missing from every wheel."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts)
             for top in ("bot", "storage") for init in (ROOT / top).rglob("__init__.py")}
    found.add("bot.locales")
    assert found == listed, f"pyproject.toml [tool.setuptools] packages: {sorted(found)}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment outside the checkout with only the wheel installed; the
    dependencies come from the test environment's site-packages through a .pth line (so no
    download), which holds no SafeChild of its own (the checkout's editable install is a
    finder that only a site directory's own .pth files would load)."""
    where = tmp_path_factory.mktemp("wheel")
    # Built from a copy: an in-tree build keeps build/lib, where files moved or deleted since
    # an earlier build would linger and end up in the wheel.
    source = where / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "var", "*.egg-info", "__pycache__", ".*_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                    "--disable-pip-version-check", "-w", str(where / "dist"), str(source)],
                   check=True, cwd=where, capture_output=True)
    wheels = list((where / "dist").glob("safechild-*.whl"))
    assert len(wheels) == 1, wheels
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                    "install", "--no-deps", "-q", "--disable-pip-version-check",
                    str(wheels[0])], check=True, cwd=where, capture_output=True)
    site = subprocess.run([str(venv / "bin" / "python"), "-c",
                           "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "safechild-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def test_the_installed_package_is_the_wheel_not_the_checkout(installed: Path) -> None:
    found = subprocess.run(
        [str(installed / "bin" / "python"), "-c",
         "import bot, bot.locales, storage; print(bot.__file__); print(storage.__file__)"],
        check=True, capture_output=True, text=True, cwd=installed.parent).stdout.split()
    assert all(path.startswith(str(installed)) for path in found), found


def serve(venv: Path, port: int) -> subprocess.Popen[bytes]:
    """`safechild serve` of the installed package, started in its own folder, with nothing
    of this test run's configuration (the simulator on a SQLite file there)."""
    home = venv.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAFECHILD_", "TELEGRAM_",
                                                                     "ZALO_", "DATABASE_"))}
    env.update(SAFECHILD_DB=str(home / "var" / "bot.db"), SAFECHILD_PORT=str(port),
               PYTHONPATH="")
    return subprocess.Popen([str(venv / "bin" / "safechild"), "serve"], cwd=home, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def test_the_installed_bot_answers_in_vietnamese(installed: Path) -> None:
    port = free_port()
    proc = serve(installed, port)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:] \
                    if proc.stderr else "the bot died"
                try:
                    async with http.get(f"{base}/healthz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, "the installed bot did not start"
                await asyncio.sleep(0.1)
            # The simulator's page is package data too.
            async with http.get(f"{base}/") as r:
                assert r.status == 200 and "<html" in (await r.text()).lower()
            async with http.post(f"{base}/api/phones/citizen/send",
                                 json={"kind": "text", "text": "/start", "id": "1"}) as r:
                assert r.status == 200, await r.text()
            async with http.get(f"{base}/api/phones/citizen/messages") as r:
                out = [m for m in (await r.json())["messages"] if m["direction"] == "out"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert out, "no answer"
    answer = out[-1]
    assert "menu.prompt" in answer["ids"]
    # The catalog's Vietnamese, not the message id the bot falls back to without catalogs.
    assert i18n.t("menu.prompt", "vi") != "menu.prompt"
    assert i18n.t("menu.prompt", "vi") in answer["text"]
    assert "menu.prompt" not in answer["text"]
    assert i18n.t("menu.report", "vi") in [c["label"] for c in answer["choices"]]
