"""A province deployment as its files configure it: the province file's name, official code
and province-level people, and one commune configuration per commune file beside it (pure
data; bot/config.py reads and checks the files)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.domain.commune import CommuneConfig, PersonConfig, Retention, SenderLimits
from bot.domain.commune_calendar import CalendarEvent
from bot.domain.delivery import DeliveryPolicy
from bot.domain.top_digest import DigestPace


@dataclass(frozen=True)
class ProvinceConfig:
    # The official name the province file's name was checked against ("Quảng Trị",
    # "Thành phố Hà Nội").
    name: str
    # The statistics office's code of the province (44 for Quảng Trị).
    code: int
    # The province's own people (child-protection unit, social-work centre, administrators):
    # staff who serve every commune of the province; not repeated in the communes' people.
    people: tuple[PersonConfig, ...]
    # In the order of their files' names; each has its official_code, a key, a case-code
    # prefix and an official code unique in the province.
    communes: tuple[CommuneConfig, ...]
    # The file each commune was read from, in the same order (for messages to the operator).
    files: tuple[Path, ...] = ()
    # The province's own reminder calendar (its people's: report deadlines with the
    # province's figures): bot/default_province_calendar.toml merged with the file's own.
    calendar: tuple[CalendarEvent, ...] = ()
    # Titles written in the province file; events without one use `calendar.event.<key>`.
    calendar_titles: Mapping[str, str] = field(default_factory=dict)
    # What one process does for all the communes it serves: ride out a failing channel
    # (the province file's [delivery]) and prune what only served delivery ([retention]).
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    retention: Retention = field(default_factory=Retention)
    limits: SenderLimits = field(default_factory=SenderLimits)
    # How often the province's own people get their digest of the cases that reached them
    # across communes, and when never (the province file's [digest]).
    digest: DigestPace = field(default_factory=DigestPace)

    def commune(self, key: str) -> CommuneConfig | None:
        """The commune with this key (its file's `[commune] key`)."""
        return next((c for c in self.communes if c.key == key), None)

    def commune_by_code(self, official_code: int) -> CommuneConfig | None:
        """The commune with this official code (the `c-<code>` of a deep link)."""
        return next((c for c in self.communes if c.official_code == official_code), None)

    def commune_by_prefix(self, prefix: str) -> CommuneConfig | None:
        """The commune whose case codes start with this prefix (any case)."""
        wanted = prefix.upper()
        return next((c for c in self.communes if c.code_prefix.upper() == wanted), None)
