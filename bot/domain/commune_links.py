"""A commune's own entry into the province bot (domain layer, pure): the Telegram deep link
`https://t.me/<bot>?start=c-<commune code>` printed on its posters, and reading the
commune back out of the `/start` payload it brings.

Telegram passes the payload through as it is: up to 64 characters of A-Z, a-z, 0-9, _ and
-. Anyone can type any payload, so reading one checks it fully; whether the code is one of
the province's communes is the caller's question (the configuration knows).
"""

from __future__ import annotations

import re

PREFIX = "c-"
MAX_PAYLOAD = 64
_PAYLOAD = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CODE = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_PAYLOAD - len(PREFIX)}}}")
# Telegram usernames: 5 to 32 letters, digits and underscores, starting with a letter; a
# bot's ends in "bot".
_BOT = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")


def start_payload(commune_code: str) -> str:
    """"c-19189" for commune 19189; ValueError for a code no payload can carry."""
    if not _CODE.fullmatch(commune_code):
        raise ValueError(f"commune code {commune_code!r} cannot be a Telegram start payload "
                         f"(1-{MAX_PAYLOAD - len(PREFIX)} characters of A-Z a-z 0-9 _ -)")
    return PREFIX + commune_code


def commune_code_of(payload: str | None) -> str | None:
    """The commune code a `/start` payload names, or None if it names none (no payload,
    another kind of link such as an invitation, or anything forged)."""
    if payload is None or not _PAYLOAD.fullmatch(payload) or not payload.startswith(PREFIX):
        return None
    return payload[len(PREFIX):] or None


def deep_link(bot_username: str, commune_code: str) -> str:
    """https://t.me/<bot>?start=c-<code>; ValueError for a username Telegram would not give
    a bot (a leading @ is allowed) or a code no payload can carry."""
    name = bot_username.removeprefix("@")
    if not (_BOT.fullmatch(name) and name.casefold().endswith("bot")):
        raise ValueError(f"{bot_username!r} is not a Telegram bot's username")
    return f"https://t.me/{name}?start={start_payload(commune_code)}"
