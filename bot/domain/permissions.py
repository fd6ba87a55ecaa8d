"""Who may do what: every permission check of SafeChild, in one place.

The services ask these questions with what the database says (a person's role, their
place on a case's team), never with what a button or a message claims.
"""

from __future__ import annotations

from typing import Protocol

from bot.domain.cases import Access
from bot.domain.roles import CASE_HANDLERS, HANDOVER_TARGETS, OFFICE, STAFF, Role
from bot.domain.routing import Routable, matches


class Someone(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def role(self) -> str: ...
    @property
    def commune_id(self) -> int: ...


class SomeCase(Protocol):
    @property
    def assignee_id(self) -> int | None: ...
    @property
    def reporter_id(self) -> int | None: ...


class Tagged(Someone, Routable, Protocol):
    """Someone as routing selectors see them (role, duty, tags)."""


def works_cases(role: str) -> bool:
    """Staff: may be routed cases and act on them."""
    return role in STAFF


def kept_to_limits(role: str) -> bool:
    """The per-sender limits (`[limits]`) hold for citizens, anyone who writes in; the
    commune's own people, staff and village collaborators, may have much to send at once
    (twenty cases to take, a flood's worth of reports)."""
    return role not in STAFF and role != Role.COLLABORATOR


def oversees_communes(person: Someone, province_id: int | None) -> bool:
    """The province's own staff (its child-protection unit, social-work centre, admins):
    they see and act on the cases of every commune of the province, team or not."""
    return (province_id is not None and person.commune_id == province_id
            and works_cases(person.role))


def on_case_team(person: Someone, case: SomeCase, access: str | None) -> bool:
    """The person holds the case, or it was routed to them to act on (`access` is their
    place among the case's recipients, None if they are not one)."""
    if not works_cases(person.role):
        return False
    return case.assignee_id == person.id or access == Access.TEAM


def may_acknowledge(person: Someone, case: SomeCase, access: str | None) -> bool:
    """Take the case from an alert (the first press wins)."""
    return on_case_team(person, case, access)


def may_act_on_case(person: Someone, case: SomeCase, access: str | None) -> bool:
    """Ask the reporter, hand over, assess, record progress, close; open those flows."""
    return on_case_team(person, case, access)


def is_chairman(person: Tagged, chairman: str, commune_id: int) -> bool:
    """The commune's chairman: staff of the commune whom the `[closing]` selector names."""
    return (person.commune_id == commune_id and works_cases(person.role)
            and matches(person, chairman))


def close_needs_chairman(needed: bool, risk: str | None, plan_approved: bool,
                         closer_is_chairman: bool) -> bool:
    """Closing a high-risk case before its support plan is approved waits for the
    chairman's approval (when the commune asks for it: `needed`); the chairman himself
    closes it at once."""
    return needed and risk == "high" and not plan_approved and not closer_is_chairman


def may_decide_close(person: Tagged, chairman: str, commune_id: int) -> bool:
    """Approve or refuse a request to close a case: the chairman only."""
    return is_chairman(person, chairman, commune_id)


def may_see_status(person: Someone, case: SomeCase, access: str | None) -> bool:
    """Look the case up by its code: its reporter and its team."""
    return is_reporter(person, case) or on_case_team(person, case, access)


def is_reporter(person: Someone, case: SomeCase) -> bool:
    """The person who reported the case: they answer the team's questions about it."""
    return case.reporter_id == person.id


def hears_as_reporter(person: Someone) -> bool:
    """A reporter is told how their case goes, unless they work cases themselves."""
    return not works_cases(person.role)


def may_take_from_group(role: str) -> bool:
    """Take a case with the alert group's button."""
    return role in CASE_HANDLERS


def offered_for_handover(role: str) -> bool:
    """Listed as a colleague a case can be handed over to (may_receive_handover checks
    again, with the database, when the case is handed over)."""
    return role in CASE_HANDLERS


def may_receive_handover(person: Someone, commune_id: int) -> bool:
    """Be handed a case: someone of the same commune who works cases."""
    return person.commune_id == commune_id and person.role in HANDOVER_TARGETS


def may_broadcast(role: str) -> bool:
    """Write to every collaborator of the commune."""
    return role in OFFICE


def may_read_statistics(role: str) -> bool:
    """A period's statistics of the commune (/stats)."""
    return role in OFFICE


def may_read_calendar(role: str) -> bool:
    return role in OFFICE


def may_change_calendar(role: str) -> bool:
    """Pause, resume and add calendar events."""
    return role == Role.ADMIN


def may_invite(role: str) -> bool:
    """Make invitation links that give a role."""
    return role == Role.ADMIN
