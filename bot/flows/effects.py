"""What a flow asks its host to do besides replying (flow layer): typed effects, each
carried out by the conversation service in one `match` (bot/services/conversation.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.domain.messages import Reply


@dataclass(frozen=True)
class ReportAnswers:
    """Everything the report flow asked, as the reporter answered it."""

    danger: str = "unsure"
    types: tuple[str, ...] = ()
    village: str | None = None
    location_text: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    age_band: str = "unknown"
    sex: str = "unknown"
    child_name: str | None = None
    child_count: int = 1
    description: str | None = None
    photos: tuple[str, ...] = ()
    voice_ref: str | None = None
    anonymous: bool = True
    phone: str | None = None

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> ReportAnswers:
        """From the report flow's collected data (its keys are these fields' names)."""
        return cls(
            danger=str(data.get("danger") or "unsure"),
            types=tuple(t for t in data.get("types", ()) if t),
            village=data.get("village") or None, location_text=data.get("location_text"),
            latitude=data.get("latitude"), longitude=data.get("longitude"),
            age_band=str(data.get("age_band") or "unknown"),
            sex=str(data.get("sex") or "unknown"), child_name=data.get("child_name"),
            child_count=int(data.get("child_count") or 1),
            description=data.get("description"), photos=tuple(data.get("photos", ())),
            voice_ref=data.get("voice_ref"), anonymous=bool(data.get("anonymous", True)),
            phone=data.get("phone"))


@dataclass(frozen=True)
class SetLanguage:
    language: str


@dataclass(frozen=True)
class OpenCase:
    """The reporter confirmed: the report becomes a case, routed to its team. `early`: a
    child in danger now, opened as soon as what and where are known; the rest follows."""

    report: ReportAnswers
    early: bool = False


@dataclass(frozen=True)
class AddToCase:
    """An answer given after an emergency was opened: the case takes it at once. `final`:
    the reporter has said all they will, and the team gets the additions in one message."""

    case_id: int
    report: ReportAnswers
    final: bool = False


@dataclass(frozen=True)
class LookUpStatus:
    code: str


@dataclass(frozen=True)
class CaseButton:
    """A button of a case's message (`case:<action>:<id>`): who may press it is decided
    from the database, never from the button."""

    action: str
    case_id: int | None
    # What in the case the button names, for the buttons that name more than the case (the
    # request a chairman's answer is for).
    ref: int | None = None


@dataclass(frozen=True)
class GroupPress:
    """A button pressed in a group chat: only an alert's take button means anything there."""

    action: str
    case_id: int | None


@dataclass(frozen=True)
class AskReporter:
    case_id: int
    question: str


@dataclass(frozen=True)
class ReporterAnswer:
    case_id: int
    answer: str


@dataclass(frozen=True)
class HandOver:
    case_id: int
    to_person_id: int


@dataclass(frozen=True)
class Assess:
    case_id: int
    risk: str | None
    measures: str
    form: str | None
    setting: str


@dataclass(frozen=True)
class RecordProgress:
    case_id: int
    milestone: str


@dataclass(frozen=True)
class CloseCase:
    case_id: int
    outcome: str
    note: str = ""


@dataclass(frozen=True)
class StartBroadcast:
    """/broadcast [text]: the officer wants to write to every collaborator."""

    text: str


@dataclass(frozen=True)
class SendBroadcast:
    """The officer confirmed the broadcast's text."""

    text: str
    # The commune it was started for (someone in several communes); None: their own.
    commune_id: int | None = None


@dataclass(frozen=True)
class CalendarCommand:
    """/calendar, /calendar pause|resume <key>, /calendar add."""

    args: str


@dataclass(frozen=True)
class AddCalendarEvent:
    title: str
    rule: str
    roles: tuple[str, ...]
    days_before: tuple[int, ...]
    at: str
    # The commune it was started for (someone in several communes); None: their own.
    commune_id: int | None = None


@dataclass(frozen=True)
class ListCases:
    """/cases, or the staff menu: open cases, the person's own (`mine`) or the commune's."""

    mine: bool = False


@dataclass(frozen=True)
class ShowStatistics:
    """/stats <period> (or the old spelling /report <period>)."""

    period: str


@dataclass(frozen=True)
class CreateInvite:
    """/invite <role> [village]."""

    args: str


@dataclass(frozen=True)
class RedeemInvite:
    """/start <code>: a deep link with an invitation code. `welcome`: the home follows,
    built for who the person is once the invitation made them staff."""

    code: str
    welcome: bool = False


@dataclass(frozen=True)
class MakePoster:
    """/poster [commune]: the commune's QR poster, for its admins."""

    args: str


@dataclass(frozen=True)
class FindCommune:
    """Someone says where they live (a typed name, or a shared location): find their
    commune among the province's."""

    text: str = ""
    latitude: float | None = None
    longitude: float | None = None
    then: str | None = None


@dataclass(frozen=True)
class ChooseCommune:
    """The person's commune is this one (a button, or a poster's deep link `c-<code>`);
    `then`: the flow they were starting; `welcome`: the home follows."""

    code: str
    then: str | None = None
    welcome: bool = False


TeamAction = AskReporter | HandOver | Assess | RecordProgress | CloseCase
Effect = (Reply | SetLanguage | OpenCase | AddToCase | LookUpStatus | CaseButton | GroupPress
          | ReporterAnswer | TeamAction | StartBroadcast | SendBroadcast | CalendarCommand
          | AddCalendarEvent | ShowStatistics | CreateInvite | RedeemInvite | ListCases
          | FindCommune | ChooseCommune | MakePoster)


def case_id_of(data: Mapping[str, Any]) -> int:
    """The case a case-team flow was started for (0, which no case has, if it is lost)."""
    try:
        return int(data.get("case_id") or 0)
    except (TypeError, ValueError):
        return 0
