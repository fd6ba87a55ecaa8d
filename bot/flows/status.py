"""Status lookup by case code, and the language switch."""

from __future__ import annotations

from bot.domain.cases import normalise_code
from bot.domain.messages import Choice, Input, Reply, Text
from bot.flows.effects import LookUpStatus, SetLanguage
from bot.flows.engine import Context, Flow, Go, Outcome, Retry, State
from bot.flows.steps import ask_text, choose


def on_code(inp: Input, state: State, ctx: Context) -> Outcome:
    code = normalise_code(inp.text) if inp.kind == "text" else None
    if code is None:
        return Retry(Text("status.bad_code"))
    return Go(None, effects=(LookUpStatus(code),))


STATUS = Flow("status", first="code", steps={
    "code": ask_text("code", "status.prompt", on_code),
})

LANGUAGE_OPTIONS = (Choice("lang:vi", Text("language.vi")), Choice("lang:en", Text("language.en")))


def on_language(picked: str, state: State, ctx: Context) -> Outcome:
    language = picked.split(":", 1)[1]
    return Go(None, effects=(SetLanguage(language), Reply((Text("language.changed"),))))


LANGUAGE = Flow("language", first="pick", steps={
    "pick": choose("pick", "language.prompt", LANGUAGE_OPTIONS, on_language),
})
