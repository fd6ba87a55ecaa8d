"""What is done about messages that do not go out (service layer): the delivery worker
(bot/workers/delivery.py) decides when, this decides what, inside the worker's transaction.

A person their channel cannot reach gets the message on another channel, and an alert's
case goes up the chain (escalation). A case closed meanwhile needs its alerts no more. A
conversation reply dropped for its age is followed, once, by a short sorry that asks the
question the person was at again. The administrators hear once of a channel failing for
long, on a channel that works, and again when it is back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from bot.domain.delivery import OutboxMessage
from bot.domain.message_kinds import Kind
from bot.domain.messages import Reply, Text
from bot.services.escalation import Escalation
from bot.services.outbox import Outbox
from storage import cases, outbox, people
from storage.db import Tx

WhereYouWere = Callable[[Tx, int, datetime], Awaitable[Reply | None]]
CHANNEL_NAMES = {"telegram": "Telegram", "zalo": "Zalo", "web": "Web"}


class Undelivered:
    def __init__(self, escalation: Escalation, outbox: Outbox, commune_id: int | None,
                 where_you_were: WhereYouWere) -> None:
        self.escalation = escalation
        self.outbox = outbox
        self.commune_id = commune_id
        self.where_you_were = where_you_were

    async def unreachable(self, tx: Tx, message: OutboxMessage, now: datetime) -> bool:
        """The channel says the person cannot be reached there. True: the case climbed."""
        return await self.escalation.reroute(tx, message, now)

    async def channel_failing(self, tx: Tx, message: OutboxMessage, now: datetime) -> bool:
        """A message a case waits on keeps failing with its channel. True: it climbed."""
        return await self.escalation.channel_failing(tx, message, now)

    async def case_open(self, tx: Tx, case_id: int | None) -> bool:
        if case_id is None:
            return False
        case = await cases.case_by_id(tx, case_id)
        return case is not None and not case.closed

    async def reply_dropped(self, tx: Tx, message: OutboxMessage, now: datetime) -> bool:
        """A reply went stale before its channel could carry it: the person is told where
        they were, once for as long as that message waits. True if it was queued."""
        if message.kind != Kind.REPLY or await outbox.waiting_of_kind(
                tx, message.channel, message.address, Kind.SORRY):
            return False
        reply = await self.where_you_were(tx, message.person_id, now)
        person = await people.person(tx, message.person_id)
        if reply is None or person is None:
            return False
        return await self.outbox.send(tx, person, reply, now, kind=Kind.SORRY,
                                      to=(message.channel, message.address)) is not None

    async def channel_down(self, tx: Tx, channel: str, since: datetime, now: datetime) -> int:
        """Tell each configured admin, on a channel other than this one; how many."""
        return await self._tell_admins(tx, channel, Text(
            "delivery.channel_down", {"channel": CHANNEL_NAMES.get(channel, channel),
                                      "since": since}), f"down:{since.isoformat()}", now)

    async def channel_back(self, tx: Tx, channel: str, since: datetime, now: datetime) -> int:
        return await self._tell_admins(tx, channel, Text(
            "delivery.channel_back", {"channel": CHANNEL_NAMES.get(channel, channel),
                                      "since": since}), f"back:{since.isoformat()}", now)

    async def _tell_admins(self, tx: Tx, channel: str, text: Text, what: str,
                           now: datetime) -> int:
        told = 0
        for admin in await people.configured_admins(tx, self.commune_id):
            elsewhere = [i for i in await people.identities_of(tx, admin.id)
                         if i.channel != channel]
            row = await self.outbox.send(tx, admin, Reply((text,)), now, kind=Kind.ADMIN,
                                         dedupe_key=f"{channel}-{what}:{admin.id}",
                                         identities=elsewhere)
            told += row is not None
        return told
