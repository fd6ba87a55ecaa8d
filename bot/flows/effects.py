"""What a flow asks its host to do besides replying (flow layer)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.domain.messages import Reply


@dataclass(frozen=True)
class Submit:
    """An effect: the host must carry out an action (open a case, acknowledge, ...)."""

    action: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class SetLanguage:
    language: str


Effect = Reply | Submit | SetLanguage
