"""Step builders that make flows read as data: a question, its options, where each leads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.domain.messages import Choice, Input, Reply, RequestKind, Text
from bot.flows.engine import BACK, CANCEL, Context, Go, Outcome, Retry, State, Step, pick

Options = tuple[Choice, ...] | Callable[[State, Context], tuple[Choice, ...]]
ParamsFn = Callable[[State, Context], dict[str, Any]]
# A question's text id, or what chooses it from where the conversation stands.
Prompt = str | Callable[[State, Context], str]


def options_of(options: Options, state: State, ctx: Context) -> tuple[Choice, ...]:
    return options(state, ctx) if callable(options) else options


def nav(state: State) -> tuple[Choice, ...]:
    return (BACK, CANCEL) if state.history else (CANCEL,)


def question(prompt: Prompt, options: Options, params: ParamsFn | None,
             request: RequestKind | None) -> Callable[[State, Context], Reply]:
    """The prompt of a step: its text, its options and the navigation buttons."""

    def ask(state: State, ctx: Context) -> Reply:
        extra = params(state, ctx) if params else {}
        text_id = prompt(state, ctx) if callable(prompt) else prompt
        return Reply((Text(text_id, extra),), options_of(options, state, ctx) + nav(state),
                     request)

    return ask


def choose(
    step_id: str,
    prompt: Prompt,
    options: Options,
    then: Callable[[str, State, Context], Outcome],
    nexts: frozenset[str] = frozenset(),
    params: ParamsFn | None = None,
    other: Callable[[Input, State, Context], Outcome | None] | None = None,
    request: RequestKind | None = None,
) -> Step:
    """A question answered by one of `options`; `other` may accept non-button input."""
    ask = question(prompt, options, params, request)

    def handle(inp: Input, state: State, ctx: Context) -> Outcome:
        picked = pick(inp, options_of(options, state, ctx))
        if picked is not None:
            return then(picked, state, ctx)
        if other is not None:
            outcome = other(inp, state, ctx)
            if outcome is not None:
                return outcome
        if inp.kind == "choice":
            return Retry(Text("error.stale_button"))
        return Retry(Text("error.use_buttons"))

    def typed(state: State, ctx: Context) -> tuple[Choice, ...]:
        return options_of(options, state, ctx)

    return Step(step_id, ask, handle, nexts, typed)


def store(key: str, nxt: str, transform: Callable[[str], Any] | None = None
          ) -> Callable[[str, State, Context], Outcome]:
    """Save the picked option (without its `prefix:`) under `key`, then go to `nxt`."""

    def then(picked: str, state: State, ctx: Context) -> Outcome:
        value = picked.split(":", 1)[1] if ":" in picked else picked
        return Go(nxt, {key: transform(value) if transform else value})

    return then


def ask_text(
    step_id: str,
    prompt: str,
    accept: Callable[[Input, State, Context], Outcome],
    nexts: frozenset[str] = frozenset(),
    options: Options = (),
    params: ParamsFn | None = None,
    request: RequestKind | None = None,
    labels_typed: bool = False,
) -> Step:
    """A question answered in words (or media); `options` such as skip stay available as
    buttons. A typed answer is taken as words, unless `labels_typed`: then typing an
    option's label means that option."""
    ask = question(prompt, options, params, request)

    def handle(inp: Input, state: State, ctx: Context) -> Outcome:
        if inp.kind == "choice" and inp.choice not in {
            c.id for c in options_of(options, state, ctx)
        }:
            return Retry(Text("error.stale_button"))
        return accept(inp, state, ctx)

    def typed(state: State, ctx: Context) -> tuple[Choice, ...]:
        return options_of(options, state, ctx)

    return Step(step_id, ask, handle, nexts, typed if labels_typed else None)


def meaningful(text: str, minimum: int = 3) -> bool:
    """True when the text carries at least `minimum` letters or digits (not just emoji)."""
    return sum(ch.isalnum() for ch in text) >= minimum
