"""The pure flow engine: step(flows, state, input, ctx) -> (new state, effects) (flow layer).

A flow is data: named steps, each with a prompt and an input handler. The engine owns what is
common to every flow: routing commands, menu choices and case buttons (bot/flows/routes.py),
back, cancel, kind re-prompts on unexpected input. It does no I/O and never sees a button's
label: a channel turns a typed label back into the choice id it rendered (`typed_choices`
says which choices a typed answer may mean). The host saves the state and carries out the
effects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bot.domain.cases import normalise_code
from bot.domain.commune_links import commune_code_of
from bot.domain.distress import sounds_like_danger
from bot.domain.messages import Choice, Input, Reply, Text, say
from bot.domain.permissions import (
    may_broadcast,
    may_read_calendar,
    may_read_statistics,
    works_cases,
)
from bot.flows.effects import (
    AddToCase,
    ChooseCommune,
    Effect,
    LookUpStatus,
    RedeemInvite,
    ReportAnswers,
)
from bot.flows.routes import (
    MENU,
    Answer,
    Cancel,
    Home,
    OpenFlow,
    ServiceCommand,
    Welcome,
    case_button,
    command_target,
    group_press,
    menu_effect,
)


@dataclass(frozen=True)
class Context:
    """What a flow may know about the person and the commune; built by the host."""

    role: str = "citizen"
    language: str = "vi"
    villages: tuple[tuple[str, str], ...] = ()
    own_village: str | None = None
    team: tuple[tuple[str, str], ...] = ()
    officer_phone: str = ""
    trusted_addresses: tuple[str, ...] = ()
    commune_name: str = ""
    languages: tuple[str, ...] = ("vi", "en")
    # The input came from a group chat (the alert group), not a private one.
    in_group: bool = False
    # The person's very first message to the bot (nothing was said to them yet).
    first_contact: bool = False
    # A province's bot that does not know the person's commune yet: a report asks it first.
    # (The province's own people have none either: their calendar is the province's.)
    needs_commune: bool = False
    province_name: str = ""


@dataclass(frozen=True)
class State:
    flow: str | None = None
    step: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    history: tuple[str, ...] = ()
    # A half-filled report set aside while the person asks for help or checks a status.
    parked: Mapping[str, Any] | None = None
    # What a button that made something (a report's Confirm) answers when pressed again:
    # choice id -> the Reply as JSON. Pressed twice, it makes nothing twice.
    done: Mapping[str, Any] = field(default_factory=dict)

    @property
    def idle(self) -> bool:
        return self.flow is None

    @property
    def report_draft(self) -> State | None:
        if self.flow == "report" and self.step == "resume":
            # Offered for resuming: still the draft, at the step it was left at.
            data = dict(self.data)
            resume_to = data.pop("resume_to", None) or "danger"
            return State("report", resume_to, data, self.history)
        if self.flow == "report" and self.step is not None:
            return replace(self, parked=None, done={})
        if self.parked:
            return State.from_json(self.parked)
        return None

    def to_json(self) -> dict[str, Any]:
        raw: dict[str, Any] = {"flow": self.flow, "step": self.step, "data": dict(self.data),
                               "history": list(self.history), "parked": self.parked}
        if self.done:
            raw["done"] = dict(self.done)
        return raw

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> State:
        if not raw:
            return cls()
        return cls(raw.get("flow"), raw.get("step"), dict(raw.get("data") or {}),
                   tuple(raw.get("history") or ()), raw.get("parked"),
                   dict(raw.get("done") or {}))


@dataclass(frozen=True)
class Go:
    """Accept the input: merge `data`, say `replies`, move to `next` (None ends the flow)."""

    next: str | None
    data: Mapping[str, Any] = field(default_factory=dict)
    effects: tuple[Effect, ...] = ()
    remember: bool = True
    # Nothing before this step can be changed any more (an emergency was opened): "back"
    # stops here.
    forget: bool = False


@dataclass(frozen=True)
class Retry:
    """Refuse the input kindly: say why, then ask the same question again."""

    reason: Text


Outcome = Go | Retry
Prompt = Callable[[State, Context], Reply]
Handler = Callable[[Input, State, Context], Outcome]


@dataclass(frozen=True)
class Step:
    id: str
    prompt: Prompt
    handle: Handler
    nexts: frozenset[str] = frozenset()
    # The choices a typed answer may name by their label (besides back and cancel).
    typed: Callable[[State, Context], tuple[Choice, ...]] | None = None


@dataclass(frozen=True)
class Flow:
    id: str
    first: str
    steps: Mapping[str, Step]
    # Computes the starting data, e.g. a pre-filled village for a collaborator.
    start_data: Callable[[Context, Mapping[str, Any]], Mapping[str, Any]] | None = None
    first_step: Callable[[Mapping[str, Any], Context], str] | None = None

    def validate(self) -> None:
        if self.first not in self.steps:
            raise ValueError(f"flow {self.id}: first step {self.first!r} is missing")
        for step in self.steps.values():
            for nxt in step.nexts:
                if nxt not in self.steps:
                    raise ValueError(f"flow {self.id}: step {step.id} goes to unknown {nxt!r}")


class FlowBook:
    """All flows by id, validated once when loaded."""

    def __init__(self, flows: list[Flow]) -> None:
        self.flows = {f.id: f for f in flows}
        for f in flows:
            f.validate()

    def __getitem__(self, flow_id: str) -> Flow:
        return self.flows[flow_id]


BACK = Choice("back", Text("button.back"))
CANCEL = Choice("cancel", Text("button.cancel"))


def main_menu(ctx: Context, *lead: Text) -> Reply:
    """The person's own home: staff see their cases and the commune's first, then report,
    and what their role may use (statistics, broadcast, calendar); "report" is first for
    everyone else."""
    if works_cases(ctx.role):
        office = (
            *([Choice("menu:stats", Text("menu.stats"))]
              if may_read_statistics(ctx.role) else []),
            *([Choice("menu:broadcast", Text("menu.broadcast"))]
              if may_broadcast(ctx.role) else []),
            *([Choice("menu:calendar", Text("menu.calendar"))]
              if may_read_calendar(ctx.role) else []),
        )
        return Reply((*lead, Text("menu.prompt")), (
            Choice("menu:my_cases", Text("menu.my_cases")),
            Choice("menu:cases", Text("menu.cases")),
            Choice("menu:report", Text("menu.report")),
            *office,
            Choice("menu:help", Text("menu.help")),
            Choice("menu:lang", Text("menu.lang")),
        ))
    return Reply(
        (*lead, Text("menu.prompt")),
        (
            Choice("menu:report", Text("menu.report")),
            Choice("menu:help", Text("menu.help")),
            Choice("menu:status", Text("menu.status")),
            Choice("menu:lang", Text("menu.lang")),
        ),
    )


def start(book: FlowBook, flow_id: str, ctx: Context, data: Mapping[str, Any] | None = None,
          current: State | None = None) -> tuple[State, list[Effect]]:
    """Start a flow; a report draft in progress is kept aside, or offered for resuming."""
    draft = current.report_draft if current else None
    if flow_id == "report" and draft is not None:
        resumed = State("report", "resume", {**draft.data, "resume_to": draft.step},
                        draft.history)
        return resumed, [prompt_of(book, resumed, ctx)]
    if flow_id == "report" and ctx.needs_commune and "commune" in book.flows:
        if works_cases(ctx.role):
            # The province's own staff belong to no commune: a case is the commune's to
            # open (its villages, team and code), so they are pointed there, nothing typed
            # yet to lose.
            return current or State(), [main_menu(ctx, Text("report.province_staff"))]
        # The villages, the team and the case code are the commune's: it comes first.
        flow_id, data = "commune", {"then": "report"}
    flow = book[flow_id]
    base = dict(data or {})
    if flow.start_data:
        base.update(flow.start_data(ctx, base))
    first = flow.first_step(base, ctx) if flow.first_step else flow.first
    parked = draft.to_json() if draft is not None else None
    state = State(flow_id, first, base, (), parked, current.done if current else {})
    return state, [flow.steps[first].prompt(state, ctx)]


def prompt_of(book: FlowBook, state: State, ctx: Context) -> Reply:
    assert state.flow and state.step
    return book[state.flow].steps[state.step].prompt(state, ctx)


def typed_choices(book: FlowBook, state: State, ctx: Context) -> tuple[Choice, ...]:
    """The choices a typed answer may mean right now: back and cancel everywhere, and what
    the current step lets people type (its buttons, for a question answered by buttons)."""
    found: tuple[Choice, ...] = (BACK, CANCEL)
    flow = book.flows.get(state.flow) if state.flow else None
    current = flow.steps.get(state.step) if flow and state.step else None
    if current is not None:
        if current.typed is not None:
            found = (*current.typed(state, ctx), *found)
    return found


def step(book: FlowBook, state: State, inp: Input, ctx: Context) -> tuple[State, list[Effect]]:
    """Advance the conversation by one input."""
    if ctx.in_group:
        return state, [group_press(inp)]
    if inp.kind == "command":
        return _on_command(book, state, inp, ctx)
    if inp.kind == "choice":
        button = case_button(inp.choice)
        if button is not None:
            return state, [button]
        if inp.choice == "cancel":
            return _cancel(state, ctx)
        if inp.choice in MENU:
            return start(book, MENU[inp.choice], ctx, current=state)
        effect = menu_effect(inp.choice)
        if effect is not None and works_cases(ctx.role):
            return state, [effect]
        if inp.choice in state.done and inp.choice not in _offered(book, state, ctx):
            # A button that made something, pressed again (a double tap, a redelivered
            # press): the same answer, nothing made twice.
            return state, [Reply.from_json(state.done[inp.choice])]
    if state.idle or state.flow not in book.flows or state.step not in book[state.flow].steps:
        return _idle(book, state, inp, ctx)
    if inp.kind == "choice" and inp.choice == "back":
        return _back(book, state, ctx)
    flow = book[state.flow]
    here = state.step or flow.first
    current = flow.steps[here]
    outcome = current.handle(inp, state, ctx)
    if isinstance(outcome, Retry):
        return state, [Reply((outcome.reason,)), current.prompt(state, ctx)]
    data = {**state.data, **outcome.data}
    effects: list[Effect] = list(outcome.effects)
    if outcome.next is None:
        after = State(parked=state.parked, done=state.done)
        if after.parked:
            effects.append(_offer_resume())
        return after, effects
    if outcome.forget:
        history: tuple[str, ...] = ()
    else:
        history = (*state.history, here) if outcome.remember else state.history
    new_state = replace(state, step=outcome.next, data=data, history=history)
    effects.append(flow.steps[outcome.next].prompt(new_state, ctx))
    return new_state, effects


def _on_command(book: FlowBook, state: State, inp: Input,
                ctx: Context) -> tuple[State, list[Effect]]:
    target = command_target(inp, ctx.role)
    if isinstance(target, Cancel):
        return _cancel(state, ctx)
    if isinstance(target, Welcome):
        # A deep link (/start <code>) carries an invitation, or a commune's poster's code
        # (`c-<commune>`); its answer comes first.
        commune = commune_code_of(inp.args.strip())
        lead: list[Effect] = ([ChooseCommune(commune)] if commune is not None
                              else [RedeemInvite(inp.args.strip())] if inp.args.strip()
                              else [])
        if state.report_draft is not None:
            resumed, effects = start(book, "report", ctx, current=state)
            return resumed, [*lead, *effects]
        if commune is not None:  # the person is of that commune now: its home follows
            return State(done=state.done), [ChooseCommune(commune, welcome=True)]
        if lead:
            return State(done=state.done), [RedeemInvite(inp.args.strip(), welcome=True)]
        welcome = main_menu(ctx, Text("welcome", {"commune": ctx.commune_name}))
        return State(done=state.done), [*lead, welcome]
    if isinstance(target, OpenFlow):
        return start(book, target.flow, ctx, current=state)
    if isinstance(target, Answer):
        return state, [target.reply]
    if isinstance(target, Home):
        # Like the help flow, it leaves the question they were at; a report draft is kept.
        draft = state.report_draft
        kept = State(parked=draft.to_json() if draft is not None else None, done=state.done)
        offer = [_offer_resume()] if draft is not None else []
        return kept, [main_menu(ctx, Text("help.staff")), *offer]
    if isinstance(target, ServiceCommand):
        return state, [target.effect(inp.args)]
    unknown = Text("error.unknown_command", {"command": inp.command[:32]})
    if state.idle:
        return _idle(book, state, inp, ctx, lead=unknown)
    return state, [Reply((unknown,)), prompt_of(book, state, ctx)]


# The numbers a person who may be frightened sees first, as call buttons where the channel
# has them: the child-protection hotline, the police, the ambulance.
HOTLINES = ("111", "113", "115")


def _idle(book: FlowBook, state: State, inp: Input, ctx: Context,
          lead: Text | None = None) -> tuple[State, list[Effect]]:
    """What someone writes outside any question. The first message ever gets the welcome;
    words of danger go straight to the report's first question; a case code is looked up;
    anything else leads with the emergency numbers, "report" first among the buttons."""
    kept = State(parked=state.parked, done=state.done)
    text = inp.text if inp.kind == "text" else ""
    if text and sounds_like_danger(text):
        opened, effects = start(book, "report", ctx, current=state)
        *before, question = effects
        if isinstance(question, Reply):  # one message: the numbers, then the question
            question = replace(question, texts=(Text("distress.heard"), *question.texts),
                               phones=HOTLINES)
        return opened, [*before, question]
    if ctx.first_contact:
        return kept, [main_menu(ctx, Text("welcome", {"commune": ctx.commune_name}))]
    code = normalise_code(text) if text else None
    if code is not None:
        return kept, [LookUpStatus(code)]
    menu = main_menu(ctx, Text("error.call_now"), lead or Text("error.not_understood"))
    return kept, [replace(menu, phones=HOTLINES)]


def _offer_resume() -> Reply:
    return Reply((Text("report.draft_waiting"),), (Choice("menu:report", Text("menu.resume")),))


def _offered(book: FlowBook, state: State, ctx: Context) -> set[str]:
    """The choice ids the current step's question offers."""
    flow = book.flows.get(state.flow) if state.flow else None
    if flow is None or state.step not in flow.steps:
        return set()
    return {c.id for c in prompt_of(book, state, ctx).choices}


def _cancel(state: State, ctx: Context) -> tuple[State, list[Effect]]:
    opened = state.data.get("case_id") if state.flow == "report" else None
    if opened:
        # An emergency already went to the team: stopping the questions is no "cancel",
        # the case stays, and what was said so far reaches the team.
        return State(parked=state.parked, done=state.done), [
            AddToCase(int(opened), ReportAnswers.of(state.data), final=True)]
    if state.idle and not state.parked:
        return State(done=state.done), [main_menu(ctx)]
    if state.flow == "report" and state.step == "resume" and state.report_draft is not None:
        # "Not now" to resuming is no "start over": the draft stays until they say so.
        return (State(parked=state.report_draft.to_json(), done=state.done),
                [main_menu(ctx, Text("flow.cancelled")), _offer_resume()])
    if state.flow not in (None, "report") and state.parked:
        # Leaving help or status keeps the report draft that was set aside.
        return State(parked=state.parked, done=state.done), [
            main_menu(ctx, Text("flow.cancelled")), _offer_resume()]
    return State(done=state.done), [main_menu(ctx, Text("flow.cancelled"))]


def _back(book: FlowBook, state: State, ctx: Context) -> tuple[State, list[Effect]]:
    if not state.history:
        return state, [prompt_of(book, state, ctx)]
    previous = state.history[-1]
    new_state = replace(state, step=previous, history=state.history[:-1])
    return new_state, [prompt_of(book, new_state, ctx)]


__all__ = ["BACK", "CANCEL", "Context", "Flow", "FlowBook", "Go", "Retry", "State", "Step",
           "main_menu", "pick", "say", "start", "step", "typed_choices"]


def pick(inp: Input, options: tuple[Choice, ...]) -> str | None:
    """The option the person chose: a tapped button (or its label typed, which the channel
    turned into the button's id), or its number typed."""
    ids = {c.id for c in options}
    if inp.kind == "choice":
        return inp.choice if inp.choice in ids else None
    if inp.kind != "text":
        return None
    typed = inp.text.strip()
    if typed.isdigit():
        index = int(typed) - 1
        return options[index].id if 0 <= index < len(options) else None
    return None
