"""Flows for the case team (assess, close, ask, hand over, progress) and the reporter's answer.

They start from an alert's buttons once the host has checked who may press them; each ends
with one Submit the case service carries out.
"""

from __future__ import annotations

from typing import Any

from bot.domain.cases import CASE_TYPES, MILESTONES, OUTCOMES, RISKS, SETTINGS
from bot.domain.messages import Choice, Input, Text
from bot.flows.effects import Submit
from bot.flows.engine import Context, Flow, Go, Outcome, Retry, State
from bot.flows.steps import ask_text, choose, meaningful, store

MAX_NOTE = 2000
RISK_CHOICES = tuple(Choice(f"risk:{r}", Text(f"risk.{r}")) for r in RISKS)
SETTING_CHOICES = tuple(Choice(f"setting:{s}", Text(f"setting.{s}")) for s in SETTINGS)
FORM_CHOICES = tuple(Choice(f"form:{t}", Text(f"case_type.{t}")) for t in CASE_TYPES)
OUTCOME_CHOICES = tuple(Choice(f"outcome:{o}", Text(f"outcome.{o}")) for o in OUTCOMES)
MILESTONE_CHOICES = tuple(Choice(f"milestone:{m}", Text(f"milestone.{m}")) for m in MILESTONES)
NO_MEASURES = Choice("measures:none", Text("assess.measures.none"))


def submit(action: str) -> Any:
    def then(picked: str, state: State, ctx: Context) -> Outcome:
        value = picked.split(":", 1)[1]
        return Go(None, effects=(Submit(action, {**state.data, "value": value}),))
    return then


def note(action: str, key: str) -> Any:
    def accept(inp: Input, state: State, ctx: Context) -> Outcome:
        if inp.kind != "text" or not meaningful(inp.text, 2):
            return Retry(Text("error.need_text"))
        if len(inp.text) > MAX_NOTE:
            return Retry(Text("error.too_long", {"max": MAX_NOTE}))
        return Go(None, effects=(Submit(action, {**state.data, key: inp.text.strip()}),))
    return accept


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
    choose("setting", "assess.setting.prompt", SETTING_CHOICES, submit("assess")),
)})

CLOSE = Flow("close", first="outcome", steps={
    "outcome": choose("outcome", "close.prompt", OUTCOME_CHOICES, submit("close"),
                      params=case_params),
})

ASK = Flow("ask", first="question", steps={
    "question": ask_text("question", "ask.prompt", note("ask", "question"), params=case_params),
})

ANSWER = Flow("answer", first="answer", steps={
    "answer": ask_text("answer", "answer.prompt", note("answer", "answer"), params=case_params),
})

HANDOVER = Flow("handover", first="person", steps={
    "person": choose("person", "handover.prompt", team_options, submit("handover"),
                     params=case_params),
})

PROGRESS = Flow("progress", first="milestone", steps={
    "milestone": choose("milestone", "progress.prompt", MILESTONE_CHOICES, submit("progress"),
                        params=case_params),
})
