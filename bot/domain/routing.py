"""Triage and routing: which urgency a report gets, and who is told at each level."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar

from bot.domain.commune import CommuneConfig
from bot.domain.roles import Role

URGENT_TYPES = frozenset({"violence", "sexual_abuse", "trafficking"})


class Routable(Protocol):
    @property
    def role(self) -> str: ...
    @property
    def on_duty(self) -> bool: ...
    @property
    def tags(self) -> tuple[str, ...]: ...
    @property
    def village_id(self) -> int | None: ...


P = TypeVar("P", bound=Routable)


def matches(person: Routable, selector: str) -> bool:
    """Selectors: `role`, `role@duty` (on duty), `role#tag` (carries the tag)."""
    role, _, rest = selector.partition("@")
    role, _, tag = role.partition("#")
    if person.role != role:
        return False
    if rest == "duty" and not person.on_duty:
        return False
    return not tag or tag in person.tags


def triage(danger: str, types: Iterable[str], age_band: str) -> str:
    """EMERGENCY if in danger now; URGENT for the gravest harms; STANDARD otherwise."""
    kinds = set(types)
    if danger == "yes":
        return "EMERGENCY"
    if kinds & URGENT_TYPES:
        return "URGENT"
    if "abandonment" in kinds and age_band == "0-5":
        return "URGENT"
    if "injury" in kinds and danger == "unsure":
        return "URGENT"
    return "STANDARD"


def is_police_case(cfg: CommuneConfig, types: Iterable[str], urgency: str) -> bool:
    return urgency == "EMERGENCY" or bool(set(types) & cfg.police_types)


def first_recipients(cfg: CommuneConfig, people: Sequence[P], types: Sequence[str],
                     urgency: str) -> list[P]:
    """Everyone the routing rules select for a new case (level 1)."""
    selectors: list[str] = []
    for rule in cfg.rules:
        if rule.matches(tuple(types), urgency):
            selectors.extend(rule.notify)
    chosen = [p for p in people if any(matches(p, sel) for sel in selectors)]
    if not any(p.role == Role.OFFICER for p in chosen):
        # Nobody on duty: every officer rather than no one.
        chosen.extend(p for p in people if p.role == Role.OFFICER and p not in chosen)
    return chosen


def level_recipients(cfg: CommuneConfig, people: Sequence[P], level: int,
                     police_case: bool) -> list[P]:
    """Everyone at escalation `level` (1-based); police only for police cases."""
    selectors = cfg.levels[min(level, len(cfg.levels)) - 1]
    return [p for p in people
            if any(matches(p, sel) for sel in selectors)
            and (police_case or p.role != Role.POLICE)]


def village_collaborators(people: Sequence[P], village_id: int | None) -> list[P]:
    if village_id is None:
        return []
    return [p for p in people if p.role == Role.COLLABORATOR and p.village_id == village_id]
