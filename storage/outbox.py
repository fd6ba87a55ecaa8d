"""The outbox: messages queued with the change that causes them, claimed with a lease by
whichever process delivers them (storage layer). Functions take the caller's transaction
and never commit. The statements the delivery path runs for every message are built once."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, func, or_, select, update
from sqlalchemy import exists as sql_exists

from bot.domain.cases import Status
from bot.domain.delivery import STORED, OutboxMessage
from bot.domain.message_kinds import BULK, URGENT, Kind, kinds_with_priority
from storage.db import Tx
from storage.models import Broadcast, ClaimLock, Outbox
from storage.models import Case as CaseRow
from storage.sql import delete_batch, rowcount, table

outbox = table(Outbox)
older = outbox.alias("older")
claim_locks = table(ClaimLock)
_cases = table(CaseRow)
_broadcasts = table(Broadcast)
COLUMNS = (outbox.c.id, outbox.c.person_id, outbox.c.case_id, outbox.c.channel,
           outbox.c.address, outbox.c.kind, outbox.c.payload, outbox.c.dedupe_key,
           outbox.c.status, outbox.c.attempts, outbox.c.next_attempt_at, outbox.c.external_ref,
           outbox.c.broadcast_id, outbox.c.lease_owner, outbox.c.lease_until,
           outbox.c.created_at, outbox.c.waiting_on)
PENDING, SENT, FAILED, SKIPPED = "pending", "sent", "failed", "skipped"
# waiting_on: the row waits for its channel to work again.
OUTAGE = "outage"



def _priority(kind: Any) -> Any:
    return case((kind.in_(kinds_with_priority(URGENT)), 0),
                (kind.in_(kinds_with_priority(BULK)), 2), else_=1)


# When a rate limit makes messages wait, the urgent kinds go first and bulk sends last
# (bot/domain/message_kinds.py says which is which).
_PRIORITY = _priority(outbox.c.kind)
_OLDER_PRIORITY = _priority(older.c.kind)
_TAKE_TURN = (update(claim_locks).where(claim_locks.c.name == "outbox")
              .values(taken=claim_locks.c.taken + 1))
_INSERT = outbox.insert().values(
    person_id=bindparam("person_id"), case_id=bindparam("case_id"),
    channel=bindparam("channel"), address=bindparam("address"), kind=bindparam("kind"),
    payload=bindparam("payload"), dedupe_key=bindparam("dedupe_key"), status=PENDING,
    attempts=0, next_attempt_at=bindparam("now"), created_at=bindparam("now"),
    broadcast_id=bindparam("broadcast_id")).returning(outbox.c.id)
_EXISTS = select(outbox.c.id).where(outbox.c.dedupe_key == bindparam("key"))
_SENT = (update(outbox).where(outbox.c.id == bindparam("oid"))
         .values(status=SENT, external_ref=bindparam("ref"), sent_at=bindparam("now"),
                 lease_owner=None, lease_until=None))


def to_message(m: Mapping[Any, Any]) -> OutboxMessage:
    return OutboxMessage(**{c.name: m[c.name] for c in COLUMNS})


async def add_message(tx: Tx, *, person_id: int, case_id: int | None, channel: str,
                      address: str, kind: str, payload: dict[str, Any],
                      dedupe_key: str | None, broadcast_id: int | None,
                      now: datetime) -> OutboxMessage:
    new_id = (await tx.conn.execute(_INSERT, {
        "person_id": person_id, "case_id": case_id, "channel": channel, "address": address,
        "kind": str(kind), "payload": payload, "dedupe_key": dedupe_key,
        "broadcast_id": broadcast_id, "now": now})).scalar_one()
    return OutboxMessage(id=new_id, person_id=person_id, case_id=case_id, channel=channel,
                         address=address, kind=str(kind), payload=payload,
                         dedupe_key=dedupe_key, status=PENDING, attempts=0,
                         next_attempt_at=now, external_ref=None, broadcast_id=broadcast_id,
                         created_at=now)


async def add_messages(tx: Tx, rows: Sequence[Mapping[str, Any]], now: datetime
                       ) -> list[OutboxMessage]:
    """Messages as `add_message` adds one (its keyword arguments but `now`, each), in one
    statement; in this order, so ids keep each chat's order."""
    if not rows:
        return []
    result = await tx.conn.execute(
        outbox.insert().returning(outbox.c.id, sort_by_parameter_order=True),
        [{**r, "kind": str(r["kind"]), "status": PENDING, "attempts": 0,
          "next_attempt_at": now, "created_at": now} for r in rows])
    return [OutboxMessage(id=new_id, person_id=r["person_id"], case_id=r["case_id"],
                          channel=r["channel"], address=r["address"], kind=str(r["kind"]),
                          payload=r["payload"], dedupe_key=r["dedupe_key"], status=PENDING,
                          attempts=0, next_attempt_at=now, external_ref=None,
                          broadcast_id=r["broadcast_id"], created_at=now)
            for new_id, r in zip(result.scalars(), rows, strict=True)]


async def existing_keys(tx: Tx, dedupe_keys: Collection[str]) -> set[str]:
    """Which of these dedupe keys a message already has."""
    if not dedupe_keys:
        return set()
    return set(await tx.conn.scalars(select(outbox.c.dedupe_key).where(
        outbox.c.dedupe_key.in_(list(dedupe_keys)))))


async def exists(tx: Tx, dedupe_key: str) -> bool:
    return (await tx.conn.execute(_EXISTS, {"key": dedupe_key})).first() is not None


async def by_key(tx: Tx, dedupe_key: str) -> OutboxMessage | None:
    row = (await tx.conn.execute(select(*COLUMNS)
                                 .where(outbox.c.dedupe_key == dedupe_key))).first()
    return to_message(row._mapping) if row else None


async def message(tx: Tx, outbox_id: int) -> OutboxMessage | None:
    row = (await tx.conn.execute(select(*COLUMNS).where(outbox.c.id == outbox_id))).first()
    return to_message(row._mapping) if row else None


async def messages(tx: Tx, ids: Sequence[int]) -> dict[int, OutboxMessage]:
    if not ids:
        return {}
    rows = await tx.conn.execute(select(*COLUMNS).where(outbox.c.id.in_(list(ids))))
    return {m.id: m for m in (to_message(r._mapping) for r in rows)}


def _free(now: datetime) -> Any:
    return or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < now)


def _older_waiting() -> Any:
    """An older row of the same chat still waiting to go."""
    return and_(older.c.status == PENDING, older.c.channel == outbox.c.channel,
                older.c.address == outbox.c.address, older.c.id < outbox.c.id)


def _held_up(now: datetime) -> Any:
    """An older row of the same chat that cannot go out with this one: not due yet, held
    by a sender, or of a lower priority (which would let this one overtake it)."""
    return sql_exists().where(_older_waiting(), or_(
        older.c.next_attempt_at > now,
        and_(older.c.lease_until.is_not(None), older.c.lease_until >= now),
        _OLDER_PRIORITY > _PRIORITY))


async def take_turn(tx: Tx) -> None:
    """Wait for the other claimers: called first in a claiming transaction (see
    lease_due), before any other row is touched, so that claimers never deadlock."""
    if tx.dialect != "sqlite":
        await tx.conn.execute(_TAKE_TURN)


async def lease_due(tx: Tx, now: datetime, channels: Sequence[str], owner: str,
                    lease: timedelta, limit: int) -> list[OutboxMessage]:
    """Claim up to `limit` due messages nobody holds, urgent kinds first, then in the order
    they were queued. `owner` is unique per claim, so what carries it is ours alone.

    One chat's rows go strictly in id order: a row is claimed only when every older row
    of its chat is claimed with it. Within a chat the sort key (priority, id) then rises
    with the id, so the limit cuts each chat's rows after a prefix. Claimers take turns
    (the claim lock; SQLite's single writer already does), so a second process sees the
    first one's leases and never takes a chat's later rows while the first sends its
    earlier ones: the transaction must have called take_turn first."""
    if not channels:
        return []
    ids = list(await tx.conn.scalars(
        select(outbox.c.id)
        .where(outbox.c.status == PENDING, outbox.c.next_attempt_at <= now,
               outbox.c.channel.in_(list(channels)), _free(now), ~_held_up(now))
        .order_by(_PRIORITY, outbox.c.id).limit(limit)))
    if not ids:
        return []
    await tx.conn.execute(update(outbox).where(outbox.c.id.in_(ids),
                                               outbox.c.status == PENDING, _free(now))
                          .values(lease_owner=owner, lease_until=now + lease))
    rows = await tx.conn.execute(select(*COLUMNS).where(outbox.c.id.in_(ids),
                                                        outbox.c.lease_owner == owner)
                                 .order_by(outbox.c.id))
    return [to_message(r._mapping) for r in rows]


async def count_attempts(tx: Tx, ids: Sequence[int]) -> None:
    """These claimed messages are about to be sent."""
    if ids:
        await tx.conn.execute(update(outbox).where(outbox.c.id.in_(list(ids)))
                              .values(attempts=outbox.c.attempts + 1))


async def release(tx: Tx, ids: Sequence[int], owner: str, next_attempt_at: datetime,
                  *, attempted: bool = True) -> None:
    """Give back claimed messages, due again no earlier than `next_attempt_at`; `attempted`
    ones had their attempt counted though they were never sent, which is undone."""
    if not ids:
        return
    values: dict[str, Any] = {"lease_owner": None, "lease_until": None,
                              "next_attempt_at": next_attempt_at}
    if attempted:
        values["attempts"] = outbox.c.attempts - 1
    await tx.conn.execute(update(outbox).where(outbox.c.id.in_(list(ids)),
                                               outbox.c.lease_owner == owner,
                                               outbox.c.status == PENDING).values(**values))


async def skip(tx: Tx, outbox_id: int) -> None:
    """Not to be sent (an edit of a message that never went out)."""
    await tx.conn.execute(update(outbox).where(outbox.c.id == outbox_id)
                          .values(status=SKIPPED, lease_owner=None, lease_until=None))


async def mark_sent(tx: Tx, sent: Sequence[tuple[int, str | None]], now: datetime) -> None:
    """(outbox id, the channel's message reference) of messages that went out."""
    if sent:
        await tx.conn.execute(_SENT, [{"oid": oid, "ref": ref, "now": now}
                                      for oid, ref in sent])


async def mark_failed(tx: Tx, outbox_id: int, error: str, *, retry_at: datetime | None,
                      waiting_on: str | None = None) -> None:
    """A send failed: it comes back at `retry_at` (or sooner, when it is `waiting_on` an
    OUTAGE that ends), or with None it has failed for good."""
    values: dict[str, Any] = {"last_error": error[:200], "lease_owner": None,
                              "lease_until": None, "waiting_on": waiting_on}
    if retry_at is None:
        values["status"] = FAILED
    else:
        values["next_attempt_at"] = retry_at
    await tx.conn.execute(update(outbox).where(outbox.c.id == outbox_id).values(**values))


async def withdraw(tx: Tx, outbox_id: int, reason: str) -> None:
    """Not to be sent any more (expired, its case closed), though it never went."""
    await tx.conn.execute(update(outbox)
                          .where(outbox.c.id == outbox_id, outbox.c.status == PENDING)
                          .values(status=SKIPPED, last_error=reason, lease_owner=None,
                                  lease_until=None))


async def withdraw_waiting(tx: Tx, now: datetime, *, ids: Sequence[int] = (),
                           dedupe_key: str | None = None) -> int:
    """Withdraw copies that no sender holds right now (one of them already arrived)."""
    if not ids and dedupe_key is None:
        return 0
    which = outbox.c.id.in_(list(ids)) if ids else outbox.c.dedupe_key == dedupe_key
    return rowcount(await tx.conn.execute(
        update(outbox).where(which, outbox.c.status == PENDING, _free(now))
        .values(status=SKIPPED, last_error="arrived on another channel")))


async def outage_over(tx: Tx, channel: str, now: datetime) -> int:
    """The channel works again: every row waiting for it is due now (its chats' order and
    the channel's rate limit still pace them); how many."""
    return rowcount(await tx.conn.execute(
        update(outbox).where(outbox.c.channel == channel, outbox.c.status == PENDING,
                             outbox.c.waiting_on == OUTAGE)
        .values(next_attempt_at=now, waiting_on=None)))


async def probe(tx: Tx, channel: str, now: datetime) -> int | None:
    """Make the oldest row waiting for a failing channel due now (nobody holds it, it is
    first in its chat): trying it tells whether the channel is back."""
    outbox_id = await tx.conn.scalar(
        select(outbox.c.id).where(outbox.c.channel == channel, outbox.c.status == PENDING,
                                  outbox.c.waiting_on == OUTAGE, _free(now),
                                  ~sql_exists().where(_older_waiting()))
        .order_by(outbox.c.id).limit(1))
    if outbox_id is None:
        return None
    await tx.conn.execute(update(outbox).where(outbox.c.id == outbox_id)
                          .values(next_attempt_at=now))
    return int(outbox_id)


async def waiting_of_kind(tx: Tx, channel: str, address: str, kind: str) -> bool:
    return (await tx.conn.execute(select(outbox.c.id).where(
        outbox.c.channel == channel, outbox.c.address == address, outbox.c.kind == kind,
        outbox.c.status == PENDING).limit(1))).first() is not None


async def waiting_for(tx: Tx, channel: str, address: str) -> int:
    """Messages waiting to go to one address, edits left out (a channel that cannot edit
    mostly sends nothing for them)."""
    return int(await tx.conn.scalar(select(func.count()).select_from(outbox).where(
        outbox.c.channel == channel, outbox.c.address == address,
        outbox.c.status == PENDING, outbox.c.kind != Kind.EDIT.value)) or 0)


async def next_due_at(tx: Tx, channels: Sequence[str], now: datetime) -> datetime | None:
    """When the first chat's first waiting row can go: its due time, or the end of the
    lease another sender holds it by. Rows behind it in their chat wait for it."""
    if not channels:
        return None
    value: datetime | None = await tx.conn.scalar(
        select(func.min(case((and_(outbox.c.lease_until.is_not(None),
                                   outbox.c.lease_until >= now), outbox.c.lease_until),
                             else_=outbox.c.next_attempt_at)))
        .where(outbox.c.status == PENDING, outbox.c.channel.in_(list(channels)),
               ~sql_exists().where(_older_waiting())))
    return value


async def waiting_by_kind(tx: Tx) -> list[tuple[str, str, int, datetime]]:
    """(channel, kind, messages waiting, the oldest one's queued time) of every channel.
    A waiting message has been due since it was queued (add_message makes it due at
    once): its age is how long it has waited. ix_outbox_due finds the pending rows."""
    rows = await tx.conn.execute(
        select(outbox.c.channel, outbox.c.kind, func.count(), func.min(outbox.c.created_at))
        .where(outbox.c.status == PENDING).group_by(outbox.c.channel, outbox.c.kind))
    return [(str(channel), str(kind), int(n), oldest) for channel, kind, n, oldest in rows]


async def oldest_waiting(tx: Tx, channels: Sequence[str]) -> datetime | None:
    """When the message that has waited longest on these channels was queued."""
    if not channels:
        return None
    value: datetime | None = await tx.conn.scalar(
        select(func.min(outbox.c.created_at)).where(outbox.c.status == PENDING,
                                                    outbox.c.channel.in_(list(channels))))
    return value


async def pending_count(tx: Tx) -> int:
    return int(await tx.conn.scalar(select(func.count()).select_from(outbox)
                                    .where(outbox.c.status == PENDING)) or 0)


# The kinds of a case's alerts: edited (their buttons taken away) when someone takes it.
ALERT_KINDS = (Kind.ALERT.value, Kind.ESCALATION.value, Kind.ADDITIONS.value)


async def case_alerts(tx: Tx, case_id: int) -> list[OutboxMessage]:
    """The alerts (first and escalated) of a case that still show action buttons. Pruning
    keeps them while the case is open (prune_delivered)."""
    rows = await tx.conn.execute(select(*COLUMNS).where(
        outbox.c.case_id == case_id, outbox.c.kind.in_(ALERT_KINDS),
        outbox.c.status.in_((PENDING, SENT))).order_by(outbox.c.id))
    return [to_message(r._mapping) for r in rows]


async def case_alerts_of(tx: Tx, case_ids: Collection[int]) -> dict[int, list[OutboxMessage]]:
    """`case_alerts` of each case, in one statement."""
    found: dict[int, list[OutboxMessage]] = {case_id: [] for case_id in case_ids}
    if found:
        rows = await tx.conn.execute(select(*COLUMNS).where(
            outbox.c.case_id.in_(list(found)), outbox.c.kind.in_(ALERT_KINDS),
            outbox.c.status.in_((PENDING, SENT))).order_by(outbox.c.id))
        for r in rows:
            message = to_message(r._mapping)
            found[message.case_id or 0].append(message)
    return found


async def of_case(tx: Tx, case_id: int) -> list[OutboxMessage]:
    rows = await tx.conn.execute(select(*COLUMNS).where(outbox.c.case_id == case_id)
                                 .order_by(outbox.c.id))
    return [to_message(r._mapping) for r in rows]


async def rewrite_waiting(tx: Tx, outbox_id: int, payload: dict[str, Any],
                          now: datetime) -> bool:
    """Give a queued message new content, only if no sender holds it right now; False if
    it is already sent, failed or being sent (then a new message must follow it)."""
    return rowcount(await tx.conn.execute(
        update(outbox).where(outbox.c.id == outbox_id, outbox.c.status == PENDING, _free(now))
        .values(payload=payload))) == 1


async def broadcast_counts(tx: Tx, broadcast_id: int) -> dict[str, int]:
    """A broadcast's copies to collaborators by status (pending, sent, failed)."""
    rows = await tx.conn.execute(select(outbox.c.status, func.count()).where(
        outbox.c.broadcast_id == broadcast_id, outbox.c.kind == "broadcast")
        .group_by(outbox.c.status))
    return {str(status): int(n) for status, n in rows.all()}


async def _waiting_payloads(tx: Tx) -> list[dict[str, Any]]:
    """The payloads of the messages still pending. Read and opened here, not looked into
    by SQL: payloads are sealed (storage/crypto.py)."""
    return [dict(p or {}) for p in await tx.conn.scalars(
        select(outbox.c.payload).where(outbox.c.status == PENDING))]


def _done_with(edited: Collection[int]) -> Any:
    """Messages delivered (or skipped, or failed for good) that nothing still needs. Kept,
    whatever their age:
    - the alerts of a case still open: taking the case edits them (case_alerts);
    - the message a waiting edit changes: delivering the edit needs its external_ref;
    - the copies and the progress message of a broadcast not finished: the tracker counts
      the copies and edits the progress message.
    Once a message goes, an edit of it queued afterwards is skipped (delivery finds no
    original), and its dedupe key is free again; no key comes round after the days kept
    (each names a case, a timer, a message or a broadcast that acts once)."""
    open_case = select(_cases.c.id).where(_cases.c.id == outbox.c.case_id,
                                          _cases.c.status != Status.CLOSED.value).exists()
    unfinished = _broadcasts.c.finished_at.is_(None)
    return and_(
        # Sent, skipped or failed: a message still pending is never deleted. (Not IN those
        # three: SQLite would walk ix_outbox_due through every sent row instead of taking
        # the old ones from ix_outbox_created_at.)
        outbox.c.status != PENDING,
        or_(outbox.c.kind.not_in(ALERT_KINDS), outbox.c.case_id.is_(None), ~open_case),
        outbox.c.id.not_in(list(edited)) if edited else outbox.c.id.is_not(None),
        or_(outbox.c.broadcast_id.is_(None),
            outbox.c.broadcast_id.not_in(select(_broadcasts.c.id).where(unfinished))),
        outbox.c.id.not_in(select(_broadcasts.c.progress_outbox_id).where(
            unfinished, _broadcasts.c.progress_outbox_id.is_not(None))),
    )


async def prune_delivered(tx: Tx, before: datetime, limit: int) -> int:
    """Delete up to `limit` messages queued before `before` that went out (or were skipped
    or failed for good) and that nothing still needs (see _done_with); how many. A message
    still pending is never deleted. ix_outbox_created_at finds the old ones."""
    # Any waiting row may edit another (an edit, or a broadcast's rewritten progress).
    edited = {int(p["meta"]["edit_of"]) for p in await _waiting_payloads(tx)
              if str((p.get("meta") or {}).get("edit_of", "")).isdigit()}
    return await delete_batch(tx, outbox, outbox.c.created_at, before, limit,
                              where=_done_with(edited))


async def files_waiting(tx: Tx) -> set[int]:
    """The stored files (storage.files) that messages still pending will carry."""
    refs = [(p.get("reply") or {}).get("media") or {} for p in await _waiting_payloads(tx)]
    return {int(m["ref"]) for m in refs
            if m.get("channel") == STORED and str(m.get("ref", "")).isdigit()}


async def empty_delivered(tx: Tx, from_id: int, limit: int) -> tuple[int, int | None]:
    """Take the words out of the messages that went out (or were skipped, or failed for
    good) among the next `limit` done with, from id `from_id` up, lowest ids first; how
    many were emptied, and where the next batch starts (None: none was left to look at).
    What a message is still needed for once it is no longer pending reads its metadata
    only: an edit needs its external_ref, the delivery accounting its status, kind, case
    and broadcast, the dedupe its key, a chat's order its id; the Reply is read only while
    it waits (to send it, or to copy it to another channel). The payload is sealed
    (storage/crypto.py), so it is opened and written back here, not changed in SQL."""
    query = (select(outbox.c.id, outbox.c.payload)
             .where(outbox.c.id >= from_id, outbox.c.status != PENDING)
             .order_by(outbox.c.id).limit(limit))
    if tx.dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    found = (await tx.conn.execute(query)).all()
    emptied = [{"row": row_id, "emptied": {k: v for k, v in payload.items() if k != "reply"}}
               for row_id, payload in found if isinstance(payload, dict) and "reply" in payload]
    if emptied:
        await tx.conn.execute(update(outbox).where(outbox.c.id == bindparam("row"))
                              .values(payload=bindparam("emptied")), emptied)
    return len(emptied), (int(found[-1][0]) + 1 if len(found) >= limit else None)


async def first_waiting_id(tx: Tx) -> int:
    """The lowest id of a message still pending, else the id after the newest: every
    message below it has gone out (or will not), so emptying can start there next time."""
    waiting = await tx.conn.scalar(select(func.min(outbox.c.id))
                                   .where(outbox.c.status == PENDING))
    if waiting is not None:
        return int(waiting)
    return int(await tx.conn.scalar(select(func.coalesce(func.max(outbox.c.id), 0))) or 0) + 1
