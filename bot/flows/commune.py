"""Which commune: asked once of someone a province's bot does not place yet (flow layer).

They type its name (marks, case and small spelling slips do not matter) or share where
they are; the service looks it up among the province's communes and answers with the one
it found, or with buttons when several match.
"""

from __future__ import annotations

from bot.domain.messages import Input, Reply, Text
from bot.flows.effects import ChooseCommune, FindCommune
from bot.flows.engine import CANCEL, Context, Flow, Go, Outcome, Retry, State, Step
from bot.flows.steps import meaningful

PREFIX = "commune:"


def ask(state: State, ctx: Context) -> Reply:
    return Reply((Text("commune.ask", {"province": ctx.province_name}),), (CANCEL,),
                 request="location")


def answer(inp: Input, state: State, ctx: Context) -> Outcome:
    then = state.data.get("then")
    if inp.kind == "choice" and inp.choice.startswith(PREFIX):
        return Go(None, effects=(ChooseCommune(inp.choice.removeprefix(PREFIX)[:64], then),))
    if inp.kind == "location" and inp.latitude is not None and inp.longitude is not None:
        return Go(None, effects=(FindCommune("", inp.latitude, inp.longitude, then),))
    if inp.kind == "text" and meaningful(inp.text, 2):
        return Go(None, effects=(FindCommune(inp.text.strip()[:100], then=then),))
    if inp.kind == "choice":
        return Retry(Text("error.stale_button"))
    return Retry(Text("commune.say_name"))


COMMUNE = Flow("commune", first="ask", steps={"ask": Step("ask", ask, answer)})
