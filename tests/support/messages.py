"""Naming the message a channel showed, where the channel's fake only sees text (Telegram,
Zalo): the test says which catalog message it means, not some words of it."""

from __future__ import annotations

from typing import Any

from bot import i18n


def shows(text: str, msgid: str, locale: str = "vi", **params: Any) -> bool:
    """`text` carries message `msgid` as the catalog renders it with `params`."""
    rendered = i18n.t(msgid, locale, **params)
    assert rendered != msgid, f"{msgid} is not in the {locale} catalog"
    return rendered in text
