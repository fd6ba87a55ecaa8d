"""The case vocabulary: what a report can say and where a case can stand.

Stable keys, stored in the database and used as button ids and catalog ids
(`case_type.<key>`, `urgency.<key>`, `outcome.<key>`, ...); never change one in place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
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


@dataclass(frozen=True)
class Case:
    """A case as the database holds it (storage returns these, never rows)."""

    id: int
    commune_id: int
    code: str
    types: tuple[str, ...]
    urgency: str
    danger: str
    police_case: bool
    status: str
    village_id: int | None
    location_text: str | None
    latitude: float | None
    longitude: float | None
    age_band: str
    sex: str
    child_name: str | None
    child_count: int
    description: str | None
    reporter_id: int | None
    reporter_anonymous: bool
    reporter_phone: str | None
    assignee_id: int | None
    escalation_level: int
    risk: str | None
    measures: str | None
    confirmed_form: str | None
    setting: str | None
    outcome: str | None
    closing_note: str | None
    created_at: datetime
    acknowledged_at: datetime | None
    assessed_at: datetime | None
    closed_at: datetime | None
    version: int

    @property
    def closed(self) -> bool:
        return self.status == Status.CLOSED


@dataclass(frozen=True)
class NewCase:
    """What a confirmed report makes of a case before it has an id."""

    commune_id: int
    code: str
    types: tuple[str, ...]
    urgency: str
    danger: str
    police_case: bool
    village_id: int | None
    location_text: str | None
    latitude: float | None
    longitude: float | None
    age_band: str
    sex: str
    child_name: str | None
    child_count: int
    description: str | None
    reporter_id: int
    reporter_anonymous: bool
    reporter_phone: str | None
    created_at: datetime


@dataclass(frozen=True)
class Deadline:
    """One deadline of a case (acknowledge, assess, plan...): when it is due and when met.
    `version` moves on at every change, so a timer set for an older one does nothing."""

    id: int
    case_id: int
    step: str
    started_at: datetime
    due_at: datetime
    met_at: datetime | None
    version: int


@dataclass(frozen=True)
class Timer:
    """A wake-up for a deadline: a reminder (`remind<v>`), the escalation (`escalate<v>`)
    or a climb because someone cannot be reached (`unreachable<v>`)."""

    id: int
    deadline_id: int
    kind: str
    seq: int
    fire_at: datetime
    deadline_version: int


@dataclass(frozen=True)
class TeamMember:
    """Someone a case was routed to, and how (Access)."""

    case_id: int
    person_id: int
    level: int
    access: str
    alerted_at: datetime


@dataclass(frozen=True)
class Attachment:
    """A photo or voice note of a report, by the reference of the channel it came in on."""

    kind: str
    channel: str
    file_ref: str


CODE_RE: Final = re.compile(r"^[A-Z]{1,6}-\d{4}-\d{1,6}$")


def normalise_code(raw: str) -> str | None:
    """A case code as typed (" vt-2026-0042 "), written the way codes are; None if it is
    not one."""
    code = re.sub(r"\s+", "", raw[:40]).upper()
    return code if CODE_RE.match(code) else None


class Decision(StrEnum):
    """What became of a request to close a case."""

    APPROVED = "approved"
    REFUSED = "refused"
    # The closer asked again before an answer came: the newer request stands.
    REPLACED = "replaced"


@dataclass(frozen=True)
class CloseRequest:
    """A close that waits for the chairman: the outcome and note proposed, by whom, and
    (once answered) the decision. Stored, so a restart loses no request."""

    id: int
    case_id: int
    requested_by: int | None
    outcome: str
    note: str
    requested_at: datetime
    decided_by: int | None
    decision: str | None
    decided_at: datetime | None

    @property
    def pending(self) -> bool:
        return self.decision is None
