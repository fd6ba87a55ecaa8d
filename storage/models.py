"""SQLAlchemy models of SafeChild's tables (storage layer)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.crypto import FieldCipher, KeyProblem


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _cipher(dialect: Any) -> FieldCipher:
    # make_engine puts the database's cipher on its dialect: each engine has its own.
    cipher: FieldCipher | None = getattr(dialect, "safechild_cipher", None)
    if cipher is None:
        raise KeyProblem("this engine has no keys: open it with storage.db.make_engine")
    return cipher


class Encrypted(TypeDecorator[str]):
    """Text sealed with the database's key (storage/crypto.py); read back plain. Never
    compare or sort on it in SQL: each write seals it differently."""

    impl = Text
    cache_ok = True

    # An empty text stays empty: it tells nothing, and a field blanked by the retention
    # job must be recognisable in SQL (`file_ref != ''`), or every pass would blank it again.
    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return value if not value else _cipher(dialect).seal(value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return value if not value else _cipher(dialect).open(value)


class EncryptedJSON(TypeDecorator[Any]):
    """A JSON document sealed whole (drafts, queued messages): no JSON operators in SQL on
    it. Rows from before 0019 hold plain JSON text (or, on PostgreSQL, a JSON value
    turned into text by the migration), which reads as it is."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return _cipher(dialect).seal(json.dumps(value, ensure_ascii=False,
                                                separators=(",", ":")))

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is None or not isinstance(value, str):
            return value
        return json.loads(_cipher(dialect).open(value))


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class Commune(Base):
    __tablename__ = "communes"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    code_prefix: Mapped[str] = mapped_column(String(8))


class Village(Base):
    __tablename__ = "villages"
    __table_args__ = (UniqueConstraint("commune_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    commune_id: Mapped[int] = mapped_column(ForeignKey("communes.id"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))


class Person(Base):
    __tablename__ = "people"
    __table_args__ = (UniqueConstraint("commune_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    commune_id: Mapped[int] = mapped_column(ForeignKey("communes.id"))
    # Config key for people declared in the commune file; None for walk-in citizens.
    key: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    # Sealed (0019): a walk-in reporter's name and phone are theirs to give.
    name: Mapped[str] = mapped_column(Encrypted(), default="")
    phone: Mapped[str | None] = mapped_column(Encrypted())
    language: Mapped[str] = mapped_column(String(8), default="vi")
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"))
    on_duty: Mapped[bool] = mapped_column(Boolean, default=False)
    tags: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    # The channel alerts try first (commune file `prefers`); None: the one they last used.
    preferred_channel: Mapped[str | None] = mapped_column(String(16))
    # (0018) The account this row is one more commune's role of; None: the row is the
    # account (its addresses are bound to it alone).
    account_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)


class Identity(Base):
    """A person's address on one channel (a Telegram user id, a Zalo user id, a web phone)."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    unreachable_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
    # The messaging window (0016): when the person last wrote here, and how many messages
    # were sent to this address since (Zalo allows only a few).
    heard_at: Mapped[datetime | None]
    sent_since_heard: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class CaseCounter(Base):
    __tablename__ = "case_counters"
    commune_id: Mapped[int] = mapped_column(ForeignKey("communes.id"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)


class Case(Base):
    __tablename__ = "cases"
    # How many reports one person opened lately (0020): a sender's report limit; the
    # closed ones whose free text is due to go (retention), among many open ones.
    __table_args__ = (Index("ix_cases_reporter_created", "reporter_id", "created_at"),
                      Index("ix_cases_closed", "status", "closed_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    commune_id: Mapped[int] = mapped_column(ForeignKey("communes.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    types: Mapped[str] = mapped_column(String(200))
    urgency: Mapped[str] = mapped_column(String(16))
    danger: Mapped[str] = mapped_column(String(8), default="unsure")
    police_case: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"))
    location_text: Mapped[str | None] = mapped_column(String(300))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    age_band: Mapped[str] = mapped_column(String(8), default="unknown")
    sex: Mapped[str] = mapped_column(String(8), default="unknown")
    # The report's private fields are sealed (0019); location_text stays plain: the
    # statistics group by place.
    child_name: Mapped[str | None] = mapped_column(Encrypted())
    child_count: Mapped[int] = mapped_column(Integer, default=1)
    description: Mapped[str | None] = mapped_column(Encrypted())
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    reporter_anonymous: Mapped[bool] = mapped_column(Boolean, default=True)
    reporter_phone: Mapped[str | None] = mapped_column(Encrypted())
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    escalation_level: Mapped[int] = mapped_column(Integer, default=1)
    risk: Mapped[str | None] = mapped_column(String(8))
    measures: Mapped[str | None] = mapped_column(Encrypted())
    confirmed_form: Mapped[str | None] = mapped_column(String(32))
    setting: Mapped[str | None] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(16))
    # What the officer wrote when closing it (0015).
    closing_note: Mapped[str | None] = mapped_column(Encrypted())
    created_at: Mapped[datetime] = mapped_column(index=True)
    acknowledged_at: Mapped[datetime | None]
    assessed_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1)


class CaseDeadline(Base):
    """One deadline of a case (acknowledge, assess, plan...): when it is due and when met."""

    __tablename__ = "case_deadlines"
    __table_args__ = (UniqueConstraint("case_id", "step"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    step: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime]
    due_at: Mapped[datetime]
    met_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1)


class Timer(Base):
    """A wake-up for a deadline (reminder or escalation); claimed with a lease, done once."""

    __tablename__ = "timers"
    __table_args__ = (
        UniqueConstraint("deadline_id", "kind", "seq"),
        Index("ix_timers_due", "done_at", "fire_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    deadline_id: Mapped[int] = mapped_column(ForeignKey("case_deadlines.id"))
    kind: Mapped[str] = mapped_column(String(16))
    seq: Mapped[int] = mapped_column(Integer, default=0)
    fire_at: Mapped[datetime]
    deadline_version: Mapped[int] = mapped_column(Integer)
    done_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]


class TopDigest(Base):
    """When the next digest of waiting cases falls due for a person at the top of the
    escalation chain (None: nothing waits on them); claimed with a lease like a timer, so
    of several processes one sends it. `seq` counts the digests sent and names the next
    one's outbox dedupe key."""

    __tablename__ = "top_digests"
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True,
                                           autoincrement=False)
    due_at: Mapped[datetime | None] = mapped_column(index=True)
    last_sent_at: Mapped[datetime | None]
    seq: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]


class CaseRecipient(Base):
    """Who a case was routed to: the only people allowed to see its details."""

    __tablename__ = "case_recipients"
    __table_args__ = (UniqueConstraint("case_id", "person_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    level: Mapped[int] = mapped_column(Integer)
    # "team" sees details and acts; "village" (the collaborator) is only told a case exists.
    access: Mapped[str] = mapped_column(String(16), default="team")
    alerted_at: Mapped[datetime]


class CaseEvent(Base):
    """The audit trail: who read or changed which case (or, with no case, which commune's
    statistics), when. Never holds report text. Each row carries the hash of the row
    before it in its commune (storage/audit.py)."""

    __tablename__ = "case_events"
    # A commune's chain is walked and its tail read by (commune, id).
    __table_args__ = (Index("ix_case_events_commune_id_id", "commune_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    commune_id: Mapped[int] = mapped_column(ForeignKey("communes.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    action: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class CloseRequest(Base):
    """A close that waits for the chairman's approval: what the closer proposed, and once
    answered, by whom and how (decision empty while it waits)."""

    __tablename__ = "close_requests"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    outcome: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Encrypted())
    requested_at: Mapped[datetime]
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    decision: Mapped[str | None] = mapped_column(String(16))
    decided_at: Mapped[datetime | None]


class Attachment(Base):
    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    file_ref: Mapped[str] = mapped_column(Encrypted())
    created_at: Mapped[datetime]


class Conversation(Base):
    """A person's place in a flow (the report draft among it), shared by every channel."""

    __tablename__ = "conversations"
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON(), default=dict)
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime]
    # How fast they write (0020): when the current minute began, and how many messages in it.
    pace_from: Mapped[datetime | None]
    pace_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Emptied by the retention job since they last wrote (0020): the state is sealed, so
    # the job cannot tell by reading it in SQL.
    forgotten: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    __table_args__ = (Index("ix_conversations_to_forget", "forgotten", "updated_at"),)


class Outbox(Base):
    """Outbound messages, written with the change that causes them, delivered by a worker."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        # A chat's waiting rows in order: a row is claimed only behind its chat's older ones.
        Index("ix_outbox_chat_waiting", "channel", "address", "id",
              sqlite_where=text("status = 'pending'"),
              postgresql_where=text("status = 'pending'")),
        # Old messages are deleted by age (0014).
        Index("ix_outbox_created_at", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32), default="reply")
    payload: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON())
    dedupe_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(200))
    # What the channel answered (e.g. a Telegram message id), for editing the copy later.
    external_ref: Mapped[str | None] = mapped_column(String(64))
    # The broadcast this row delivers, so its progress can be counted.
    broadcast_id: Mapped[int | None] = mapped_column(ForeignKey("broadcasts.id"), index=True)
    # "outage" while the row waits for its channel to work again (then it is due at once).
    waiting_on: Mapped[str | None] = mapped_column(String(16))


class InboundKey(Base):
    """Keys of inbound messages already processed: a redelivery is recognised and skipped."""

    __tablename__ = "inbound_keys"
    __table_args__ = (Index("ix_inbound_keys_received_at", "received_at"),)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_at: Mapped[datetime]


class SimMessage(Base):
    """The web simulator's chat log: what each demo phone shows."""

    __tablename__ = "sim_messages"
    __table_args__ = (UniqueConstraint("outbox_id", name="uq_sim_messages_outbox_id"),
                      # Old rows are deleted by age (0014).
                      Index("ix_sim_messages_created_at", "created_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    # The outbox message this row shows (0011): a resend after a crash writes nothing new.
    outbox_id: Mapped[int | None] = mapped_column(Integer)
    direction: Mapped[str] = mapped_column(String(8))
    payload: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON())
    created_at: Mapped[datetime]


class Invite(Base):
    """A single-use invitation that binds a channel account to a role (and village)."""

    __tablename__ = "invites"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    commune_id: Mapped[int] = mapped_column(ForeignKey("communes.id"))
    role: Mapped[str] = mapped_column(String(16))
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"))
    created_by: Mapped[int] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime]
    used_by: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    used_at: Mapped[datetime | None]


class CalendarEventRow(Base):
    """A commune's calendar event: synced from the config file, or added by an admin in chat.

    The fields keep the config file's own spellings (rule "lunar 08-15", roles "officer,
    collaborator", days_before "7,1,0", at "08:00") so one parser reads both."""

    __tablename__ = "calendar_events"
    __table_args__ = (UniqueConstraint("commune_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    commune_id: Mapped[int] = mapped_column(ForeignKey("communes.id"))
    key: Mapped[str] = mapped_column(String(64))
    # Shown as it is for events added in chat; configured events use their catalog title.
    title: Mapped[str | None] = mapped_column(String(200))
    rule: Mapped[str] = mapped_column(String(64))
    roles: Mapped[str] = mapped_column(String(100))
    days_before: Mapped[str] = mapped_column(String(100))
    at: Mapped[str] = mapped_column(String(5), default="08:00")
    covers: Mapped[str | None] = mapped_column(String(4))
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    origin: Mapped[str] = mapped_column(String(8), default="config")  # "config" | "chat"
    updated_at: Mapped[datetime]
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("people.id"))


class CalendarReminder(Base):
    """A calendar reminder that was sent (or superseded by a later one for the same day).

    Written in the transaction that queues its messages; the unique key is what makes it
    happen once however many processes look at the calendar."""

    __tablename__ = "calendar_reminders"
    __table_args__ = (UniqueConstraint("commune_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    commune_id: Mapped[int] = mapped_column(ForeignKey("communes.id"))
    key: Mapped[str] = mapped_column(String(128))
    event_key: Mapped[str] = mapped_column(String(64))
    event_date: Mapped[date] = mapped_column(Date)
    days_before: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime]
    sent_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="sent")  # "sent" | "superseded"
    recipients: Mapped[int] = mapped_column(Integer, default=0)


class Broadcast(Base):
    """An officer's message to every collaborator; its outbox rows carry its id."""

    __tablename__ = "broadcasts"
    id: Mapped[int] = mapped_column(primary_key=True)
    commune_id: Mapped[int] = mapped_column(ForeignKey("communes.id"))
    sender_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime]
    total: Mapped[int] = mapped_column(Integer, default=0)
    # The sender's progress message, edited as delivery goes on.
    progress_outbox_id: Mapped[int | None] = mapped_column(Integer)
    # Delivered + unreachable count last shown in the progress message, and when.
    reported: Mapped[int] = mapped_column(Integer, default=0)
    reported_at: Mapped[datetime | None]
    edits: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[datetime | None] = mapped_column(index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]


class StoredFile(Base):
    """A file the bot made to send (a statistics workbook, a chart), kept until delivered.

    Holds aggregate figures only, never a case's details."""

    __tablename__ = "stored_files"
    # Files are deleted by age (0014); without it SQLite would read every file to find them.
    __table_args__ = (Index("ix_stored_files_created_at", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    mime: Mapped[str] = mapped_column(String(100))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    # Whose statistics (a commune's, or the province's own row): downloads are audited there.
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("communes.id"))
    # The secret part of the file's download link in the web simulator.
    token: Mapped[str] = mapped_column(String(32), default="", server_default="")


class ZaloToken(Base):
    """The Zalo OA's access/refresh token pair. Exactly one row is "active"; a refresh writes
    the new pair and marks the old one "used" in one transaction (the refresh token is single
    use, so losing the new pair would lose the OA's authorisation)."""

    __tablename__ = "zalo_tokens"
    # At most one active pair per OA, whoever seeds or refreshes (migration 0007).
    __table_args__ = (Index("uq_zalo_tokens_active", "oa_id", unique=True,
                            sqlite_where=text("status = 'active'"),
                            postgresql_where=text("status = 'active'")),)
    id: Mapped[int] = mapped_column(primary_key=True)
    oa_id: Mapped[str] = mapped_column(String(64), index=True)
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|used|failed
    created_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    # The process refreshing this pair right now, so two never spend the refresh token.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]


class InboundQueue(Base):
    """Webhook events stored before the channel gets its 200, handled afterwards by a leased
    worker (Zalo wants an answer within 2 seconds). The unique key drops Zalo's retries."""

    __tablename__ = "inbound_queue"
    __table_args__ = (Index("ix_inbound_queue_due", "processed_at", "id"),
                      Index("ix_inbound_queue_sender", "sender", "processed_at", "id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(128), unique=True)
    # Whose event it is: one sender's events are handled one at a time, in order (0008).
    sender: Mapped[str] = mapped_column(String(64), default="", server_default="")
    payload: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON())
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(200))


class ClaimLock(Base):
    """One row per kind of claim: taking it serialises claimers, so two processes never
    claim rows of the same chat out of order (PostgreSQL; SQLite has one writer anyway)."""

    __tablename__ = "claim_locks"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    taken: Mapped[int] = mapped_column(Integer, default=0)


class ProcessRow(Base):
    """A running process and its heartbeat: rows leased by a process that stopped beating
    are free again within seconds (claims carry the process id as their prefix)."""

    __tablename__ = "processes"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # The same across restarts (host:port): a new incarnation frees its predecessor's work.
    name: Mapped[str] = mapped_column(String(128), index=True)
    started_at: Mapped[datetime]
    beat_at: Mapped[datetime]


class ChannelHealth(Base):
    """Whether a channel's sends fail right now, since when, and whether the
    administrators were told of it."""

    __tablename__ = "channel_health"
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    failing_since: Mapped[datetime | None]
    admins_told_at: Mapped[datetime | None]
    # When one waiting row is next tried early, to find out whether the channel is back.
    probe_at: Mapped[datetime | None]
