"""Issue 13, item 11: a mistake that keeps the bot from starting is one line saying what to
fix, exit status 2, no traceback (unless `--debug`); a misspelt name in the commune file is
refused with the nearest valid one, never taken silently.

Through the real `python -m bot.cli serve` where a process starts, and through
`parse_commune` for the many ways a commune file can be wrong."""

from __future__ import annotations

import copy
import re
import socket
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from bot.config import DEMO_CONFIG, ConfigError, parse_commune
from storage.crypto import new_key
from tests.support.processes import free_port, serve_refused

DEMO = tomllib.loads(DEMO_CONFIG.read_text(encoding="utf-8"))


def one_line(refused: subprocess.CompletedProcess[str]) -> str:
    """What a refused start said: exactly one line, with status 2 and no traceback."""
    assert refused.returncode == 2, refused.stderr
    assert "Traceback" not in refused.stderr
    lines = refused.stderr.splitlines()
    assert len(lines) == 1, refused.stderr
    assert lines[0].startswith("safechild: ")
    return lines[0]


def commune_file(tmp_path: Path, old: str, new: str) -> Path:
    """The demo commune file with the first `old` turned into `new`."""
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "commune.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def sqlite(tmp_path: Path) -> dict[str, str]:
    return {"SAFECHILD_DB": str(tmp_path / "safechild.db")}


def test_a_missing_commune_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-commune.toml"
    line = one_line(serve_refused({"SAFECHILD_CONFIG": str(missing), **sqlite(tmp_path)}))
    assert "SAFECHILD_CONFIG" in line and str(missing) in line


def test_malformed_toml_names_the_file_line_and_column(tmp_path: Path) -> None:
    # Line 4 of the demo file is `name = "Vĩnh Thủy"`; its value loses its opening quote.
    config = commune_file(tmp_path, 'name = "Vĩnh Thủy"', 'name = Vĩnh Thủy"')
    line = one_line(serve_refused({"SAFECHILD_CONFIG": str(config), **sqlite(tmp_path)}))
    assert str(config) in line and "line 4, column 8" in line and "TOML" in line


@pytest.mark.parametrize(("env", "expected"), [
    ({"SAFECHILD_PORT": "80a"}, "SAFECHILD_PORT: a port number from 1 to 65535, not '80a'"),
    ({"SAFECHILD_PORT": "70000"}, "SAFECHILD_PORT: a port number from 1 to 65535"),
    ({"SAFECHILD_FAKE_CLOCK": "yesterday"}, "SAFECHILD_FAKE_CLOCK: a date and time like"),
    ({"TELEGRAM_BOT_TOKEN": "123:x", "TELEGRAM_READ_TIMEOUT": "ten"},
     "TELEGRAM_READ_TIMEOUT: a number above 0, not 'ten'"),
    ({"ZALO_APP_ID": "a", "ZALO_OA_ID": "o", "ZALO_OA_SECRET_KEY": "k", "ZALO_APP_SECRET": "s",
      "ZALO_MAX_BUTTONS": "five"}, "ZALO_MAX_BUTTONS: a whole number of at least 1"),
])
def test_a_setting_that_is_not_allowed_names_the_variable(
        tmp_path: Path, env: dict[str, str], expected: str) -> None:
    assert expected in one_line(serve_refused({**sqlite(tmp_path), **env}))


def test_a_misspelt_role_in_the_commune_file_is_refused_with_the_nearest(
        tmp_path: Path) -> None:
    config = commune_file(tmp_path, 'role = "police"', 'role = "polise"')
    line = one_line(serve_refused({"SAFECHILD_CONFIG": str(config), **sqlite(tmp_path)}))
    assert line == ("safechild: person police: unknown role 'polise'; did you mean "
                    "'police'?")


def test_a_routing_target_with_a_ligature_is_refused_not_normalised(tmp_path: Path) -> None:
    # "ofﬁcer@duty" with U+FB01 (ﬁ) reads as "officer@duty" but is another name: taken as
    # it is, it would match nobody, and taken after NFKC it would hide the mistake.
    config = commune_file(tmp_path, 'notify = ["officer@duty"]', 'notify = ["ofﬁcer@duty"]')
    line = one_line(serve_refused({"SAFECHILD_CONFIG": str(config), **sqlite(tmp_path)}))
    assert line.startswith("safechild: routing.rules #1 notify: unknown recipient "
                           "'ofﬁcer@duty'; did you mean 'officer@duty'?")
    assert "U+FB01" in line


def test_a_port_already_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line(serve_refused({"SAFECHILD_PORT": str(port), **sqlite(tmp_path)}))
    assert line.startswith(f"safechild: SAFECHILD_PORT: 127.0.0.1:{port} is already in use")
    # Refused before the database was touched.
    assert not (tmp_path / "safechild.db").exists()


def test_an_unreachable_database_names_database_url_and_the_host(tmp_path: Path) -> None:
    # Nothing listens on a port just freed: the connection is refused at once.
    port = free_port()
    url = f"postgresql://safechild:s3cret-pw@127.0.0.1:{port}/safechild"
    # With keys: PostgreSQL without them is refused before any connection.
    line = one_line(serve_refused({"DATABASE_URL": url, "SAFECHILD_KEYS": new_key()}))
    assert line.startswith(f"safechild: DATABASE_URL: cannot reach the database at "
                           f"127.0.0.1:{port} (connection refused)")
    assert "s3cret-pw" not in line


def test_an_sqlite_file_that_cannot_be_made_names_safechild_db(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    line = one_line(serve_refused({"SAFECHILD_DB": str(blocker / "safechild.db")}))
    assert line.startswith("safechild: SAFECHILD_DB: cannot open the SQLite database")
    assert str(blocker / "safechild.db") in line


@pytest.mark.parametrize("mistake", ["database", "commune file"])
def test_debug_shows_the_traceback_and_still_ends_with_the_line(
        tmp_path: Path, mistake: str) -> None:
    if mistake == "database":
        env = {"DATABASE_URL": f"postgresql://127.0.0.1:{free_port()}/x"}
    else:
        env = {"SAFECHILD_CONFIG": str(tmp_path / "missing.toml"), **sqlite(tmp_path)}
    plain = one_line(serve_refused(env))
    debug = serve_refused(env, args=("--debug",))
    assert debug.returncode == 2
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.splitlines()[-1] == plain


def demo_with(change: Any) -> dict[str, Any]:
    raw = copy.deepcopy(DEMO)
    change(raw)
    return raw


def person(raw: dict[str, Any], key: str) -> dict[str, Any]:
    return next(p for p in raw["people"] if p["key"] == key)


@pytest.mark.parametrize(("change", "message"), [
    # Unknown keys, in every table.
    (lambda r: r.update(village=r.pop("villages")),
     "the commune file: unknown field(s) village; did you mean villages?"),
    (lambda r: r["commune"].update(code_prefx="VT"),
     "commune: unknown field(s) code_prefx; did you mean code_prefix?"),
    (lambda r: r["villages"][0].update(nam="x"),
     "villages #1: unknown field(s) nam; did you mean name?"),
    (lambda r: person(r, "officer").update(on_dutty=True),
     "person officer: unknown field(s) on_dutty; did you mean on_duty?"),
    (lambda r: r["routing"].update(police_type=[]),
     "routing: unknown field(s) police_type; did you mean police_types?"),
    (lambda r: r["routing"]["rules"][0].update(notfy=["officer"]),
     "routing.rules #1: unknown field(s) notfy; did you mean notify?"),
    (lambda r: r["deadlines"].update(acknowledgement={}),
     "deadlines: unknown field(s) acknowledgement; did you mean acknowledge?"),
    (lambda r: r["deadlines"]["review"].update(Urgent="1d"),
     "deadlines.review: unknown field(s) Urgent; did you mean URGENT?"),
    # Misspelt names.
    (lambda r: person(r, "officer").update(role="oficer"),
     "person officer: unknown role 'oficer'; did you mean 'officer'?"),
    (lambda r: person(r, "collaborator").update(village="dông"),
     "person collaborator: unknown village 'dông'; did you mean 'dong'?"),
    (lambda r: person(r, "officer").update(language="vn"),
     "person officer: unknown language 'vn'; known: en, vi"),
    (lambda r: r["routing"]["rules"][1].update(notify=["police@dutty"]),
     "routing.rules #2 notify: unknown recipient 'police@dutty'; did you mean 'police@duty'?"),
    (lambda r: r["escalation"]["levels"][1].__setitem__(1, "police#chef"),
     "escalation level 2: unknown recipient 'police#chef'; did you mean 'police#chief'?"),
    (lambda r: r["escalation"]["levels"][3].__setitem__(0, "leader#chairmen"),
     "escalation level 4: unknown recipient 'leader#chairmen'; did you mean "
     "'leader#chairman'?"),
    (lambda r: r["routing"]["rules"][1]["types"].__setitem__(0, "violance"),
     "routing.rules #2: types: unknown case type 'violance'; did you mean 'violence'?"),
    (lambda r: r["routing"]["rules"][2].update(urgency=["EMERGENCI"]),
     "routing.rules #3: urgency: unknown urgency 'EMERGENCI'; did you mean 'EMERGENCY'?"),
    (lambda r: r["routing"]["police_types"].append("traficking"),
     "routing: police_types: unknown case type 'traficking'; did you mean 'trafficking'?"),
    # A case is never routed to a citizen.
    (lambda r: r["routing"]["rules"][0].update(notify=["citizen"]),
     "routing.rules #1 notify: unknown recipient 'citizen'"),
    # Values that are not allowed, or missing.
    (lambda r: r["commune"].pop("code_prefix"), "commune: missing 'code_prefix'"),
    (lambda r: r["people"].append({"key": "officer", "role": "officer"}),
     "person officer: duplicate key"),
    (lambda r: r["commune"].update(working_hours=["7:30", "17:00"]),
     "commune.working_hours: two times like"),
    (lambda r: r["deadlines"]["acknowledge"].update(URGENT="1 hour"),
     "deadlines.acknowledge.URGENT: a duration like"),
    (lambda r: person(r, "officer").update(on_duty="yes"),
     "person officer: 'on_duty' must be true or false"),
    (lambda r: r["escalation"].update(reminders_at=[50, 90]),
     "escalation: reminders_at must be parts of the deadline between 0 and 1"),
])
def test_a_mistake_in_the_commune_file_is_refused_in_one_line(change: Any,
                                                              message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}") as refused:
        parse_commune(demo_with(change))
    assert "\n" not in str(refused.value)


def test_a_phone_number_of_the_wrong_type_is_not_quoted_back() -> None:
    # The error reaches the operator's terminal and logs: never a person's phone number.
    raw = demo_with(lambda r: person(r, "officer").update(phone=912345678))
    with pytest.raises(ConfigError) as refused:
        parse_commune(raw)
    assert str(refused.value) == "person officer: 'phone' must be a text in quotes"


def test_the_demo_commune_still_loads() -> None:
    commune = parse_commune(copy.deepcopy(DEMO))
    assert commune.levels[1] == ("officer", "police#chief")
    assert [rule.notify for rule in commune.rules] == [("officer@duty",), ("police@duty",),
                                                       ("police@duty",)]
