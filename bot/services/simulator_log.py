"""The web simulator's phones and what they show (service layer): the configured people,
each with a phone, and the chat log their phones read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.clock import Clock
from bot.domain.people import Person
from bot.services.directory import Communes
from storage import people, simulator
from storage.db import Database
from storage.simulator import LoggedMessage

CHANNEL = "web"


@dataclass(frozen=True)
class Phone:
    key: str
    name: str
    role: str
    phone: str
    # The person's language: the phone's own labels are shown in it, like the bot's words.
    language: str
    # Where the phone's location tool says it is (latitude, longitude): its person's
    # village, else the first village of their commune the file places; None if none.
    where: tuple[float, float] | None = None


class SimulatorLog:
    def __init__(self, database: Database, clock: Clock, communes: Communes) -> None:
        self.database = database
        self.clock = clock
        self.communes = communes

    async def phones(self) -> list[Phone]:
        async with self.database.read() as tx:
            homes = [c.commune_id for c in self.communes]
            if self.communes.province_id is not None:
                homes.append(self.communes.province_id)
            found = [p for home in homes for p in await people.configured_people(tx, home)]
            identities = await people.identities_for(tx, [p.id for p in found])
        # A phone is keyed by its person's web address (in a province, "<commune>.<key>").
        web = {p.id: next((i.external_id for i in identities.get(p.id, [])
                           if i.channel == CHANNEL), p.key or "") for p in found}
        return [Phone(web[p.id], p.name, p.role, p.phone or "", p.language, self._where(p))
                for p in found]

    def _where(self, person: Person) -> tuple[float, float] | None:
        commune = self.communes.get(person.commune_id)
        if commune is None:
            return None
        points = commune.config.village_points
        own = commune.village_key(person.village_id)
        if own is not None and own in points:
            return points[own]
        return next((points[key] for key, _ in commune.config.villages if key in points), None)

    async def record_sent(self, key: str, shown: dict[str, Any]) -> bool:
        """The phone's own bubble for what its person sent; False for no such phone."""
        async with self.database.transaction() as tx:
            if await people.identity(tx, CHANNEL, key) is None:
                return False
            await simulator.add_inbound(tx, key, shown, self.clock.now())
        return True

    async def delivered(self, outbox_id: int, key: str, shown: dict[str, Any]) -> str:
        """The bot's message on the phone, once however often it is delivered; its id."""
        async with self.database.transaction() as tx:
            return str(await simulator.add_delivered(tx, outbox_id, key, shown,
                                                     self.clock.now()))

    async def edited(self, message_ref: str, shown: dict[str, Any]) -> None:
        if message_ref.isdigit():
            async with self.database.transaction() as tx:
                await simulator.replace_payload(tx, int(message_ref), shown)

    async def messages(self, key: str, after: int) -> list[LoggedMessage]:
        async with self.database.read() as tx:
            return await simulator.messages_after(tx, key, after)
