"""Where to get help: hotlines, the commune officer, trusted addresses, short guidance."""

from __future__ import annotations

from bot.domain.messages import Choice, Reply, Text
from bot.flows.engine import Context, Flow, Go, Outcome, State
from bot.flows.steps import choose

TOPICS = ("hotlines", "officer", "addresses", "abuse", "drowning")
HELP_OPTIONS = (*(Choice(f"help:{t}", Text(f"help.{t}.button")) for t in TOPICS),
                Choice("menu:report", Text("menu.report")))


def answer(topic: str, ctx: Context) -> Reply:
    if topic == "hotlines":
        return Reply((Text("help.hotlines"),), phones=("111", "113", "115"))
    if topic == "officer":
        if not ctx.officer_phone:
            return Reply((Text("help.officer.none"),), phones=("111",))
        return Reply((Text("help.officer", {"phone": ctx.officer_phone,
                                            "commune": ctx.commune_name}),),
                     phones=(ctx.officer_phone,))
    if topic == "addresses":
        if not ctx.trusted_addresses:
            return Reply((Text("help.addresses.none"),))
        return Reply((Text("help.addresses", {"addresses": "\n".join(
            f"• {a}" for a in ctx.trusted_addresses)}),))
    # The drowning advice says to call 115 (an ambulance) first.
    phones = ("115", "111") if topic == "drowning" else ("111",)
    return Reply((Text(f"help.{topic}"),), phones=phones)


def on_topic(picked: str, state: State, ctx: Context) -> Outcome:
    return Go("menu", effects=(answer(picked.split(":", 1)[1], ctx),), remember=False)


HELP = Flow("help", first="menu", steps={
    "menu": choose("menu", "help.prompt", HELP_OPTIONS, on_topic, frozenset({"menu"})),
})
