"""The case vocabulary: what a report can say and where a case can stand.

Stable keys, stored in the database and used as button ids and catalog ids
(`case_type.<key>`, `urgency.<key>`, `outcome.<key>`, ...); never change one in place.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

# What happened, as the reporter chooses it (and the officer confirms it as a "form").
CASE_TYPES: Final[tuple[str, ...]] = ("violence", "sexual_abuse", "abandonment", "injury",
                                      "exploitation", "trafficking", "child_marriage", "other")
AGE_BANDS: Final[tuple[str, ...]] = ("0-5", "6-10", "11-15", "16-17", "unknown")
SEXES: Final[tuple[str, ...]] = ("girl", "boy", "unknown")
DANGER_ANSWERS: Final[tuple[str, ...]] = ("yes", "no", "unsure")


class Urgency(StrEnum):
    EMERGENCY = "EMERGENCY"
    URGENT = "URGENT"
    STANDARD = "STANDARD"


URGENCIES: Final[tuple[str, ...]] = tuple(u.value for u in Urgency)


class Status(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    ASSESSED = "assessed"
    CLOSED = "closed"


STATUSES: Final[tuple[str, ...]] = tuple(s.value for s in Status)
OUTCOMES: Final[tuple[str, ...]] = ("supported", "referred", "not_confirmed", "duplicate")
RISKS: Final[tuple[str, ...]] = ("low", "medium", "high")
SETTINGS: Final[tuple[str, ...]] = ("family", "school", "community", "online", "other")
# What an officer records as the case moves on; the first four meet a deadline of that name.
MILESTONES: Final[tuple[str, ...]] = ("detailed_assessment", "plan_drafted", "plan_approved",
                                      "review", "visit", "referral")

# The steps a case has a deadline for, in the order they come.
DEADLINE_STEPS: Final[tuple[str, ...]] = ("acknowledge", "initial_assessment",
                                          "detailed_assessment", "plan_drafted",
                                          "plan_approved", "review")
# The deadlines a new case starts with (plan_approved waits for a drafted plan).
FIRST_STEPS: Final[tuple[str, ...]] = ("acknowledge", "initial_assessment",
                                       "detailed_assessment", "plan_drafted", "review")
# The deadline each milestone meets.
MILESTONE_STEPS: Final[dict[str, str]] = {m: m for m in MILESTONES if m in DEADLINE_STEPS}


class Access(StrEnum):
    """How a person stands to a case they were told about."""

    # Sees the details and acts on the case.
    TEAM = "team"
    # The village collaborator: only told that a case exists in their village.
    VILLAGE = "village"


def coarse_status(status: str) -> str:
    """What a reporter is told of their case: received, being handled, or closed."""
    if status == Status.CLOSED:
        return "closed"
    if status == Status.NEW:
        return "received"
    return "handling"
