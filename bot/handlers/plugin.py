"""What a channel brings to the process, and what the process gives it (handlers layer).

`bot/app.py` assembles a process once, in two steps per channel: `open` (log in, seed
credentials) hands over what sending needs (the sender, its own workers, invitation links,
how it reads typed labels); once the core services exist, `attach` hands over what
receiving needs (the handler for its stored webhook events, its HTTP routes, its loops).
Nothing is patched into the core afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from aiohttp import web

from bot.clock import Clock
from bot.domain.delivery import FileToSend, Sender
from bot.services.conversation import ConversationService, LabelMatcher
from bot.services.simulator_log import SimulatorLog
from bot.workers.command_menus import CommandMenuSetter
from bot.workers.heartbeat import ProcessIdentity
from bot.workers.worker import Worker

EventHandler = Callable[[Mapping[str, Any]], Awaitable[None]]
Loop = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Base:
    """What a channel may use before the core exists."""

    clock: Clock
    # Who this process is: the channel's own workers lease rows as `identity.owner(...)`.
    identity: ProcessIdentity
    # A channel's credential rows in the database, for an account id (Zalo's OA tokens:
    # storage/zalo_tokens.ZaloTokenRows, which bot/handlers/zalo/tokens.TokenRows names).
    token_rows: Callable[[str], Any]
    # Tell the admins, on another channel than this one, that its credentials were refused:
    # (channel, credential row id, the platform's code) -> how many were told.
    alert_admins: Callable[[str, int, int], Awaitable[int]]
    # The simulator's phones and chat log.
    simulator_log: SimulatorLog


@dataclass(frozen=True)
class Core:
    """The process's services a channel may use to receive."""

    clock: Clock
    conversations: ConversationService
    # Store webhook events, each answered once stored: (key, sender, payload, received_at)
    # -> whether each is new (False: a redelivery).
    store_events: Callable[[str, Sequence[tuple[str, str, dict[str, Any], datetime]]],
                           Awaitable[list[bool]]]
    # A person's address that no longer reaches them (they left the channel).
    unreachable: Callable[[str, str], Awaitable[None]]
    # A person wrote on an address without a conversation turn (a tap that only keeps
    # the channel's messaging window open).
    heard: Callable[[str, str], Awaitable[None]]
    # A file the bot made, for whoever holds its link.
    stored_file: Callable[[int], Awaitable[FileToSend | None]]
    # Wake background workers by name (none: all): something was queued or changed.
    wake: Callable[..., None]
    # Run the named background workers (none: all) until they have nothing left to do.
    settle: Callable[[Sequence[str]], Awaitable[int]]


@dataclass
class Outbound:
    """What a channel brings for sending."""

    sender: Sender
    # What an invitation code is appended to, to make a link that opens this channel.
    invite_link: str | None = None
    # How a typed button label is read back (None: typed text is text).
    labels: LabelMatcher | None = None
    # Background work of the channel's own (Zalo's token refresher).
    workers: list[Worker] = field(default_factory=list)
    # How the channel lists its commands beside the text box (None: it has no such list).
    command_menus: CommandMenuSetter | None = None


@dataclass
class Inbound:
    """What a channel brings for receiving."""

    # Handles this channel's webhook events from the inbound queue (stored before their
    # 200); None for a channel whose inbound is handled as it arrives.
    stored_events: EventHandler | None = None
    routes: list[web.RouteDef] = field(default_factory=list)
    # Long-running loops of the channel's own (Telegram's long polling), until the event.
    loops: list[Loop] = field(default_factory=list)
    # Called once the web server listens (Telegram's webhook registration).
    on_listening: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # What the log says about this channel once the process serves.
    announce: str = ""


class ChannelPlugin(Protocol):
    """A channel the process can serve."""

    name: str

    async def open(self, base: Base) -> Outbound: ...

    async def attach(self, core: Core) -> Inbound: ...

    async def close(self) -> None:
        """Let go of what `open` opened (HTTP sessions, clients)."""
        ...
