"""Queries of the Zalo OA token store (storage layer). They never commit; callers own the
transaction. A pair is "active" (in use), "used" (its refresh token was spent on a newer
pair) or "failed" (Zalo refused its refresh token); a lease marks the one process spending
the refresh token right now."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Person, ZaloToken


async def active_token(s: AsyncSession, oa_id: str) -> ZaloToken | None:
    return await s.scalar(select(ZaloToken).where(ZaloToken.oa_id == oa_id,
                                                  ZaloToken.status == "active")
                          .execution_options(populate_existing=True))


async def latest_token(s: AsyncSession, oa_id: str) -> ZaloToken | None:
    return await s.scalar(select(ZaloToken).where(ZaloToken.oa_id == oa_id)
                          .order_by(ZaloToken.id.desc()).limit(1)
                          .execution_options(populate_existing=True))


async def token_row(s: AsyncSession, row_id: int) -> ZaloToken | None:
    return await s.get(ZaloToken, row_id, populate_existing=True)


async def refresh_token_known(s: AsyncSession, oa_id: str, refresh_token: str) -> bool:
    """Whether this refresh token was stored before (and so is in use or already spent)."""
    found = await s.scalar(select(ZaloToken.id).where(ZaloToken.oa_id == oa_id,
                                                      ZaloToken.refresh_token == refresh_token)
                           .limit(1))
    return found is not None


async def insert_active(s: AsyncSession, oa_id: str, access_token: str, refresh_token: str,
                        expires_at: datetime, now: datetime) -> ZaloToken:
    """Store a new active pair; raises IntegrityError when the OA already has one."""
    row = ZaloToken(oa_id=oa_id, access_token=access_token, refresh_token=refresh_token,
                    expires_at=expires_at, status="active", created_at=now)
    s.add(row)
    await s.flush()
    return row


async def claim_refresh(s: AsyncSession, row_id: int, owner: str, now: datetime,
                        lease: timedelta, statuses: Sequence[str] = ("active",)) -> str | None:
    """Take the right to spend this pair's refresh token, unless another process holds it.
    Returns the refresh token when the claim is ours."""
    result = await s.execute(
        update(ZaloToken)
        .where(ZaloToken.id == row_id, ZaloToken.status.in_(statuses),
               or_(ZaloToken.lease_until.is_(None), ZaloToken.lease_until < now))
        .values(lease_owner=owner, lease_until=now + lease)
        .execution_options(synchronize_session=False))
    if cast("CursorResult[Any]", result).rowcount != 1:
        return None
    return await s.scalar(select(ZaloToken.refresh_token).where(ZaloToken.id == row_id,
                                                                ZaloToken.lease_owner == owner))


async def release_refresh(s: AsyncSession, row_id: int, owner: str) -> None:
    await s.execute(update(ZaloToken)
                    .where(ZaloToken.id == row_id, ZaloToken.lease_owner == owner)
                    .values(lease_owner=None, lease_until=None)
                    .execution_options(synchronize_session=False))


async def retire(s: AsyncSession, row_id: int, status: str, now: datetime,
                 from_statuses: Sequence[str] = ("active",)) -> bool:
    """Mark a pair "used" (a newer one replaces it) or "failed"; False if it was not in one
    of `from_statuses` any more."""
    result = await s.execute(
        update(ZaloToken)
        .where(ZaloToken.id == row_id, ZaloToken.status.in_(from_statuses))
        .values(status=status, used_at=now, lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False))
    return cast("CursorResult[Any]", result).rowcount == 1


async def admins(s: AsyncSession, commune_id: int | None) -> Sequence[Person]:
    """The configured admins (of one commune, or of all when None)."""
    query = select(Person).where(Person.role == "admin", Person.key.is_not(None))
    if commune_id is not None:
        query = query.where(Person.commune_id == commune_id)
    return (await s.scalars(query.order_by(Person.id))).all()
