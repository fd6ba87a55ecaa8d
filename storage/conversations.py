"""Where each person's conversation stands, and the inbound keys that drop redeliveries
(storage layer). The inbound path runs these on every message: the statements are built
once, so a message costs only its parameters (building a statement's expression tree takes
longer than running it on SQLite)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.domain.people import Identity, Person
from bot.domain.sender_pace import NOT_YET, Pace
from storage.db import Tx
from storage.models import Conversation, InboundKey
from storage.people import (
    IDENTITY_COLUMNS,
    PERSON_COLUMNS,
    identities,
    people,
    to_identity,
    to_person,
)
from storage.sql import rowcount, table

conversations = table(Conversation)
inbound_keys = table(InboundKey)


@dataclass(frozen=True)
class StoredConversation:
    """A person's flow state as JSON, the version it was saved at, and when; and how
    fast they have been writing."""

    state: dict[str, Any]
    version: int
    updated_at: datetime
    pace: Pace = NOT_YET


def _remember(dialect: Any) -> Any:
    return (dialect.insert(inbound_keys)
            .values(key=bindparam("key"), received_at=bindparam("received_at"))
            .on_conflict_do_nothing(index_elements=["key"]).returning(inbound_keys.c.key))


_REMEMBER = {"sqlite": _remember(sqlite), "postgresql": _remember(postgresql)}
_SENDER = (
    select(*IDENTITY_COLUMNS, *PERSON_COLUMNS, conversations.c.state,
           conversations.c.version, conversations.c.updated_at, conversations.c.pace_from,
           conversations.c.pace_count)
    .select_from(identities.join(people, people.c.id == identities.c.person_id)
                 .outerjoin(conversations, conversations.c.person_id == people.c.id))
    .where(identities.c.channel == bindparam("channel"),
           identities.c.external_id == bindparam("external_id")))
_IDENTITY_AT = len(IDENTITY_COLUMNS)
_PERSON_AT = _IDENTITY_AT + len(PERSON_COLUMNS)


def _new_conversation(dialect: Any) -> Any:
    return (dialect.insert(conversations)
            .values(person_id=bindparam("pid"), state=bindparam("state"), version=1,
                    updated_at=bindparam("updated_at"), pace_from=bindparam("pace_from"),
                    pace_count=bindparam("pace_count"), forgotten=False)
            .on_conflict_do_nothing(index_elements=["person_id"])
            .returning(conversations.c.person_id))


_NEW_CONVERSATION = {"sqlite": _new_conversation(sqlite),
                     "postgresql": _new_conversation(postgresql)}
_SAVE_CONVERSATION = (
    update(conversations)
    .where(conversations.c.person_id == bindparam("pid"),
           conversations.c.version == bindparam("seen"))
    .values(state=bindparam("state"), version=bindparam("version"),
            updated_at=bindparam("updated_at"), pace_from=bindparam("pace_from"),
            pace_count=bindparam("pace_count"), forgotten=False))


async def remember_inbound(tx: Tx, key: str, now: datetime) -> bool:
    """Record an inbound key; False when it was processed before (a redelivery). Run it
    as the transaction's first write: a second process with the same key waits here."""
    result = await tx.conn.execute(_REMEMBER[tx.dialect], {"key": key, "received_at": now})
    return result.first() is not None


async def forget_inbound(tx: Tx, received_before: datetime) -> int:
    """Delete inbound keys received before `received_before`; returns how many."""
    return rowcount(await tx.conn.execute(delete(inbound_keys).where(
        inbound_keys.c.received_at < received_before)))


async def sender(tx: Tx, channel: str, external_id: str
                 ) -> tuple[Identity, Person, StoredConversation | None] | None:
    """Who wrote, and where their conversation stands, in one query (every message asks)."""
    row = (await tx.conn.execute(_SENDER, {"channel": channel,
                                           "external_id": external_id})).first()
    if row is None:
        return None
    values = tuple(row)
    ident = to_identity({c.name: v for c, v in zip(IDENTITY_COLUMNS, values, strict=False)})
    person = to_person({c.name: v for c, v in zip(PERSON_COLUMNS, values[_IDENTITY_AT:],
                                                  strict=False)})
    state, version, updated_at, pace_from, pace_count = values[_PERSON_AT:]
    conversation = (StoredConversation(dict(state or {}), version, updated_at,
                                       Pace(pace_from, pace_count or 0))
                    if version is not None else None)
    return ident, person, conversation


async def conversation(tx: Tx, person_id: int) -> StoredConversation | None:
    row = (await tx.conn.execute(select(conversations.c.state, conversations.c.version,
                                        conversations.c.updated_at)
                                 .where(conversations.c.person_id == person_id))).first()
    return StoredConversation(dict(row[0] or {}), row[1], row[2]) if row else None


async def save_conversation(tx: Tx, person_id: int, state: dict[str, Any],
                            seen_version: int | None, now: datetime,
                            pace: Pace = NOT_YET) -> bool:
    """Store the state (and the pace) if nobody changed it since `seen_version` (None:
    there was none); False when another writer got there first."""
    paced = {"pace_from": pace.since, "pace_count": pace.count}
    if seen_version is None:
        result = await tx.conn.execute(_NEW_CONVERSATION[tx.dialect], {
            "pid": person_id, "state": state, "updated_at": now, **paced})
        return result.first() is not None
    return rowcount(await tx.conn.execute(_SAVE_CONVERSATION, {
        "pid": person_id, "seen": seen_version, "state": state, "version": seen_version + 1,
        "updated_at": now, **paced})) == 1


# What a conversation holds once forgotten: nothing, or only that a flow was left half-way
# (the person is then told why it is gone).
FORGOTTEN: dict[str, Any] = {}
LEFT_HALF_WAY: dict[str, Any] = {"expired": True}
_FORGET = (update(conversations).where(conversations.c.person_id == bindparam("pid"))
           .values(state=bindparam("emptied"), forgotten=True,
                   version=conversations.c.version + 1))


async def forget_drafts(tx: Tx, changed_before: datetime, limit: int) -> int:
    """Empty up to `limit` conversations last changed before `changed_before` (a report
    draft, the answers of buttons pressed, where in a flow the person was); how many. The
    row stays, so the person is not greeted as someone new, and one left in a flow (or
    with a draft put aside) keeps LEFT_HALF_WAY, so their next message is told the draft is
    gone and starts afresh (the conversation service, which also treats a state older than
    its DRAFT_TTL so). The version moves on, so a writer who read the old state loses its
    race and reads again. The state is sealed (storage/crypto.py): it is opened here, and
    the row marked `forgotten` until the person writes again."""
    query = (select(conversations.c.person_id, conversations.c.state)
             .where(conversations.c.forgotten.is_(False),
                    conversations.c.updated_at < changed_before)
             .order_by(conversations.c.updated_at, conversations.c.person_id).limit(limit))
    if tx.dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    found = (await tx.conn.execute(query)).all()
    if found:
        await tx.conn.execute(_FORGET, [
            {"pid": pid, "emptied": LEFT_HALF_WAY if _in_flow(state) else FORGOTTEN}
            for pid, state in found])
    return len(found)


def _in_flow(state: Any) -> bool:
    return isinstance(state, dict) and bool(state.get("flow") or state.get("parked"))
