"""Translation through the gettext catalogs in locales/, and Vietnamese-style formatting.

Catalogs are read from the .po files once at start (Babel's reader), so there is no
compile step to remember. They are package data of `bot.locales` (the top-level locales/
folder of the checkout), found through importlib.resources, so an installed wheel has them.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from babel.dates import format_datetime
from babel.messages.pofile import read_po

from bot.domain.local_time import LOCAL_TZ
from bot.domain.messages import Text

LOCALES: Traversable = files("bot.locales")
DEFAULT_LOCALE = "vi"
DOMAIN = "messages"


def catalog_file(locale: str) -> Traversable:
    return LOCALES / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def catalog(locale: str) -> dict[str, str]:
    path = catalog_file(locale)
    if not path.is_file():
        return {}
    with path.open("rb") as fh:
        po = read_po(fh, locale=locale)
    return {str(m.id): str(m.string) for m in po if m.id and m.string}


@cache
def available_locales() -> tuple[str, ...]:
    return tuple(sorted(p.name for p in LOCALES.iterdir()
                        if p.is_dir() and catalog_file(p.name).is_file()))


def format_when(when: datetime, locale: str = DEFAULT_LOCALE) -> str:
    """22/11/2026 14:05 in Vietnam's time, the form officers write by hand."""
    return format_datetime(when.astimezone(LOCAL_TZ), "dd/MM/yyyy HH:mm", locale=locale)


def t(msgid: str, locale: str = DEFAULT_LOCALE, **params: Any) -> str:
    template = catalog(locale).get(msgid) or catalog(DEFAULT_LOCALE).get(msgid) or msgid
    if not params:
        return template
    rendered = {k: _render_param(v, locale) for k, v in params.items()}
    try:
        return template.format(**rendered)
    except (KeyError, IndexError, ValueError):
        return template


def render(text: Text, locale: str = DEFAULT_LOCALE) -> str:
    return t(text.id, locale, **text.params)


def _render_param(value: Any, locale: str) -> Any:
    if isinstance(value, Text):
        return render(value, locale)
    if isinstance(value, datetime):
        return format_when(value, locale)
    if isinstance(value, list | tuple):
        return ", ".join(str(_render_param(v, locale)) for v in value)
    return value
