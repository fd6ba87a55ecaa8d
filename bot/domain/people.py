"""People as the database knows them, and their addresses on the channels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Person:
    id: int
    commune_id: int
    # The commune file's key for configured people; None for walk-in citizens.
    key: str | None
    role: str
    name: str
    phone: str | None
    language: str
    village_id: int | None
    on_duty: bool
    tags: tuple[str, ...]
    # The channel alerts try first (commune file `prefers`); None: the one last used.
    preferred_channel: str | None
    # Someone with roles in several communes has a row in each: every row but the first
    # names the first, the account, which alone holds their channel addresses.
    account_id: int | None = None

    @property
    def account(self) -> int:
        """The account this row belongs to: the same for all of one person's rows."""
        return self.account_id if self.account_id is not None else self.id


@dataclass(frozen=True)
class Identity:
    """A person's address on one channel (a Telegram user id, a Zalo user id, a web phone)."""

    id: int
    person_id: int
    channel: str
    external_id: str
    unreachable_at: datetime | None
    last_seen_at: datetime | None
    # The messaging window: when the person last wrote here (None: not since we count),
    # and how many messages went to this address since.
    heard_at: datetime | None = None
    sent_since_heard: int = 0
