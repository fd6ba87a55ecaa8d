"""The Zalo OA's token pairs (storage layer). A pair is "active" (in use), "used" (its
refresh token was spent on a newer pair) or "failed" (Zalo refused its refresh token); a
lease marks the one process spending the refresh token right now. At most one pair per OA
is active (a partial unique index, migration 0007).

`ZaloTokenRows` is what the token store in bot/handlers/zalo/tokens.py works through: each
method is one whole transaction, so no transaction is ever open while Zalo is called.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update

from storage.db import Database, Tx
from storage.models import ZaloToken
from storage.sql import insert, rowcount, table

tokens = table(ZaloToken)


@dataclass(frozen=True)
class TokenRow:
    id: int
    access_token: str = field(repr=False)
    expires_at: datetime
    status: str
    lease_until: datetime | None


def _row(m: Mapping[Any, Any]) -> TokenRow:
    return TokenRow(id=m["id"], access_token=m["access_token"], expires_at=m["expires_at"],
                    status=m["status"], lease_until=m["lease_until"])


async def _active(tx: Tx, oa_id: str) -> TokenRow | None:
    row = (await tx.conn.execute(select(tokens).where(tokens.c.oa_id == oa_id,
                                                      tokens.c.status == "active"))).first()
    return _row(row._mapping) if row else None


async def _insert(tx: Tx, oa_id: str, access_token: str, refresh_token: str,
                  expires_at: datetime, now: datetime, status: str = "active") -> int | None:
    """The new pair's id; None when the OA has an active pair already."""
    stmt = insert(tx, tokens).values(oa_id=oa_id, access_token=access_token,
                                     refresh_token=refresh_token, expires_at=expires_at,
                                     status=status, created_at=now,
                                     used_at=None if status == "active" else now)
    row = (await tx.conn.execute(stmt.on_conflict_do_nothing().returning(tokens.c.id))).first()
    return int(row[0]) if row else None


async def _retire(tx: Tx, row_id: int, status: str, now: datetime,
                  from_statuses: Sequence[str]) -> bool:
    return rowcount(await tx.conn.execute(
        update(tokens).where(tokens.c.id == row_id, tokens.c.status.in_(list(from_statuses)))
        .values(status=status, used_at=now, lease_owner=None, lease_until=None))) == 1


async def _release(tx: Tx, row_id: int, owner: str) -> None:
    await tx.conn.execute(update(tokens).where(tokens.c.id == row_id,
                                               tokens.c.lease_owner == owner)
                          .values(lease_owner=None, lease_until=None))


class ZaloTokenRows:
    """One OA's stored pairs."""

    def __init__(self, database: Database, oa_id: str) -> None:
        self.database = database
        self.oa_id = oa_id

    async def active(self) -> TokenRow | None:
        async with self.database.read() as tx:
            return await _active(tx, self.oa_id)

    async def latest(self) -> TokenRow | None:
        async with self.database.read() as tx:
            row = (await tx.conn.execute(select(tokens).where(tokens.c.oa_id == self.oa_id)
                                         .order_by(tokens.c.id.desc()).limit(1))).first()
        return _row(row._mapping) if row else None

    async def seed(self, access_token: str, refresh_token: str, expires_at: datetime,
                   now: datetime) -> int | None:
        """Store the environment's pair as the active one, once: not when a pair is active,
        nor when this refresh token was stored before (it is in use or spent). The new
        row's id, or None."""
        async with self.database.transaction() as tx:
            if await _active(tx, self.oa_id) is not None:
                return None
            known = (await tx.conn.execute(select(tokens.c.id).where(
                tokens.c.oa_id == self.oa_id, tokens.c.refresh_token == refresh_token)
                .limit(1))).first()
            if known is not None:
                return None
            return await _insert(tx, self.oa_id, access_token, refresh_token, expires_at, now)

    async def claim(self, row_id: int, owner: str, now: datetime, lease: timedelta,
                    statuses: Sequence[str] = ("active",)) -> str | None:
        """Take the right to spend this pair's refresh token, unless another process holds
        it; the refresh token when the claim is ours."""
        async with self.database.transaction() as tx:
            claimed = rowcount(await tx.conn.execute(
                update(tokens)
                .where(tokens.c.id == row_id, tokens.c.status.in_(list(statuses)),
                       or_(tokens.c.lease_until.is_(None), tokens.c.lease_until < now))
                .values(lease_owner=owner, lease_until=now + lease)))
            if claimed != 1:
                return None
            value: str | None = await tx.conn.scalar(
                select(tokens.c.refresh_token).where(tokens.c.id == row_id,
                                                     tokens.c.lease_owner == owner))
            return value

    async def release(self, row_id: int, owner: str) -> None:
        async with self.database.transaction() as tx:
            await _release(tx, row_id, owner)

    async def replace(self, old_id: int, access_token: str, refresh_token: str,
                      expires_at: datetime, now: datetime) -> TokenRow:
        """The refreshed pair becomes the active one and the old one is marked used, in one
        transaction. Returns the active pair: ours, or (if another pair was stored meanwhile,
        only possible if Zalo honoured one refresh token twice) theirs, ours kept as used."""
        async with self.database.transaction() as tx:
            await _retire(tx, old_id, "used", now, ("active", "failed"))
            new_id = await _insert(tx, self.oa_id, access_token, refresh_token, expires_at,
                                   now)
            if new_id is None:
                await _insert(tx, self.oa_id, access_token, refresh_token, expires_at, now,
                              status="used")
            active = await _active(tx, self.oa_id)
            assert active is not None
            return active

    async def refused(self, row_id: int, owner: str, now: datetime) -> TokenRow | None:
        """Zalo refused this pair's refresh token: if another pair is active by now, that
        one (the claim let go); otherwise the pair is marked failed and None returned."""
        async with self.database.transaction() as tx:
            active = await _active(tx, self.oa_id)
            if active is not None and active.id != row_id:
                await _release(tx, row_id, owner)
                return active
            await _retire(tx, row_id, "failed", now, ("active", "failed"))
            return None
