"""Single-use invitations: an admin makes one for a role (and village); the first account
that opens it with /start <code> takes that role. Nothing is trusted from the link except
the code, which only the database can turn into a role."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.messages import Reply, Text, say
from bot.domain.permissions import may_invite
from bot.domain.roles import INVITABLE
from bot.services.directory import Directory
from storage.models import Invite, Person


class Invites:
    def __init__(self, directory: Directory,
                 new_code: Callable[[], str] = lambda: secrets.token_urlsafe(12)) -> None:
        self.directory = directory
        self.new_code = new_code
        # Per channel, what a code is appended to (e.g. https://t.me/<bot>?start=).
        self.links: dict[str, str] = {}

    def _village(self, raw: str) -> int | None:
        wanted = raw.strip().casefold()
        for key, name in self.directory.config.villages:
            if wanted in (key.casefold(), name.casefold()):
                return self.directory.village_ids[key]
        return None

    async def create(self, s: AsyncSession, admin: Person, args: str, channel: str,
                     now: datetime) -> Reply:
        if not may_invite(admin):
            return say("invite.not_allowed")
        role, _, village_raw = args.strip().partition(" ")
        role = role.casefold()
        village_id = self._village(village_raw) if village_raw.strip() else None
        if role not in INVITABLE or (village_raw.strip() and village_id is None):
            return say("invite.usage")
        code = self.new_code()
        s.add(Invite(code=code, commune_id=self.directory.commune_id, role=role,
                     village_id=village_id, created_by=admin.id, created_at=now))
        link = f"{self.links[channel]}{code}" if channel in self.links else code
        return say("invite.created", role=Text(f"role.{role}"), link=link,
                   village=self.directory.village_names.get(village_id or 0, "-"))

    async def redeem(self, s: AsyncSession, person: Person, code: str,
                     now: datetime) -> Reply:
        invite = await s.scalar(select(Invite).where(Invite.code == code.strip()[:32]))
        if invite is None or invite.commune_id != self.directory.commune_id:
            return say("invite.invalid")
        # Single use even if two people open the link at the same moment.
        claimed = await s.execute(
            update(Invite).where(Invite.id == invite.id, Invite.used_at.is_(None))
            .values(used_by=person.id, used_at=now).execution_options(synchronize_session=False))
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return say("invite.invalid")
        person.role = invite.role
        person.village_id = invite.village_id
        return say("invite.joined", role=Text(f"role.{invite.role}"))
