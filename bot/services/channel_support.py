"""What the channels ask of the database, each one short transaction (service layer):
store webhook events before their 200, mark an address that no longer reaches its person,
hand out a file the bot made."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.clock import Clock
from bot.domain.delivery import FileToSend
from storage import audit, files, inbound, people
from storage.db import Database

log = logging.getLogger(__name__)


class ChannelSupport:
    def __init__(self, database: Database, clock: Clock) -> None:
        self.database = database
        self.clock = clock

    async def store_events(self, channel: str,
                           events: Sequence[tuple[str, str, dict[str, Any], datetime]]
                           ) -> list[bool]:
        """Store (key, sender, payload, received_at) webhook events in one transaction; for
        each, whether it is new (False: its key was stored before)."""
        async with self.database.transaction() as tx:
            return await inbound.store_events(tx, channel, events)

    async def unreachable(self, channel: str, address: str) -> None:
        """The person left the channel: their messages go to their other channels now (or
        an alert up the chain)."""
        async with self.database.transaction() as tx:
            await people.mark_unreachable(tx, channel, address, self.clock.now())

    async def heard(self, channel: str, address: str) -> None:
        """The person wrote without a conversation turn (a tap that keeps the messaging
        window open): reachable there again, the window open anew."""
        async with self.database.transaction() as tx:
            await people.heard_from(tx, channel, address, self.clock.now())

    async def stored_file(self, file_id: int) -> FileToSend | None:
        async with self.database.read() as tx:
            return await files.stored_file(tx, file_id)

    async def downloaded(self, file_id: int) -> None:
        """A statistics file was fetched through its link: a read of its commune's figures
        by whoever held the link (no person known), on the commune's audit chain."""
        async with self.database.transaction() as tx:
            commune_id = await files.commune_of(tx, file_id)
            if commune_id is not None:
                await audit.record(tx, commune_id=commune_id, actor_id=None,
                                   action="stats_downloaded", at=self.clock.now(),
                                   detail={"file": file_id})
