"""Which commune a command is for, asked of someone who works in several (flow layer).

An admin of two communes who types `/invite officer` or `/broadcast <text>` without naming
one is asked which; what they typed waits here, in the conversation, and the commune they
pick is put where the command reads a commune's name, so the command then goes on as if
they had typed it. The host checks their role in the commune picked, as for any command.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from bot.domain.messages import Choice, Text
from bot.flows.effects import (
    CalendarCommand,
    CreateInvite,
    Effect,
    MakePoster,
    StartBroadcast,
)
from bot.flows.engine import Context, Flow, Go, Outcome, State
from bot.flows.steps import choose

PREFIX: Final[str] = "place:"
PlacedCommand = StartBroadcast | CreateInvite | MakePoster | CalendarCommand


# Per command: the effect it makes, and after how many of its words a commune's name goes
# (`/invite <role> <commune> [village]`; the others take it first).
COMMANDS: Final[Mapping[str, tuple[Callable[[str], Effect], int]]] = {
    "broadcast": (StartBroadcast, 0),
    "invite": (CreateInvite, 1),
    "poster": (MakePoster, 0),
    "calendar": (CalendarCommand, 0),
}


def command_of(effect: PlacedCommand) -> tuple[str, str]:
    """The command's name and what was typed after it."""
    match effect:
        case StartBroadcast(text=text):
            return "broadcast", text
        case CreateInvite(args=args):
            return "invite", args
        case MakePoster(args=args):
            return "poster", args
        case CalendarCommand(args=args):
            return "calendar", args


def with_commune(command: str, args: str, commune: str) -> str:
    """The command's words with the commune's name put where the command reads it."""
    _, skip = COMMANDS[command]
    words = args.split(" ")
    head, rest = words[:skip], words[skip:]
    return " ".join(w for w in (*head, commune, *rest) if w)


def options(state: State, ctx: Context) -> tuple[Choice, ...]:
    return tuple(Choice(f"{PREFIX}{code}", Text("raw", {"text": name}))
                 for code, name in state.data.get("places", ()))


def on_pick(picked: str, state: State, ctx: Context) -> Outcome:
    command = str(state.data.get("command", ""))
    if command not in COMMANDS:
        return Go(None)
    make, _ = COMMANDS[command]
    code = picked.removeprefix(PREFIX)
    return Go(None, effects=(make(with_commune(command, str(state.data.get("args", "")),
                                               code)),))


PLACE = Flow("place", first="where", steps={s.id: s for s in (
    choose("where", "place.which", options, on_pick),
)})
