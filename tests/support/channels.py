"""Channels of the tests' own: any Sender (an object with `name` and `async deliver`)
served as a channel of the app."""

from __future__ import annotations

from bot.domain.delivery import Sender
from bot.handlers.plugin import Base, Core, Inbound, Outbound


class SenderPlugin:
    """A channel that only sends, through `sender` (a fake edge the test controls)."""

    def __init__(self, sender: Sender) -> None:
        self.sender = sender
        self.name = sender.name

    async def open(self, base: Base) -> Outbound:
        return Outbound(sender=self.sender)

    async def attach(self, core: Core) -> Inbound:
        return Inbound()

    async def close(self) -> None:
        return None
