"""Where an inbound input goes: the one routing table (flow layer, pure).

Commands, menu choices and case buttons are looked up here by the flow engine; an input
that is none of them is a step of the flow the person is in. What needs the database (a
case button, a command a service answers, a press in a group) becomes a typed effect that
the conversation service carries out, checking again who may do it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from bot.domain.messages import Input
from bot.domain.permissions import may_read_statistics
from bot.flows.effects import (
    CalendarCommand,
    CaseButton,
    CreateInvite,
    Effect,
    GroupPress,
    ListCases,
    ShowStatistics,
    StartBroadcast,
)


@dataclass(frozen=True)
class OpenFlow:
    """Start this flow (a report draft in progress is kept aside, or offered back)."""

    flow: str


@dataclass(frozen=True)
class Welcome:
    """/start: the welcome and the menu, or the report draft waiting to be resumed."""


@dataclass(frozen=True)
class Cancel:
    """/cancel: leave the flow, back to the menu."""


@dataclass(frozen=True)
class ServiceCommand:
    """A command a service answers: the effect made of what was typed after it."""

    effect: Callable[[str], Effect]


@dataclass(frozen=True)
class ReportOrStatistics:
    """/report: the case report; with a period, for those who read statistics, the old
    spelling of /stats."""


Target = OpenFlow | Welcome | Cancel | ServiceCommand | ReportOrStatistics

COMMANDS: Final[Mapping[str, Target]] = {
    "start": Welcome(),
    "cancel": Cancel(),
    "help": OpenFlow("help"),
    "status": OpenFlow("status"),
    "lang": OpenFlow("language"),
    "report": ReportOrStatistics(),
    "stats": ServiceCommand(ShowStatistics),
    "calendar": ServiceCommand(CalendarCommand),
    "broadcast": ServiceCommand(StartBroadcast),
    "invite": ServiceCommand(CreateInvite),
    "cases": ServiceCommand(lambda args: ListCases(mine=args.strip().lower() in ("mine", "toi"))),
}

MENU: Final[Mapping[str, str]] = {
    "menu:report": "report", "menu:help": "help", "menu:status": "status",
    "menu:lang": "language",
}
# The staff menu's buttons that a service answers at once.
MENU_EFFECTS: Final[Mapping[str, Effect]] = {
    "menu:my_cases": ListCases(mine=True), "menu:cases": ListCases(mine=False),
}

CASE_BUTTON_PREFIX: Final[str] = "case:"
# A case button's action, and the flow it opens (None: done at once, no flow).
CASE_BUTTONS: Final[Mapping[str, str | None]] = {
    "ack": None, "reply": "answer", "ask": "ask", "handover": "handover", "assess": "assess",
    "progress": "progress", "close": "close", "view": None,
    # The chairman's answer to a request to close (`case:close_ok:<case>:<request>`).
    "close_ok": None, "close_no": None,
}
CLOSE_DECISIONS: Final[frozenset[str]] = frozenset({"close_ok", "close_no"})


def command_target(inp: Input, role: str) -> Target | None:
    """The target of a command; None for a command the bot does not know."""
    target = COMMANDS.get(inp.command)
    if isinstance(target, ReportOrStatistics):
        if inp.args.strip() and may_read_statistics(role):
            return ServiceCommand(ShowStatistics)
        return OpenFlow("report")
    return target


def _number(raw: str) -> int | None:
    return int(raw) if raw.isdigit() and len(raw) < 19 else None


def _case_of(choice: str) -> tuple[str, int | None]:
    _, action, raw_id = [*choice.split(":"), "", ""][:3]
    return action, _number(raw_id)


def case_button(choice: str) -> CaseButton | None:
    if not choice.startswith(CASE_BUTTON_PREFIX):
        return None
    parts = choice.split(":")
    return CaseButton(*_case_of(choice), ref=_number(parts[3]) if len(parts) > 3 else None)


def group_press(inp: Input) -> GroupPress:
    """In a group only alert buttons exist; anything else is a press of nothing."""
    if inp.kind != "choice" or not inp.choice.startswith(CASE_BUTTON_PREFIX):
        return GroupPress("", None)
    return GroupPress(*_case_of(inp.choice))
