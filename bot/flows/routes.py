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

from bot.domain.messages import Choice, Input, Reply, Text
from bot.domain.permissions import (
    may_broadcast,
    may_invite,
    may_read_calendar,
    may_read_statistics,
    works_cases,
)
from bot.flows.effects import (
    CalendarCommand,
    CaseButton,
    CreateInvite,
    Effect,
    GroupPress,
    ListCases,
    MakePoster,
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
    spelling of /stats. Staff are asked which they mean (a new case, their cases, the
    statistics): a questionnaire for citizens is never started unasked."""


@dataclass(frozen=True)
class HelpOrHome:
    """/help: where to get help; for staff, their home (the staff menu)."""


@dataclass(frozen=True)
class Answer:
    """A command answered at once with this reply, nothing else changed."""

    reply: Reply


@dataclass(frozen=True)
class Home:
    """Staff's /help: their menu, with a word on their commands."""


Target = OpenFlow | Welcome | Cancel | ServiceCommand | ReportOrStatistics | HelpOrHome
Routed = OpenFlow | Welcome | Cancel | ServiceCommand | Answer | Home

COMMANDS: Final[Mapping[str, Target]] = {
    "start": Welcome(),
    "cancel": Cancel(),
    "help": HelpOrHome(),
    "status": OpenFlow("status"),
    "lang": OpenFlow("language"),
    # Which commune I am in (a province's bot): asked at the first report, changed here.
    "commune": OpenFlow("commune"),
    "report": ReportOrStatistics(),
    "stats": ServiceCommand(ShowStatistics),
    "calendar": ServiceCommand(CalendarCommand),
    "broadcast": ServiceCommand(StartBroadcast),
    "invite": ServiceCommand(CreateInvite),
    "poster": ServiceCommand(MakePoster),
    "cases": ServiceCommand(lambda args: ListCases(mine=args.strip().lower() in ("mine", "toi"))),
}

MENU: Final[Mapping[str, str]] = {
    "menu:report": "report", "menu:help": "help", "menu:status": "status",
    "menu:lang": "language",
}
# The staff menu's buttons that a service answers at once: each does what its command
# does with nothing typed after it (the service checks again who may).
MENU_EFFECTS: Final[Mapping[str, Effect]] = {
    "menu:my_cases": ListCases(mine=True), "menu:cases": ListCases(mine=False),
    "menu:stats": ShowStatistics(""), "menu:broadcast": StartBroadcast(""),
    "menu:calendar": CalendarCommand(""),
}
# A period's button under /stats: the statistics of that period (`stats:2026-Q2`).
STATS_PREFIX: Final[str] = "stats:"


def menu_effect(choice: str) -> Effect | None:
    """What a staff menu button (or a period's button) asks a service for; None if none."""
    if choice.startswith(STATS_PREFIX):
        return ShowStatistics(choice.removeprefix(STATS_PREFIX))
    return MENU_EFFECTS.get(choice)


# The commands a channel's command menu lists (Telegram's setMyCommands), in this order;
# each has a short description "command.<name>" in the catalogs.
EVERYONE_COMMANDS: Final[tuple[str, ...]] = ("start", "report", "status", "help", "lang",
                                             "cancel")


def command_menu(role: str) -> tuple[str, ...]:
    """The commands someone with `role` has: everyone's, and for staff what their role
    may use as well."""
    if not works_cases(role):
        return EVERYONE_COMMANDS
    office = (*(("stats",) if may_read_statistics(role) else ()),
              *(("broadcast",) if may_broadcast(role) else ()),
              *(("calendar",) if may_read_calendar(role) else ()),
              *(("invite",) if may_invite(role) else ()))
    return ("start", "cases", "report", *office, "status", "help", "lang", "cancel")


def which_report(role: str) -> Reply:
    """/report typed by staff: a new case, the follow-up of their cases, or (for those who
    read them) the statistics."""
    choices = [Choice("menu:report", Text("menu.report_new")),
               Choice("menu:my_cases", Text("menu.my_cases"))]
    if may_read_statistics(role):
        choices.append(Choice("menu:stats", Text("menu.stats")))
    return Reply((Text("report.which"),), tuple(choices))

CASE_BUTTON_PREFIX: Final[str] = "case:"
# A case button's action, and the flow it opens (None: done at once, no flow).
CASE_BUTTONS: Final[Mapping[str, str | None]] = {
    "ack": None, "reply": "answer", "ask": "ask", "handover": "handover", "assess": "assess",
    "progress": "progress", "close": "close", "view": None,
    # The chairman's answer to a request to close (`case:close_ok:<case>:<request>`).
    "close_ok": None, "close_no": None,
}
CLOSE_DECISIONS: Final[frozenset[str]] = frozenset({"close_ok", "close_no"})


def command_target(inp: Input, role: str) -> Routed | None:
    """The target of a command; None for a command the bot does not know."""
    target = COMMANDS.get(inp.command)
    if isinstance(target, ReportOrStatistics):
        if inp.args.strip() and may_read_statistics(role):
            return ServiceCommand(ShowStatistics)
        if works_cases(role):
            return Answer(which_report(role))
        return OpenFlow("report")
    if isinstance(target, HelpOrHome):
        return Home() if works_cases(role) else OpenFlow("help")
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
