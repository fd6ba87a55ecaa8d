"""What a person typed, the same on every channel (handlers layer: the channels share it)."""

from __future__ import annotations

from bot.domain.messages import Input

MAX_COMMAND = 32


def typed_input(text: str, max_text: int | None = None) -> Input:
    """`/report 2026-Q2` is a command (`/report@SafeChildBot …` too, as Telegram groups
    write it); anything else is text, cut at `max_text`."""
    if text.startswith("/") and len(text) > 1:
        command, _, args = text[1:].partition(" ")
        return Input("command", command=command.split("@")[0].lower()[:MAX_COMMAND],
                     args=args)
    return Input("text", text=text if max_text is None else text[:max_text])
