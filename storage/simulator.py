"""The web simulator's chat log: what each demo phone shows (storage layer)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from storage.db import Tx
from storage.models import SimMessage
from storage.sql import delete_batch, insert, table

log = table(SimMessage)


@dataclass(frozen=True)
class LoggedMessage:
    id: int
    direction: str
    payload: dict[str, Any]


async def add_inbound(tx: Tx, address: str, payload: dict[str, Any], now: datetime) -> None:
    """What the phone's person sent, as their own bubble shows it."""
    await tx.conn.execute(log.insert().values(address=address, direction="in",
                                              payload=payload, created_at=now))


async def add_delivered(tx: Tx, outbox_id: int, address: str, payload: dict[str, Any],
                        now: datetime) -> int:
    """The bot's message on the phone, once per outbox message: a second delivery of the
    same message (after a crash) writes nothing and returns the first one's id."""
    stmt = insert(tx, log).values(address=address, direction="out", payload=payload,
                                  created_at=now, outbox_id=outbox_id)
    row = (await tx.conn.execute(stmt.on_conflict_do_nothing(index_elements=["outbox_id"])
                                 .returning(log.c.id))).first()
    if row is not None:
        return int(row[0])
    return int((await tx.conn.execute(select(log.c.id).where(
        log.c.outbox_id == outbox_id))).scalar_one())


async def replace_payload(tx: Tx, message_id: int, payload: dict[str, Any]) -> None:
    await tx.conn.execute(update(log).where(log.c.id == message_id).values(payload=payload))


async def messages_after(tx: Tx, address: str, after: int,
                         limit: int = 500) -> list[LoggedMessage]:
    rows = await tx.conn.execute(select(log.c.id, log.c.direction, log.c.payload).where(
        log.c.address == address, log.c.id > after).order_by(log.c.id).limit(limit))
    return [LoggedMessage(r[0], r[1], dict(r[2])) for r in rows]


async def prune(tx: Tx, before: datetime, limit: int) -> int:
    """Delete up to `limit` chat log rows written before `before`; how many. An edit of a
    deleted bubble (its outbox message's external_ref) then changes nothing, and a phone
    reading after its last id still sees every newer message."""
    return await delete_batch(tx, log, log.c.created_at, before, limit)
