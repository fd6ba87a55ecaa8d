"""An officer's message to every collaborator of the commune: the text, then a confirmation
that shows it and how many will get it (flow layer).

The host starts this flow only for people who may broadcast and passes `count` (how many
collaborators there are) in the start data; SendBroadcast is checked again when carried out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.domain.messages import Choice, Input, Text
from bot.flows.effects import SendBroadcast
from bot.flows.engine import Context, Flow, Go, Outcome, Retry, State
from bot.flows.steps import ask_text, choose, meaningful

# A Telegram message holds 4,096 characters; the frame around the text needs some of them.
MAX_TEXT = 3000
SEND = Choice("broadcast:send", Text("broadcast.send"))


def text_problem(text: str) -> Text | None:
    """Why this text cannot go out as a broadcast, or None when it can."""
    if not meaningful(text, 2):
        return Text("broadcast.need_text")
    if len(text.strip()) > MAX_TEXT:
        return Text("error.too_long", {"max": MAX_TEXT})
    return None


def on_text(inp: Input, state: State, ctx: Context) -> Outcome:
    if inp.kind != "text":
        return Retry(Text("broadcast.need_text"))
    problem = text_problem(inp.text)
    if problem is not None:
        return Retry(problem)
    return Go("confirm", {"text": inp.text.strip()})


def on_send(picked: str, state: State, ctx: Context) -> Outcome:
    commune = state.data.get("commune_id")
    return Go(None, effects=(SendBroadcast(str(state.data.get("text", "")),
                                           commune if isinstance(commune, int) else None),))


def count_params(state: State, ctx: Context) -> dict[str, Any]:
    return {"count": int(state.data.get("count", 0)), "max": MAX_TEXT}


def confirm_params(state: State, ctx: Context) -> dict[str, Any]:
    return {"count": int(state.data.get("count", 0)), "text": str(state.data.get("text", ""))}


def first_step(data: Mapping[str, Any], ctx: Context) -> str:
    # `/broadcast <text>` typed in one go skips straight to the confirmation.
    return "confirm" if data.get("text") else "text"


BROADCAST = Flow("broadcast", first="text", first_step=first_step, steps={s.id: s for s in (
    ask_text("text", "broadcast.prompt", on_text, frozenset({"confirm"}), params=count_params),
    choose("confirm", "broadcast.confirm", (SEND,), on_send, params=confirm_params),
)})
