"""Typed button labels read back as choice ids (handlers layer).

A reply keyboard sends its buttons' labels back as typed text, and people type a label they
see; the flows only know choice ids, so a channel that renders labels with the catalogs
maps a typed label back to the choice it rendered with that label.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot import i18n
from bot.domain.messages import Choice


def match_label(typed: str, choices: Sequence[Choice], language: str) -> str | None:
    """The id of the choice whose label, in `language`, is what was typed (ignoring case
    and the spaces around it); None when it is none of them."""
    wanted = typed.strip().casefold()
    if not wanted:
        return None
    for choice in choices:
        if i18n.render(choice.label, language).strip().casefold() == wanted:
            return choice.id
    return None
