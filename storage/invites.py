"""Single-use invitations (storage layer)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from storage.db import Tx
from storage.models import Invite as InviteRow
from storage.sql import rowcount, table

invites = table(InviteRow)


@dataclass(frozen=True)
class Invite:
    id: int
    commune_id: int
    role: str
    village_id: int | None


async def add_invite(tx: Tx, *, code: str, commune_id: int, role: str, village_id: int | None,
                     created_by: int, now: datetime) -> None:
    await tx.conn.execute(invites.insert().values(code=code, commune_id=commune_id,
                                                  role=str(role), village_id=village_id,
                                                  created_by=created_by, created_at=now))


async def invite_by_code(tx: Tx, code: str) -> Invite | None:
    row = (await tx.conn.execute(select(invites.c.id, invites.c.commune_id, invites.c.role,
                                        invites.c.village_id)
                                 .where(invites.c.code == code))).first()
    return Invite(*row) if row else None


async def claim_invite(tx: Tx, invite_id: int, person_id: int, now: datetime) -> bool:
    """Single use even if two people open the link at the same moment."""
    return rowcount(await tx.conn.execute(
        update(invites).where(invites.c.id == invite_id, invites.c.used_at.is_(None))
        .values(used_by=person_id, used_at=now))) == 1
