"""Repository functions: every query SafeChild runs. They never commit; the caller owns
the transaction (one per inbound event, timer run or delivery)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Attachment,
    Case,
    CaseCounter,
    CaseDeadline,
    CaseEvent,
    CaseRecipient,
    Commune,
    Conversation,
    Identity,
    InboundKey,
    Outbox,
    Person,
    SimMessage,
    Timer,
    Village,
)

# ---- communes, villages, people ------------------------------------------------------------


async def upsert_commune(s: AsyncSession, key: str, name: str, prefix: str) -> Commune:
    commune = await s.scalar(select(Commune).where(Commune.key == key))
    if commune is None:
        commune = Commune(key=key, name=name, code_prefix=prefix)
        s.add(commune)
    else:
        commune.name, commune.code_prefix = name, prefix
    await s.flush()
    return commune


async def upsert_village(s: AsyncSession, commune_id: int, key: str, name: str) -> Village:
    village = await s.scalar(select(Village).where(Village.commune_id == commune_id,
                                                   Village.key == key))
    if village is None:
        village = Village(commune_id=commune_id, key=key, name=name)
        s.add(village)
    else:
        village.name = name
    await s.flush()
    return village


async def villages_of(s: AsyncSession, commune_id: int) -> Sequence[Village]:
    return (await s.scalars(select(Village).where(Village.commune_id == commune_id)
                            .order_by(Village.id))).all()


async def person_by_key(s: AsyncSession, commune_id: int, key: str) -> Person | None:
    return await s.scalar(select(Person).where(Person.commune_id == commune_id,
                                               Person.key == key))


async def person(s: AsyncSession, person_id: int) -> Person | None:
    return await s.get(Person, person_id)


async def people_of(s: AsyncSession, commune_id: int) -> Sequence[Person]:
    return (await s.scalars(select(Person).where(Person.commune_id == commune_id,
                                                 Person.key.is_not(None))
                            .order_by(Person.id))).all()


async def bind_identity(s: AsyncSession, person_id: int, channel: str, external_id: str) -> None:
    existing = await s.scalar(select(Identity).where(Identity.channel == channel,
                                                     Identity.external_id == external_id))
    if existing is None:
        s.add(Identity(person_id=person_id, channel=channel, external_id=external_id))
    else:
        existing.person_id = person_id
    await s.flush()


async def identity(s: AsyncSession, channel: str, external_id: str) -> Identity | None:
    return await s.scalar(select(Identity).where(Identity.channel == channel,
                                                 Identity.external_id == external_id))


async def identities_of(s: AsyncSession, person_id: int) -> Sequence[Identity]:
    return (await s.scalars(select(Identity).where(Identity.person_id == person_id)
                            .order_by(Identity.id))).all()


async def add_person(s: AsyncSession, **fields: Any) -> Person:
    p = Person(**fields)
    s.add(p)
    await s.flush()
    return p


async def mark_unreachable(s: AsyncSession, channel: str, external_id: str,
                           now: datetime) -> None:
    await s.execute(update(Identity).where(Identity.channel == channel,
                                           Identity.external_id == external_id)
                    .values(unreachable_at=now).execution_options(synchronize_session=False))


# ---- inbound deduplication and conversations ----------------------------------------------


# The inbound path runs these for every update: built once, so a message costs only the
# parameters (building a statement's expression tree takes longer than running it on SQLite).
_REMEMBER_INBOUND = insert(InboundKey).values(key=bindparam("key"),
                                              received_at=bindparam("received_at"))
_SENDER = (
    select(Identity, Person, Conversation).join(Person, Person.id == Identity.person_id)
    .outerjoin(Conversation, Conversation.person_id == Person.id)
    .where(Identity.channel == bindparam("channel"),
           Identity.external_id == bindparam("external_id"))
    .execution_options(populate_existing=True))
_SAVE_CONVERSATION = (
    update(Conversation)
    .where(Conversation.person_id == bindparam("pid"),
           Conversation.version == bindparam("seen"))
    .values(state=bindparam("state"), version=bindparam("version"),
            updated_at=bindparam("updated_at"))
    .execution_options(synchronize_session=False))


async def remember_inbound(s: AsyncSession, key: str, now: datetime) -> None:
    """Record an inbound key as the transaction's first write; raises IntegrityError if it
    was processed before (a redelivery), which must roll the whole transaction back."""
    await s.execute(_REMEMBER_INBOUND, {"key": key, "received_at": now})


async def forget_inbound(s: AsyncSession, received_before: datetime) -> int:
    """Delete inbound keys received before `received_before`; returns how many."""
    result = await s.execute(delete(InboundKey).where(InboundKey.received_at < received_before)
                             .execution_options(synchronize_session=False))
    return cast("CursorResult[Any]", result).rowcount


async def sender(s: AsyncSession, channel: str, external_id: str
                 ) -> tuple[Identity, Person, Conversation | None] | None:
    """Who wrote, and where their conversation stands, in one query (every message asks)."""
    row = (await s.execute(_SENDER, {"channel": channel, "external_id": external_id})).first()
    return (row[0], row[1], row[2]) if row else None


async def identities_for(s: AsyncSession, person_ids: Sequence[int]) -> dict[int, list[Identity]]:
    found: dict[int, list[Identity]] = {pid: [] for pid in person_ids}
    if person_ids:
        for ident in await s.scalars(select(Identity).where(Identity.person_id.in_(person_ids))
                                     .order_by(Identity.id)):
            found[ident.person_id].append(ident)
    return found


async def conversation(s: AsyncSession, person_id: int) -> Conversation | None:
    return await s.get(Conversation, person_id, populate_existing=True)


async def save_conversation(s: AsyncSession, person_id: int, state: dict[str, Any],
                            seen_version: int | None, now: datetime) -> bool:
    """Store the state if nobody changed it since `seen_version`; False on a lost race."""
    if seen_version is None:
        try:
            async with s.begin_nested():
                s.add(Conversation(person_id=person_id, state=state, version=1, updated_at=now))
        except IntegrityError:
            return False
        return True
    result = await s.execute(_SAVE_CONVERSATION, {
        "pid": person_id, "seen": seen_version, "state": state, "version": seen_version + 1,
        "updated_at": now})
    return cast("CursorResult[Any]", result).rowcount == 1


# ---- cases -------------------------------------------------------------------------------


async def next_case_seq(s: AsyncSession, commune_id: int, year: int) -> int:
    result = await s.execute(
        update(CaseCounter)
        .where(CaseCounter.commune_id == commune_id, CaseCounter.year == year)
        .values(last_seq=CaseCounter.last_seq + 1)
        .returning(CaseCounter.last_seq)
    )
    seq = result.scalar()
    if seq is None:
        try:
            async with s.begin_nested():
                s.add(CaseCounter(commune_id=commune_id, year=year, last_seq=1))
            return 1
        except IntegrityError:
            return await next_case_seq(s, commune_id, year)
    return int(seq)


async def add(s: AsyncSession, row: Any) -> Any:
    s.add(row)
    await s.flush()
    return row


async def case_by_id(s: AsyncSession, case_id: int) -> Case | None:
    return await s.get(Case, case_id, populate_existing=True)


async def case_by_code(s: AsyncSession, code: str) -> Case | None:
    return await s.scalar(select(Case).where(Case.code == code))


async def claim_case(s: AsyncSession, case_id: int, person_id: int, now: datetime) -> bool:
    """First press wins: assign only if nobody holds the case yet."""
    result = await s.execute(
        update(Case)
        .where(Case.id == case_id, Case.assignee_id.is_(None), Case.status != "closed")
        .values(assignee_id=person_id, status="acknowledged", acknowledged_at=now,
                version=Case.version + 1)
        .execution_options(synchronize_session=False)
    )
    return cast("CursorResult[Any]", result).rowcount == 1


async def recipients(s: AsyncSession, case_id: int) -> Sequence[CaseRecipient]:
    return (await s.scalars(select(CaseRecipient).where(CaseRecipient.case_id == case_id)
                            .order_by(CaseRecipient.id))).all()


async def recipient(s: AsyncSession, case_id: int, person_id: int) -> CaseRecipient | None:
    return await s.scalar(select(CaseRecipient).where(CaseRecipient.case_id == case_id,
                                                      CaseRecipient.person_id == person_id))


async def attachments(s: AsyncSession, case_id: int) -> Sequence[Attachment]:
    return (await s.scalars(select(Attachment).where(Attachment.case_id == case_id)
                            .order_by(Attachment.id))).all()


async def audit(s: AsyncSession, case_id: int, actor_id: int | None, action: str,
                now: datetime, **detail: Any) -> None:
    s.add(CaseEvent(case_id=case_id, actor_id=actor_id, action=action, at=now, detail=detail))


async def case_events(s: AsyncSession, case_id: int) -> Sequence[CaseEvent]:
    return (await s.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id)
                            .order_by(CaseEvent.id))).all()


async def deadline(s: AsyncSession, case_id: int, step: str) -> CaseDeadline | None:
    return await s.scalar(select(CaseDeadline).where(CaseDeadline.case_id == case_id,
                                                     CaseDeadline.step == step))


async def add_deadlines(s: AsyncSession, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """One case's deadlines in one multi-row INSERT; their new ids by step."""
    result = await s.execute(insert(CaseDeadline).values(list(rows))
                             .returning(CaseDeadline.step, CaseDeadline.id))
    return {row[0]: row[1] for row in result}


async def add_timers(s: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await s.execute(insert(Timer).values(list(rows)))


async def deadlines(s: AsyncSession, case_id: int) -> Sequence[CaseDeadline]:
    return (await s.scalars(select(CaseDeadline).where(CaseDeadline.case_id == case_id)
                            .order_by(CaseDeadline.id))).all()


# ---- leased work: timers and outbox ------------------------------------------------------


async def due_timer_ids(s: AsyncSession, now: datetime, limit: int) -> list[int]:
    rows = await s.scalars(
        select(Timer.id)
        .where(Timer.done_at.is_(None), Timer.fire_at <= now,
               or_(Timer.lease_until.is_(None), Timer.lease_until < now))
        .order_by(Timer.fire_at).limit(limit)
    )
    return list(rows)


async def lease_timer(s: AsyncSession, timer_id: int, owner: str, now: datetime,
                      lease: timedelta) -> bool:
    result = await s.execute(
        update(Timer)
        .where(Timer.id == timer_id, Timer.done_at.is_(None),
               or_(Timer.lease_until.is_(None), Timer.lease_until < now))
        .values(lease_owner=owner, lease_until=now + lease)
        .execution_options(synchronize_session=False)
    )
    return cast("CursorResult[Any]", result).rowcount == 1


async def leased_timer(s: AsyncSession, timer_id: int, owner: str) -> Timer | None:
    return await s.scalar(select(Timer).where(Timer.id == timer_id, Timer.lease_owner == owner,
                                              Timer.done_at.is_(None))
                          .execution_options(populate_existing=True))


async def next_timer_at(s: AsyncSession) -> datetime | None:
    return await s.scalar(select(func.min(Timer.fire_at)).where(Timer.done_at.is_(None)))


# What a person in danger is waiting on goes first when the channel's rate limit makes
# messages queue; bulk sends (broadcasts, calendar reminders) yield to conversations.
URGENT_KINDS = ("alert", "escalation", "handover", "question")
BULK_KINDS = ("broadcast", "calendar")
_outbox_priority = case((Outbox.kind.in_(URGENT_KINDS), 0),
                        (Outbox.kind.in_(BULK_KINDS), 2), else_=1)


async def due_outbox_ids(s: AsyncSession, now: datetime, limit: int,
                         channels: Sequence[str]) -> list[int]:
    rows = await s.scalars(
        select(Outbox.id)
        .where(Outbox.status == "pending", Outbox.next_attempt_at <= now,
               Outbox.channel.in_(channels),
               or_(Outbox.lease_until.is_(None), Outbox.lease_until < now))
        .order_by(_outbox_priority, Outbox.id).limit(limit)
    )
    return list(rows)


async def lease_outbox(s: AsyncSession, ids: Sequence[int], owner: str, now: datetime,
                       lease: timedelta) -> list[int]:
    """Claim what nobody else holds; `owner` is unique per claim, so what carries it is ours."""
    if not ids:
        return []
    await s.execute(
        update(Outbox)
        .where(Outbox.id.in_(ids), Outbox.status == "pending",
               or_(Outbox.lease_until.is_(None), Outbox.lease_until < now))
        .values(lease_owner=owner, lease_until=now + lease)
        .execution_options(synchronize_session=False)
    )
    rows = await s.scalars(select(Outbox.id).where(Outbox.id.in_(ids),
                                                   Outbox.lease_owner == owner))
    return list(rows)


async def leased_outbox(s: AsyncSession, ids: Sequence[int], owner: str) -> Sequence[Outbox]:
    return (await s.scalars(
        select(Outbox).where(Outbox.id.in_(ids), Outbox.lease_owner == owner,
                             Outbox.status == "pending")
        .order_by(Outbox.id).execution_options(populate_existing=True))).all()


async def release_outbox(s: AsyncSession, ids: Sequence[int], owner: str,
                         next_attempt_at: datetime) -> None:
    """Give back rows claimed but not attempted, due again no earlier than `next_attempt_at`."""
    await s.execute(
        update(Outbox)
        .where(Outbox.id.in_(ids), Outbox.lease_owner == owner, Outbox.status == "pending")
        .values(lease_owner=None, lease_until=None, next_attempt_at=next_attempt_at,
                attempts=Outbox.attempts - 1)
        .execution_options(synchronize_session=False)
    )


async def next_outbox_at(s: AsyncSession, channels: Sequence[str]) -> datetime | None:
    return await s.scalar(select(func.min(Outbox.next_attempt_at)).where(
        Outbox.status == "pending", Outbox.channel.in_(channels)))


async def outbox_pending(s: AsyncSession) -> int:
    return int(await s.scalar(select(func.count()).select_from(Outbox)
                              .where(Outbox.status == "pending")) or 0)


async def outbox_exists(s: AsyncSession, dedupe_key: str) -> bool:
    return await s.scalar(select(Outbox.id).where(Outbox.dedupe_key == dedupe_key)) is not None


async def outbox_by_key(s: AsyncSession, dedupe_key: str) -> Outbox | None:
    return await s.scalar(select(Outbox).where(Outbox.dedupe_key == dedupe_key)
                          .execution_options(populate_existing=True))


async def outbox_row(s: AsyncSession, outbox_id: int) -> Outbox | None:
    return await s.get(Outbox, outbox_id, populate_existing=True)


async def outbox_rows(s: AsyncSession, ids: Sequence[int]) -> dict[int, Outbox]:
    rows = await s.scalars(select(Outbox).where(Outbox.id.in_(ids))
                           .execution_options(populate_existing=True))
    return {row.id: row for row in rows}


async def case_alert_rows(s: AsyncSession, case_id: int) -> Sequence[Outbox]:
    """The alerts (first and escalated) of a case that still show action buttons."""
    return (await s.scalars(select(Outbox).where(
        Outbox.case_id == case_id, Outbox.kind.in_(("alert", "escalation")),
        Outbox.status.in_(("pending", "sent"))).order_by(Outbox.id))).all()


async def outbox_for_case(s: AsyncSession, case_id: int) -> Sequence[Outbox]:
    return (await s.scalars(select(Outbox).where(Outbox.case_id == case_id)
                            .order_by(Outbox.id))).all()


# ---- web simulator ----------------------------------------------------------------------


async def sim_messages(s: AsyncSession, address: str, after: int) -> Sequence[SimMessage]:
    return (await s.scalars(select(SimMessage).where(and_(SimMessage.address == address,
                                                          SimMessage.id > after))
                            .order_by(SimMessage.id).limit(500))).all()
