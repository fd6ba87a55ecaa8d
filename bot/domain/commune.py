"""The commune as its file configures it: villages, people, routing rules, deadlines, the
escalation chain and the calendar (pure data; bot/config.py reads and checks the file)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta

from bot.domain.commune_calendar import CalendarEvent
from bot.domain.delivery import DeliveryPolicy
from bot.domain.top_digest import DigestPace
from bot.domain.work_hours import Duration

# Also the order in which a person's equally recent channels are preferred (outbox).
CHANNELS: tuple[str, ...] = ("telegram", "zalo", "web")


@dataclass(frozen=True)
class PersonConfig:
    key: str
    role: str
    name: str
    phone: str | None = None
    village: str | None = None
    on_duty: bool = False
    tags: tuple[str, ...] = ()
    language: str = "vi"
    telegram_id: str | None = None
    zalo_id: str | None = None
    # Where alerts go first when the person can be reached on several channels.
    prefers: str | None = None


@dataclass(frozen=True)
class RoutingRule:
    types: tuple[str, ...]
    urgency: tuple[str, ...]
    notify: tuple[str, ...]

    def matches(self, types: tuple[str, ...], urgency: str) -> bool:
        type_ok = "*" in self.types or any(t in self.types for t in types)
        return type_ok and ("*" in self.urgency or urgency in self.urgency)


@dataclass(frozen=True)
class Retention:
    """How long what only served delivery is kept, and a closed case's free text (the
    commune file's `[retention]`)."""

    # Outbox messages once sent (or skipped, or failed for good), timers once fired.
    delivered_days: int = 30
    # Statistics files (the period reports' workbooks and charts) and their download links.
    files_days: int = 7
    # The free text of a closed case (description, child's name, notes, reporter's phone,
    # attachments' references); its structured fields stay, so statistics do not change.
    # Decided per commune, even in a province.
    closed_case_text_days: int = 730
    # The web simulator's chat log (it shows everything people typed).
    simulator_days: int = 7

    @property
    def delivered(self) -> timedelta:
        return timedelta(days=self.delivered_days)

    @property
    def files(self) -> timedelta:
        return timedelta(days=self.files_days)

    @property
    def closed_case_text(self) -> timedelta:
        return timedelta(days=self.closed_case_text_days)

    @property
    def simulator(self) -> timedelta:
        return timedelta(days=self.simulator_days)


@dataclass(frozen=True)
class SenderLimits:
    """How much one sender may send before the bot slows them down (the file's
    `[limits]`): defaults a villager never meets, so that one account flooding the bot
    cannot bury everyone else's reports and replies."""

    # Reports one person opens in an hour; past it, their further reports still become
    # cases, and the team gets one alert for them all (an emergency always its own).
    reports_per_hour: int = 5
    # Messages one person sends in a minute; past it, what they send is still taken in,
    # and they are told once to slow down instead of being answered each time.
    messages_per_minute: int = 30


@dataclass(frozen=True)
class Closing:
    """Who must agree before a case closes (the commune file's `[closing]`)."""

    # Closing a case assessed at high risk whose support plan is not approved yet needs the
    # chairman's approval (Decree 56: the chairman approves the plan, Art. 28, and hears of
    # the close, Art. 30); the chairman closes one at once. On unless the file says false.
    high_risk_needs_chairman: bool = True
    # Who the chairman is, as a routing selector (`role#tag`).
    chairman: str = "leader#chairman"


@dataclass(frozen=True)
class Privacy:
    """How much of a case may leave the bot's hands (the commune file's `[privacy]`)."""

    # Alerts and case cards on Telegram cannot be forwarded or saved (protect_content).
    protect_content: bool = True


@dataclass(frozen=True)
class CommuneConfig:
    key: str
    name: str
    code_prefix: str
    officer_phone: str
    trusted_addresses: tuple[str, ...]
    working_hours: tuple[time, time]
    villages: tuple[tuple[str, str], ...]
    people: tuple[PersonConfig, ...]
    rules: tuple[RoutingRule, ...]
    police_types: frozenset[str]
    tell_village_collaborator: bool
    deadlines: Mapping[str, Mapping[str, Duration]]
    levels: tuple[tuple[str, ...], ...]
    reminders_at: tuple[float, ...] = field(default=(0.5, 0.9))
    # How often the top of the chain hears of the cases still waiting on it, and when not.
    top_digest: DigestPace = field(default_factory=DigestPace)
    # A Telegram group of the commune's officers and police that gets every new alert.
    telegram_alert_group: str | None = None
    # Reminder calendar: the default events (unless dropped) merged with the commune's own.
    calendar: tuple[CalendarEvent, ...] = ()
    # Titles written in the commune file; events without one use `calendar.event.<key>`.
    calendar_titles: Mapping[str, str] = field(default_factory=dict)
    retention: Retention = field(default_factory=Retention)
    limits: SenderLimits = field(default_factory=SenderLimits)
    # How the outbox rides out a failing channel ([delivery]).
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    # Who must agree before a case closes ([closing]).
    closing: Closing = field(default_factory=Closing)
    privacy: Privacy = field(default_factory=Privacy)
    # The statistics office's code of the commune (`[commune] code`, bot/official_units.py):
    # required and checked against the province's list in a province's commune files;
    # optional in a single commune file (checked against its name when given).
    official_code: int | None = None
    # Where villages are (latitude, longitude in degrees), by village key, for those the
    # file gives them for: a citizen who shares their location finds their commune by them.
    village_points: Mapping[str, tuple[float, float]] = field(default_factory=dict)
