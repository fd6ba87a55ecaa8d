"""What a commune's configuration leaves uncovered (domain layer, pure): a routing or
escalation target nobody answers to, no officer on duty, no police, a village without a
collaborator. `safechild check-config` prints these; none of them stops the bot (a case
still reaches every officer when nobody is on duty), but each is a gap a case can fall in.

Texts are for the operator and name keys, roles and villages, never a person's name or
phone number."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.domain.cases import CODE_RE
from bot.domain.commune import CommuneConfig, PersonConfig
from bot.domain.roles import Role
from bot.domain.routing import matches

NO_OFFICER_ON_DUTY = "no_officer_on_duty"
NO_POLICE = "no_police"
VILLAGE_WITHOUT_COLLABORATOR = "village_without_collaborator"
TARGET_MATCHES_NOBODY = "target_matches_nobody"
PREFIX_NOT_TYPABLE = "prefix_not_typable"


@dataclass(frozen=True)
class Gap:
    kind: str
    # One line for the operator.
    text: str


@dataclass(frozen=True)
class _Routable:
    """A configured person as routing sees one (routing.matches reads no village)."""

    role: str
    on_duty: bool
    tags: tuple[str, ...]
    village_id: int | None = None


def _uses(commune: CommuneConfig) -> dict[str, list[str]]:
    """Every routing target the commune names, with where it names it."""
    uses: dict[str, list[str]] = {}
    for index, rule in enumerate(commune.rules):
        for target in rule.notify:
            uses.setdefault(target, []).append(f"routing rule {index + 1}")
    for index, level in enumerate(commune.levels):
        for target in level:
            uses.setdefault(target, []).append(f"escalation level {index + 1}")
    if commune.closing.high_risk_needs_chairman:
        uses.setdefault(commune.closing.chairman, []).append("closing")
    return uses


def gaps(commune: CommuneConfig, also: Iterable[PersonConfig] = ()) -> tuple[Gap, ...]:
    """What is missing in `commune`, whose cases are also served by the people `also`
    (a province's own people), in a stable order."""
    people = (*commune.people, *also)
    routable = [_Routable(p.role, p.on_duty, p.tags) for p in people]
    found: list[Gap] = []
    if not any(p.role == Role.OFFICER and p.on_duty for p in people):
        officers = sum(p.role == Role.OFFICER for p in people)
        found.append(Gap(NO_OFFICER_ON_DUTY, "no officer on duty (on_duty = true)" + (
            f": new cases go to all {officers} officers" if officers else
            ": there is no officer at all, new cases reach nobody")))
    if not any(p.role == Role.POLICE for p in people):
        found.append(Gap(NO_POLICE, "no police: nobody receives the police cases"))
    for target, where in _uses(commune).items():
        if not any(matches(p, target) for p in routable):
            found.append(Gap(TARGET_MATCHES_NOBODY,
                             f"nobody is {target} ({', '.join(where)})"))
    for key, name in commune.villages:
        if not any(p.role == Role.COLLABORATOR and p.village == key for p in people):
            found.append(Gap(VILLAGE_WITHOUT_COLLABORATOR,
                             f"village {key} ({name}) has no collaborator"))
    if not CODE_RE.match(f"{commune.code_prefix.upper()}-2026-1"):
        found.append(Gap(PREFIX_NOT_TYPABLE,
                         f"case-code prefix {commune.code_prefix!r} is not 1 to 6 letters A-Z: "
                         f"a reporter cannot type such a case code back"))
    return tuple(found)
