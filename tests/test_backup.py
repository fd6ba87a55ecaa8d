"""`safechild backup FILE`: a consistent copy of the SQLite database made while a real
`safechild serve` runs and takes reports; a fresh process started on the copy finds every
case. A PostgreSQL URL is refused in one line that points to pg_dump."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.support import START
from tests.support.processes import BotProcess, free_port
from tests.support.simulator import Simulator, walk_report
from tests.support.stories import PRIVATE_REPORT, PRIVATE_WORDS, REPORT_STEPS


async def backup(db: Path, target: Path, **env: str) -> tuple[int, str, str]:
    """`python -m bot.cli backup target` on the database `db`: exit status, out, err."""
    full = {**os.environ, "SAFECHILD_DB": str(db), **env}
    if "DATABASE_URL" not in env:
        full.pop("DATABASE_URL", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "backup", str(target), env=full,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def names_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def status_of(sim: Simulator, who: str, code: str) -> list[str]:
    phone = sim[who]
    await phone.tap("menu:status")
    await phone.text(code)
    return list((await phone.last())["ids"])


async def test_a_backup_made_while_the_bot_runs_restores_every_case(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    live = BotProcess(tmp_path / "live.db", free_port(), log=log)
    target = tmp_path / "backups" / "safechild.db"
    await live.start(START.isoformat())
    try:
        async with aiohttp.ClientSession() as http:
            sim = Simulator(None, http, live.base)  # type: ignore[arg-type]
            codes = [await walk_report(sim, "citizen", steps)
                     for steps in (PRIVATE_REPORT, REPORT_STEPS, REPORT_STEPS)]
            # The copy is made while another report is being written.
            (status, out, err), during = await asyncio.gather(
                backup(live.db, target), walk_report(sim, "collaborator", PRIVATE_REPORT))
            assert status == 0, err
            assert f"backed up {live.db} to {target}" in out
            after = await walk_report(sim, "citizen", REPORT_STEPS)
    finally:
        live.stop()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert names_in(target.parent) == ["safechild.db", "safechild.db.key"]
    with sqlite3.connect(target) as copy:
        in_copy = {row[0] for row in copy.execute("SELECT code FROM cases")}
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # Every case made before the copy, the one being written during it or not, none after.
    assert set(codes) <= in_copy <= {*codes, during}
    assert after not in in_copy
    assert f"{len(in_copy)} cases" in out

    # Restored: a fresh process on the copy, where each reporter asks after their cases.
    restored_db = tmp_path / "restored.db"
    shutil.copy(target, restored_db)
    # The key of the sealed fields goes with the copy: without it nothing reads.
    assert (target.parent / "safechild.db.key").stat().st_mode & 0o777 == 0o600
    shutil.copy(target.parent / "safechild.db.key", tmp_path / "restored.db.key")
    restored = BotProcess(restored_db, free_port(), log=log)
    await restored.start(START.isoformat())
    try:
        async with aiohttp.ClientSession() as http:
            sim = Simulator(None, http, restored.base)  # type: ignore[arg-type]
            for code in sorted(in_copy):
                who = "collaborator" if code == during else "citizen"
                answer = await status_of(sim, who, code)
                assert answer[0].startswith("status.") and answer != ["status.not_found"], (
                    code, answer)
            assert await status_of(sim, "citizen", after) == ["status.not_found"]
    finally:
        restored.stop()
    # Neither process logged what the reports said.
    said = log.read_text(encoding="utf-8")
    assert [w for w in PRIVATE_WORDS if w in said] == []


async def test_a_postgresql_database_is_refused_in_one_line(tmp_path: Path) -> None:
    status, _, err = await backup(
        tmp_path / "unused.db", tmp_path / "copy.db",
        DATABASE_URL="postgresql://safechild:s3cret-pw@db.example:5432/safechild")
    assert status == 2
    assert err.count("\n") == 1 and "pg_dump" in err and "Traceback" not in err, err
    assert "s3cret-pw" not in err
    assert not (tmp_path / "copy.db").exists()


async def test_no_database_is_one_line_and_makes_none(tmp_path: Path) -> None:
    status, _, err = await backup(tmp_path / "missing.db", tmp_path / "copy.db")
    assert status == 2
    assert err == f"safechild: no database at {tmp_path / 'missing.db'}\n"
    assert names_in(tmp_path) == []
