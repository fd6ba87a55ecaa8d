"""Telling the commune's administrators what only they can fix (service layer)."""

from __future__ import annotations

from collections.abc import Callable

from bot.clock import Clock
from bot.domain.message_kinds import Kind
from bot.domain.messages import Reply, Text
from bot.services.outbox import Outbox
from storage import people
from storage.db import Database


class AdminAlerts:
    def __init__(self, database: Database, clock: Clock, outbox: Outbox,
                 commune_id: int | None, on_queued: Callable[[], None] | None = None) -> None:
        self.database = database
        self.clock = clock
        self.outbox = outbox
        self.commune_id = commune_id
        self.on_queued = on_queued

    async def channel_authorisation_lost(self, channel: str, row_id: int, code: int) -> int:
        """The channel's credentials were refused (Zalo: the OA's refresh token): each
        configured admin is told once per lost credential, on a channel that is not this
        one. How many were told."""
        now = self.clock.now()
        reply = Reply((Text("zalo.token_lost", {"code": code}),))
        count = 0
        async with self.database.transaction() as tx:
            for admin in await people.configured_admins(tx, self.commune_id):
                elsewhere = [i for i in await people.identities_of(tx, admin.id)
                             if i.channel != channel]
                row = await self.outbox.send(tx, admin, reply, now, kind=Kind.ADMIN,
                                             dedupe_key=f"{channel}-token-lost:{row_id}:"
                                                        f"{admin.id}",
                                             identities=elsewhere)
                count += row is not None
        if count and self.on_queued is not None:
            self.on_queued()
        return count
