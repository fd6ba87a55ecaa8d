"""Single-use invitations (service layer): an admin makes one for a role (and village);
the first account that opens it with /start <code> takes that role. Nothing is trusted from
the link except the code, which only the database can turn into a role."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime

from bot.domain.commune_links import commune_code_of
from bot.domain.messages import Reply, Text, say
from bot.domain.people import Person
from bot.domain.permissions import may_invite, works_cases
from bot.domain.roles import INVITABLE
from bot.services.directory import Communes, Directory
from storage import invites, people
from storage.db import Tx


def invite_code() -> str:
    """A fresh invitation code; never one a commune's poster link could be read as."""
    while True:
        code = secrets.token_urlsafe(12)
        if commune_code_of(code) is None:
            return code


class Invites:
    def __init__(self, communes: Communes, links: Mapping[str, str] | None = None,
                 new_code: Callable[[], str] = lambda: invite_code(),
                 staff_changed: Callable[[], None] = lambda: None) -> None:
        self.communes = communes
        # Called once someone who became staff is committed (their command menu changes).
        self.staff_changed = staff_changed
        # Per channel, what a code is appended to (e.g. https://t.me/<bot>?start=).
        self.links = dict(links or {})
        self.new_code = new_code

    @staticmethod
    def _village(commune: Directory, raw: str) -> int | None:
        wanted = raw.strip().casefold()
        for key, name in commune.config.villages:
            if wanted in (key.casefold(), name.casefold()):
                return commune.village_ids[key]
        return None

    async def create(self, tx: Tx, admin: Person, args: str, channel: str,
                     now: datetime) -> Reply:
        if not may_invite(admin.role):
            return say("invite.not_allowed")
        role, _, village_raw = args.strip().partition(" ")
        role = role.casefold()
        commune = self.communes.get(admin.commune_id)
        if commune is None:  # a province's admin: the commune is named after the role
            commune, village_raw = self.communes.named(village_raw)
            if commune is None or role not in INVITABLE:
                return say("invite.usage_province")
        village_id = self._village(commune, village_raw) if village_raw.strip() else None
        if role not in INVITABLE or (village_raw.strip() and village_id is None):
            return say("invite.usage")
        code = self.new_code()
        await invites.add_invite(tx, code=code, commune_id=commune.commune_id,
                                 role=role, village_id=village_id, created_by=admin.id,
                                 now=now)
        link = f"{self.links[channel]}{code}" if channel in self.links else code
        return say("invite.created", role=Text(f"role.{role}"), link=link,
                   village=commune.village_names.get(village_id or 0, "-"),
                   commune=commune.config.name)



    async def redeem(self, tx: Tx, person: Person, code: str, now: datetime
                     ) -> tuple[Reply, Person]:
        """The answer, and the person as they are now (with the invitation's role)."""
        invite = await invites.invite_by_code(tx, code.strip()[:32])
        if invite is None or self.communes.get(invite.commune_id) is None:
            return say("invite.invalid"), person
        if not await invites.claim_invite(tx, invite.id, person.id, now):
            return say("invite.invalid"), person
        commune = self.communes.of(invite.commune_id)
        if works_in_another(person, invite.commune_id):
            # Staff of another commune keep that role and take this one too: one account,
            # a row in each commune (a police officer covering two communes).
            await self._add_role(tx, person, invite.commune_id, invite.role,
                                 invite.village_id, now)
            if works_cases(invite.role):
                tx.after_commit(self.staff_changed)
            return say("invite.joined_also", role=Text(f"role.{invite.role}"),
                       commune=commune.config.name), person
        await people.take_role(tx, person.id, invite.commune_id, invite.role, invite.village_id)
        if works_cases(invite.role):
            tx.after_commit(self.staff_changed)
        joined = replace(person, commune_id=invite.commune_id, role=invite.role,
                         village_id=invite.village_id)
        return say("invite.joined", role=Text(f"role.{invite.role}")), joined

    @staticmethod
    async def _add_role(tx: Tx, person: Person, commune_id: int, role: str,
                        village_id: int | None, now: datetime) -> None:
        for row in await people.rows_of_account(tx, person.account):
            if row.commune_id == commune_id:
                await people.take_role(tx, row.id, commune_id, role, village_id)
                return
        await people.add_person(tx, commune_id=commune_id, key=None, role=role,
                                name=person.name, language=person.language, created_at=now,
                                village_id=village_id, account_id=person.account)


def works_in_another(person: Person, commune_id: int) -> bool:
    """Already staff somewhere else: a new role adds to theirs rather than moving them."""
    return works_cases(person.role) and person.commune_id != commune_id
