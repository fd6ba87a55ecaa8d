"""Flows for the case team (assess, close, ask, hand over, progress) and the reporter's answer.

They start from an alert's buttons once the host has checked who may press them; each ends
with one typed effect the case service carries out (and checks again).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.domain.cases import CASE_TYPES, MILESTONES, OUTCOMES, RISKS, SETTINGS
from bot.domain.messages import Choice, Input, Text
from bot.flows.effects import (
    AskReporter,
    Assess,
    CloseCase,
    Effect,
    HandOver,
    RecordProgress,
    ReporterAnswer,
    case_id_of,
)
from bot.flows.engine import Context, Flow, Go, Outcome, Retry, State
from bot.flows.steps import ask_text, choose, meaningful, store

MAX_NOTE = 2000
RISK_CHOICES = tuple(Choice(f"risk:{r}", Text(f"risk.{r}")) for r in RISKS)
SETTING_CHOICES = tuple(Choice(f"setting:{s}", Text(f"setting.{s}")) for s in SETTINGS)
FORM_CHOICES = tuple(Choice(f"form:{t}", Text(f"case_type.{t}")) for t in CASE_TYPES)
OUTCOME_CHOICES = tuple(Choice(f"outcome:{o}", Text(f"outcome.{o}")) for o in OUTCOMES)
MILESTONE_CHOICES = tuple(Choice(f"milestone:{m}", Text(f"milestone.{m}")) for m in MILESTONES)
NO_MEASURES = Choice("measures:none", Text("assess.measures.none"))


Make = Callable[[State, str], Effect]


def submit(make: Make) -> Callable[[str, State, Context], Outcome]:
    """End the flow with the effect `make` builds from the chosen option's value."""
    def then(picked: str, state: State, ctx: Context) -> Outcome:
        return Go(None, effects=(make(state, picked.split(":", 1)[1]),))
    return then


def note(make: Make) -> Callable[[Input, State, Context], Outcome]:
    """End the flow with the effect `make` builds from a typed note."""
    def accept(inp: Input, state: State, ctx: Context) -> Outcome:
        if inp.kind != "text" or not meaningful(inp.text, 2):
            return Retry(Text("error.need_text"))
        if len(inp.text) > MAX_NOTE:
            return Retry(Text("error.too_long", {"max": MAX_NOTE}))
        return Go(None, effects=(make(state, inp.text.strip()),))
    return accept


def assessed(state: State, setting: str) -> Effect:
    data = state.data
    return Assess(case_id_of(data), data.get("risk"), str(data.get("measures") or ""),
                  data.get("form"), setting)


def on_measures(inp: Input, state: State, ctx: Context) -> Outcome:
    if inp.kind == "choice":
        return Go("form", {"measures": ""})
    if inp.kind != "text" or not meaningful(inp.text, 2):
        return Retry(Text("error.need_text"))
    return Go("form", {"measures": inp.text.strip()[:MAX_NOTE]})


def team_options(state: State, ctx: Context) -> tuple[Choice, ...]:
    return tuple(Choice(f"person:{pid}", Text("raw", {"text": name})) for pid, name in ctx.team)


def case_params(state: State, ctx: Context) -> dict[str, Any]:
    return {"code": state.data.get("code", "")}


ASSESS = Flow("assess", first="risk", steps={s.id: s for s in (
    choose("risk", "assess.risk.prompt", RISK_CHOICES, store("risk", "measures"),
           frozenset({"measures"}), params=case_params),
    ask_text("measures", "assess.measures.prompt", on_measures, frozenset({"form"}),
             options=(NO_MEASURES,)),
    choose("form", "assess.form.prompt", FORM_CHOICES, store("form", "setting"),
           frozenset({"setting"})),
    choose("setting", "assess.setting.prompt", SETTING_CHOICES, submit(assessed)),
)})

def on_closing_note(inp: Input, state: State, ctx: Context) -> Outcome:
    if inp.kind != "text" or not meaningful(inp.text, 2):
        return Retry(Text("close.note.need_text"))
    if len(inp.text) > MAX_NOTE:
        return Retry(Text("error.too_long", {"max": MAX_NOTE}))
    return Go("review", {"note": inp.text.strip()})


def closing_params(state: State, ctx: Context) -> dict[str, Any]:
    return {"code": state.data.get("code", ""),
            "outcome": Text(f"outcome.{state.data['outcome']}") if state.data.get("outcome")
            else Text("report.not_given"),
            "note": str(state.data.get("note") or "")}


def closed(picked: str, state: State, ctx: Context) -> Outcome:
    return Go(None, effects=(CloseCase(case_id_of(state.data), str(state.data["outcome"]),
                                       str(state.data.get("note") or "")),))


# Closing is deliberate: the outcome, a short note, then what will be recorded, confirmed.
CLOSE = Flow("close", first="outcome", steps={s.id: s for s in (
    choose("outcome", "close.prompt", OUTCOME_CHOICES,
           lambda picked, s, c: Go("note", {"outcome": picked.split(":", 1)[1]}),
           frozenset({"note"}), params=case_params),
    ask_text("note", "close.note.prompt", on_closing_note, frozenset({"review"})),
    choose("review", "close.review", (Choice("close:confirm", Text("close.confirm")),),
           closed, params=closing_params),
)})

ASK = Flow("ask", first="question", steps={
    "question": ask_text("question", "ask.prompt",
                         note(lambda s, text: AskReporter(case_id_of(s.data), text)),
                         params=case_params),
})

ANSWER = Flow("answer", first="answer", steps={
    "answer": ask_text("answer", "answer.prompt",
                       note(lambda s, text: ReporterAnswer(case_id_of(s.data), text)),
                       params=case_params),
})

HANDOVER = Flow("handover", first="person", steps={
    "person": choose("person", "handover.prompt", team_options,
                     submit(lambda s, v: HandOver(case_id_of(s.data),
                                                  int(v) if v.isdigit() else 0)),
                     params=case_params),
})

PROGRESS = Flow("progress", first="milestone", steps={
    "milestone": choose("milestone", "progress.prompt", MILESTONE_CHOICES,
                        submit(lambda s, v: RecordProgress(case_id_of(s.data), v)),
                        params=case_params),
})
