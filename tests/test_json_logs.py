"""SAFECHILD_LOG_FORMAT=json (issue 15, item 9): a real `safechild serve` writes one JSON
object per line (time, level, logger, event, the ids its calls give), tracebacks without
exception messages as in text; any other value than text or json is refused at start."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import aiohttp

from bot import logs
from tests.support.processes import BotProcess, free_port, serve_refused

SECRET = "Bé Na, 0912 345 678, bị bố đánh"
KEYS = {"time", "level", "logger", "event"}


def test_a_record_is_one_json_object_with_its_ids_and_no_exception_message() -> None:
    try:
        raise ValueError(f"row refused: {SECRET}")
    except ValueError as exc:
        record = logging.LogRecord("bot.workers.delivery", logging.ERROR, __file__, 1,
                                   "outbox %s failed", (42,),
                                   (type(exc), exc, exc.__traceback__))
    record.outbox_id = 42  # as `extra={"outbox_id": 42}` sets it
    line = logs.JsonLines().format(record)
    assert "\n" not in line
    found = json.loads(line)
    assert found["event"] == "outbox 42 failed" and found["outbox_id"] == 42
    assert found["level"] == "ERROR" and found["logger"] == "bot.workers.delivery"
    assert found["time"].endswith("+00:00")
    assert "builtins.ValueError: (message withheld)" in found["exception"]
    assert SECRET not in line and "0912" not in line


def test_any_other_log_format_is_refused_in_one_line(tmp_path: Path) -> None:
    done = serve_refused({"SAFECHILD_LOG_FORMAT": "xml",
                          "SAFECHILD_DB": str(tmp_path / "safechild.db")})
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["safechild: SAFECHILD_LOG_FORMAT: text or json, "
                                        "not 'xml'"]


async def test_a_serving_process_logs_json_lines(db_url: str, tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    bot = BotProcess(tmp_path / "safechild.db", free_port(),
                     env={"SAFECHILD_LOG_FORMAT": "json"}, log=log,
                     database_url=None if db_url.startswith("sqlite") else db_url)
    await bot.start("2026-11-23T09:00:00+07:00")
    try:
        async with aiohttp.ClientSession() as http:
            for n, body in enumerate(({"kind": "text", "text": "/start"},
                                      {"kind": "choice", "choice": "menu:report"},
                                      {"kind": "choice", "choice": "danger:no"},
                                      {"kind": "text", "text": SECRET})):
                async with http.post(f"{bot.base}/api/phones/citizen/send",
                                     json={**body, "id": f"json-{n}"}) as r:
                    assert r.status == 200
            async with http.get(f"{bot.base}/readyz") as r:
                assert r.status == 200, await r.text()
            async with http.get(f"{bot.base}/metrics") as r:
                assert r.status == 200
                assert 'safechild_updates_received_total{channel="web"} 4.0' in await r.text()
    finally:
        bot.stop()
    text = log.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) >= 5
    found: list[dict[str, Any]] = [json.loads(line) for line in lines]
    for entry in found:
        assert KEYS <= set(entry), entry
    inbound = [e for e in found if e["event"].startswith("inbound ")]
    assert len(inbound) == 4
    assert {e["channel"] for e in inbound} == {"web"}
    assert all(isinstance(e["person_id"], int) for e in inbound)
    assert [e["flow"] for e in inbound][1:] == ["report"] * 3
    assert SECRET not in text and "0912" not in text
