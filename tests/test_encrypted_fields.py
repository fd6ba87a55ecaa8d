"""Issue 15, item 1: the private fields are sealed in the database. After a whole story
over the simulator (a report with a child's name, a description, a photo and the
reporter's phone; a question relayed to the reporter and the answer; an assessment; a
close note) neither the SQLite file (with its WAL) nor any text column of any table, on
SQLite and on a real PostgreSQL, shows a word of it; keys rotate while the bot runs and
every row still reads, under the new key alone at the end."""

from __future__ import annotations

import asyncio
import io
import os
import stat
from pathlib import Path

import pytest

from bot.cli import rotate_keys
from bot.clock import FakeClock
from bot.config import DEMO_CONFIG, Settings, load_commune
from storage import cases
from storage.crypto import KEYS_SETTING, FieldCipher, KeyProblem, key_file_of, new_key, parse_keys
from storage.db import Database
from tests.support.processes import serve_refused
from tests.support.raw_database import (
    leaks,
    raw_columns,
    read_every_sealed_row,
    sqlite_bytes,
    sqlite_file,
)
from tests.support.simulator import Simulator, simulator, walk_report
from tests.support.stories import report_in

CHILD = "Hoàng Thị Mây Ngàn"
DESCRIPTION = "Ông Tư Bảy bên kia suối nhốt bé trong chuồng trâu suốt đêm qua."
PHOTO = "photo-ZXQ-4471-secret"
PHONE = "0987654321"
QUESTION = "Bé có người thân nào ở Bản Khe Sanh không?"
ANSWER = "Có bác ruột tên Lò Văn Quyết ở đầu bản."
MEASURES = "Gửi bé sang nhà cô giáo Vi Thị Hường tạm thời."
CLOSE_NOTE = "Bé đã về ở với bà ngoại Đinh Thị Sáu, ổn định."
# The reporter's own name, from the demo commune file.
REPORTER = "Chị Lan"
STORY = (CHILD, DESCRIPTION, PHOTO, PHONE, QUESTION, ANSWER, MEASURES, CLOSE_NOTE, REPORTER)


def prefix_of(key: str) -> str:
    return FieldCipher(parse_keys(key)).current_prefix


async def whole_story(sim: Simulator) -> str:
    citizen, officer = sim["citizen"], sim["officer"]
    for kind, value in [
            ("text", "/start"), ("choice", "menu:report"), ("choice", "danger:no"),
            ("choice", "type:sexual_abuse"), ("choice", "types:done"),
            ("choice", "village:tay"), ("choice", "age:11-15"), ("choice", "sex:girl"),
            ("text", CHILD), ("choice", "count:1"), ("text", DESCRIPTION)]:
        await citizen.step(kind, value)
    await citizen.send(kind="photo", file_ref=PHOTO)
    for kind, value in [("choice", "photos:done"), ("choice", "contact:allow"),
                        ("text", "0987 654 321"), ("choice", "confirm")]:
        await citizen.step(kind, value)
    assert "VT-2026-" in (await citizen.last())["text"]
    alert = next(m for m in await officer.inbox(all_=True) if m["kind"] == "alert")
    assert DESCRIPTION in alert["text"] and CHILD in alert["text"], "the team reads it"
    await officer.tap("case:ask:1")
    await officer.text(QUESTION)
    assert QUESTION in (await citizen.last())["text"]
    await citizen.tap("case:reply:1")
    await citizen.text(ANSWER)
    assert ANSWER in (await officer.last())["text"]
    await officer.tap("case:ack:1")
    await officer.tap("case:assess:1")
    await officer.tap("risk:medium")
    await officer.text(MEASURES)
    await officer.tap("form:sexual_abuse")
    await officer.tap("setting:family")
    await officer.tap("case:close:1")
    await officer.tap("outcome:supported")
    await officer.text(CLOSE_NOTE)
    await officer.tap("close:confirm")
    async with sim.app.database.read() as tx:
        case = await cases.case_by_id(tx, 1)
        files = await cases.attachments_of(tx, 1)
    assert case is not None and case.status == "closed"
    assert (case.child_name, case.description, case.reporter_phone, case.measures,
            case.closing_note) == (CHILD, DESCRIPTION, PHONE, MEASURES, CLOSE_NOTE)
    assert [f.file_ref for f in files] == [PHOTO]
    return case.code


async def nothing_shows(db_url: str) -> None:
    columns = await raw_columns(db_url)
    assert columns, "the raw read found the tables"
    assert not leaks(columns, STORY)
    if sqlite_file(db_url) is not None:
        raw = sqlite_bytes(db_url)
        assert b"VT-2026-0001" in raw, "the raw read sees what is not private"
        assert not leaks(raw, STORY)


async def test_the_whole_story_leaves_no_private_word_in_the_raw_database(
        db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = new_key(), new_key()
    monkeypatch.setenv(KEYS_SETTING, old)
    async with simulator(db_url, clock, load_commune(DEMO_CONFIG)) as sim:
        await whole_story(sim)
        # Read while the bot still runs: the SQLite WAL holds the latest pages.
        await nothing_shows(db_url)
    assert any(v.startswith(prefix_of(old)) for _, _, v in await raw_columns(db_url))

    # The new key goes first and the bot restarts with both; rotate-keys runs while it
    # takes another report.
    monkeypatch.setenv(KEYS_SETTING, f"{new},{old}")
    async with simulator(db_url, clock, load_commune(DEMO_CONFIG)) as sim:
        out = io.StringIO()
        settings = Settings.from_env({"DATABASE_URL": db_url, KEYS_SETTING: f"{new},{old}"})
        status, code = await asyncio.gather(rotate_keys(settings, batch=3, out=out),
                                            walk_report(sim, "collaborator", report_in("dong")))
        assert status == 0, out.getvalue()
        assert "0 left under another key" in out.getvalue()
        assert code == "VT-2026-0002"
        assert await read_every_sealed_row(sim.app.database) > 50
    values = [v for _, _, v in await raw_columns(db_url)]
    assert not [v for v in values if v.startswith(prefix_of(old))], "nothing under the old key"
    assert any(v.startswith(prefix_of(new)) for v in values)

    # The old key dropped: every row still reads, and the story is intact.
    monkeypatch.setenv(KEYS_SETTING, new)
    async with simulator(db_url, clock, load_commune(DEMO_CONFIG)) as sim:
        assert await read_every_sealed_row(sim.app.database) > 50
        async with sim.app.database.read() as tx:
            case = await cases.case_by_id(tx, 1)
        assert case is not None and (case.description, case.child_name) == (DESCRIPTION, CHILD)
        await sim["officer"].text("/start")
        assert (await sim["officer"].last())["text"]
    await nothing_shows(db_url)

    # A key forgotten too early is said in one line, naming the setting.
    database = await Database.open(db_url, new_key())
    try:
        with pytest.raises(KeyProblem, match=f"^{KEYS_SETTING}: a row is sealed with key"):
            await read_every_sealed_row(database)
    finally:
        await database.close()


async def test_sqlite_without_keys_makes_a_0600_key_file_once(
        tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv(KEYS_SETTING, raising=False)
    db = tmp_path / "safechild.db"
    url = f"sqlite+aiosqlite:///{db}"
    for _ in range(2):
        async with simulator(url, clock, load_commune(DEMO_CONFIG)) as sim:
            await walk_report(sim, "citizen", report_in("tay"))
    key_file = key_file_of(str(db))
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    told = [r for r in caplog.records if "generated a database key" in r.getMessage()]
    assert len(told) == 1, "said once, on the first start"
    key = key_file.read_text().strip()
    assert key not in caplog.text
    assert any(v.startswith(prefix_of(key)) for _, _, v in await raw_columns(url))
    assert not leaks(sqlite_bytes(url), ("Hàng xóm thấy cháu bị đánh",))


def test_bad_keys_and_postgresql_without_keys_are_refused_in_one_line(tmp_path: Path) -> None:
    bad = serve_refused({"SAFECHILD_DB": str(tmp_path / "a.db"),
                         KEYS_SETTING: f"{new_key()},not-a-key"})
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"safechild: {KEYS_SETTING}: key 2 is not 32 bytes in base64url; make one with "
        "`safechild new-key`"]
    unkeyed = serve_refused({"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
                             KEYS_SETTING: ""})
    assert unkeyed.returncode == 2
    (line,) = unkeyed.stderr.strip().splitlines()
    assert line.startswith(f"safechild: {KEYS_SETTING}: not set; a PostgreSQL database")
