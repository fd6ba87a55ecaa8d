"""What the outbox hands a channel and what the channel answers: the contract between the
delivery worker and every channel's sender (pure: no I/O here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from bot.domain.messages import Reply

# Media.channel of a file the bot made itself, kept in stored_files (any channel may send it).
STORED = "stored"
# A copy's meta names the message it stands in for (the same on another channel).
INSTEAD_OF = "instead_of"
# A message's meta: the person's messaging window runs low, so the message asks for the
# one tap that opens it again (the channel shows how).
ASK_TAP = "ask_tap"
# An edit's meta: its news reaches the person in a message of its own (a notice, or the
# answer to what they did), so a channel that cannot edit sends nothing for it.
TOLD_APART = "told_apart"


def copy_key(outbox_id: int) -> str:
    """The dedupe key of a message's copy on the person's other channel."""
    return f"reroute:{outbox_id}"


@dataclass(frozen=True)
class OutboxMessage:
    """A queued message as the database holds it. `payload` is the Reply as JSON with the
    recipient's language and a `meta` table (e.g. `edit_of`, `group`)."""

    id: int
    person_id: int
    case_id: int | None
    channel: str
    address: str
    kind: str
    payload: Mapping[str, Any]
    dedupe_key: str | None
    status: str
    attempts: int
    next_attempt_at: datetime
    external_ref: str | None
    broadcast_id: int | None
    lease_owner: str | None = None
    lease_until: datetime | None = None
    created_at: datetime | None = None
    # "outage" while it waits for its channel to work again.
    waiting_on: str | None = None

    @property
    def language(self) -> str:
        return str(self.payload.get("language", "vi"))

    @property
    def meta(self) -> Mapping[str, Any]:
        meta = self.payload.get("meta")
        return meta if isinstance(meta, Mapping) else {}

    @property
    def reply(self) -> Reply:
        return Reply.from_json(self.payload["reply"])


@dataclass(frozen=True)
class DeliveryPolicy:
    """How the outbox rides out a channel that fails (the commune's [delivery] table).

    `replies_expire_after`: a conversation reply older than this is dropped instead of
    sent late (the person is told once where they were). `reroute_after`: a message a case
    waits on that still fails with its channel this long after it was queued also goes to
    the person's other channel, and its case climbs. `tell_admins_after`: a channel
    failing this long is reported to the administrators, once, on a channel that works."""

    replies_expire_after: timedelta = timedelta(hours=3)
    reroute_after: timedelta = timedelta(minutes=2)
    tell_admins_after: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class ReplyWindow:
    """A channel that lets the bot write only so much after the person last wrote: Zalo
    gives an OA `free` messages within `lasts` of the person's last message (its help
    centre: 8 in 48 hours; other sources say 7 days: configurable). From `ask_at` messages
    sent since, a message worth sending anyway asks for one tap, or another channel of the
    person's is used. Nothing is ever sent only to ask."""

    free: int = 8
    lasts: timedelta = timedelta(hours=48)
    ask_at: int = 6

    def spent(self, sent: int, heard_at: datetime | None, now: datetime) -> int:
        """How much of the window is used: all of it once it has closed. An address never
        heard from since we count has nothing known against it."""
        if heard_at is not None and now - heard_at >= self.lasts:
            return self.free
        return sent

    def low(self, sent: int, heard_at: datetime | None, now: datetime) -> bool:
        return self.spent(sent, heard_at, now) >= self.ask_at


class DeliveryError(Exception):
    """A send failed; `retry_after` (seconds) when the channel said when to come back."""

    def __init__(self, reason: str, retry_after: float | None = None,
                 permanent: bool = False, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.permanent = permanent
        # The person cannot be reached on this channel any more (e.g. blocked the bot).
        self.unreachable = unreachable

    @property
    def outage(self) -> bool:
        """The channel itself failed (5xx, timeout, no connection), not this message: it
        may work again any moment, for every chat at once."""
        return not (self.permanent or self.unreachable or self.retry_after is not None)


@dataclass(frozen=True)
class FileToSend:
    """A file the bot made (a Media with channel "stored"), loaded for the channel."""

    id: int
    name: str
    mime: str
    content: bytes
    # The secret part of its download link (the simulator and Zalo show a link, not bytes).
    token: str


@dataclass(frozen=True)
class Delivery:
    """What a channel needs to send one message (already addressed, not yet rendered)."""

    outbox_id: int
    address: str
    language: str
    reply: Reply
    kind: str
    meta: Mapping[str, Any]
    # The stored file the reply's media names; None when there is none (or it is gone).
    file: FileToSend | None = None


class Sender(Protocol):
    """A channel's outbound side, as the delivery worker uses it."""

    name: str

    async def deliver(self, delivery: Delivery) -> str | None:
        """Send one message; return the channel's message reference (for later edits).
        Raise DeliveryError when it did not go."""
        ...


@runtime_checkable
class Metered(Protocol):
    """A sender whose channel counts messages against a messaging window (ReplyWindow):
    how many of the channel's messages a delivery took (none for an edit it skipped)."""

    def cost(self, delivery: Delivery) -> int: ...


def file_url(file: FileToSend) -> str:
    """A stored file's download path on our web server: unguessable, the token is random."""
    return f"/api/files/{file.id}/{file.token}"
