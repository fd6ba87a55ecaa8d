"""Triage and routing: which urgency a report gets, and who is told at each level."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bot.config import CommuneConfig
from bot.services.directory import matches
from storage.models import Person

URGENT_TYPES = frozenset({"violence", "sexual_abuse", "trafficking"})


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


def first_recipients(cfg: CommuneConfig, people: Sequence[Person], types: Sequence[str],
                     urgency: str) -> list[Person]:
    """Everyone the routing rules select for a new case (level 1)."""
    selectors: list[str] = []
    for rule in cfg.rules:
        if rule.matches(tuple(types), urgency):
            selectors.extend(rule.notify)
    chosen = [p for p in people if any(matches(p, sel) for sel in selectors)]
    if not any(p.role == "officer" for p in chosen):
        # Nobody on duty: every officer rather than no one.
        chosen.extend(p for p in people if p.role == "officer" and p not in chosen)
    return chosen


def level_recipients(cfg: CommuneConfig, people: Sequence[Person], level: int,
                     police_case: bool) -> list[Person]:
    """Everyone at escalation `level` (1-based); police only for police cases."""
    selectors = cfg.levels[min(level, len(cfg.levels)) - 1]
    return [p for p in people
            if any(matches(p, sel) for sel in selectors)
            and (police_case or p.role != "police")]


def village_collaborators(people: Sequence[Person], village_id: int | None) -> list[Person]:
    if village_id is None:
        return []
    return [p for p in people if p.role == "collaborator" and p.village_id == village_id]
