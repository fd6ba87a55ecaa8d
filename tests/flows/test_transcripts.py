"""Golden transcripts: inputs -> the message ids and choices the pure engine answers with.

Each file in transcripts/ is a list of turns: `in` (an Input as JSON, or "/command"),
`say` (the ids of every Text the engine replies with, in order), optionally `choices`
(ids of the last reply's buttons), `step` (where the flow now stands) and `submit`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest

from bot.domain.messages import Input, Reply
from bot.flows import engine
from bot.flows.book import FLOWS
from bot.flows.effects import (
    AddCalendarEvent,
    AddToCase,
    Assess,
    CalendarCommand,
    ChooseCommune,
    CloseCase,
    CreateInvite,
    FindCommune,
    LookUpStatus,
    MakePoster,
    OpenCase,
    SendBroadcast,
    SetLanguage,
    StartBroadcast,
)

HERE = Path(__file__).parent / "transcripts"
CTX = engine.Context(
    role="citizen", villages=(("dong", "Thôn Đông"), ("tay", "Thôn Tây")),
    officer_phone="0912345678", trusted_addresses=("Trạm Y tế xã",), commune_name="Vĩnh Thủy",
)
CONTEXTS = {
    "citizen": CTX,
    "collaborator": engine.Context(**{**CTX.__dict__, "role": "collaborator",
                                      "own_village": "dong"}),
    "officer": engine.Context(**{**CTX.__dict__, "role": "officer",
                                 "team": (("7", "Anh Tuấn"),)}),
    # A province's bot that does not know the person's commune yet.
    "newcomer": engine.Context(**{**CTX.__dict__, "villages": (), "needs_commune": True,
                                  "province_name": "Quảng Trị"}),
}


def to_input(raw: Any) -> Input:
    if isinstance(raw, str):
        if raw.startswith("/"):
            command, _, args = raw[1:].partition(" ")
            return Input("command", command=command, args=args)
        return Input("choice", choice=raw)
    return Input(**raw)


def plain(value: Any) -> Any:
    return [plain(v) for v in value] if isinstance(value, tuple | list) else value


# The transcripts name what a flow hands its host in their own words: an action and its
# data. Each typed effect, as a transcript says it.
SUBMITS: dict[type, Any] = {
    OpenCase: lambda e: ("alert_now" if e.early else "report",
                         {k: plain(v) for k, v in asdict(e.report).items()}),
    AddToCase: lambda e: ("add_final" if e.final else "add",
                          {"case_id": e.case_id}
                          | {k: plain(v) for k, v in asdict(e.report).items()}),
    LookUpStatus: lambda e: ("status", {"code": e.code}),
    Assess: lambda e: ("assess", {"case_id": e.case_id, "risk": e.risk,
                                  "measures": e.measures, "form": e.form,
                                  "value": e.setting}),
    CloseCase: lambda e: ("close", {"case_id": e.case_id, "value": e.outcome,
                                    "note": e.note}),
    SendBroadcast: lambda e: ("broadcast", {"text": e.text, "commune_id": e.commune_id}),
    # A commune's command, once the person of several communes has picked one.
    CreateInvite: lambda e: ("invite", {"args": e.args}),
    StartBroadcast: lambda e: ("start_broadcast", {"text": e.text}),
    MakePoster: lambda e: ("poster", {"args": e.args}),
    CalendarCommand: lambda e: ("calendar", {"args": e.args}),
    FindCommune: lambda e: ("find_commune", {"text": e.text, "latitude": e.latitude,
                                             "then": e.then}),
    ChooseCommune: lambda e: ("choose_commune", {"code": e.code, "then": e.then,
                                                 "welcome": e.welcome}),
    AddCalendarEvent: lambda e: ("calendar_add", {k: plain(v) for k, v in asdict(e).items()}),
}


def run(transcript: dict[str, Any]) -> None:
    ctx = CONTEXTS[transcript.get("as", "citizen")]
    state = engine.State()
    if "start" in transcript:
        state, _ = engine.start(FLOWS, transcript["start"], ctx, transcript.get("data"))
    for n, turn in enumerate(transcript["turns"]):
        state, effects = engine.step(FLOWS, state, to_input(turn["in"]), ctx)
        if any(isinstance(e, OpenCase) and e.early for e in effects):
            # What the host does with a case opened mid-flow: the questions go on for it.
            state = replace(state, data={**state.data, "case_id": 9, "code": "VT-2026-0009"})
        replies = [e for e in effects if isinstance(e, Reply)]
        said = [t.id for r in replies for t in r.texts]
        where = f"turn {n} ({turn['in']})"
        assert said == turn["say"], where
        if "choices" in turn:
            assert [c.id for c in replies[-1].choices] == turn["choices"], where
        if "step" in turn:
            assert state.step == turn["step"], where
        submits = [SUBMITS[type(e)](e) for e in effects if type(e) in SUBMITS]
        others = [e for e in effects if not isinstance(e, Reply | SetLanguage)
                  and type(e) not in SUBMITS]
        assert not others, f"{where}: effects no transcript can name: {others}"
        if "submit" in turn:
            assert len(submits) == 1, where
            action, data = submits[0]
            for key, value in turn["submit"].items():
                assert data[key] == value, f"{where}: {key}"
            assert action == turn["submit_action"], where
        else:
            assert not submits, where
        if "language" in turn:
            assert [e.language for e in effects if isinstance(e, SetLanguage)] == [
                turn["language"]]


@pytest.mark.parametrize("path", sorted(HERE.glob("*.json")), ids=lambda p: p.stem)
def test_transcript(path: Path) -> None:
    run(json.loads(path.read_text(encoding="utf-8")))


def test_every_flow_has_a_transcript() -> None:
    covered = set()
    for path in HERE.glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        covered.add(data.get("flow") or data.get("start"))
    assert covered >= set(FLOWS.flows) - {"answer", "ask", "handover", "progress"} | {"report"}


def test_flows_import_no_channel_or_storage_library() -> None:
    for source in Path("bot/flows").glob("*.py"):
        text = source.read_text(encoding="utf-8")
        for banned in ("telegram", "aiohttp", "sqlalchemy", "storage", "bot.services",
                       "bot.handlers", "bot.i18n"):
            assert f"import {banned}" not in text and f"from {banned}" not in text, source
