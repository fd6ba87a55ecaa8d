"""Queueing messages (service layer): a message is written to the outbox in the transaction
of the change that causes it; the delivery worker (bot/workers/delivery.py) sends it.

Messages are queued only on the channels this deployment runs, given when the process is
assembled: a message on a channel nobody serves would wait for ever.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.domain.commune import CHANNELS
from bot.domain.delivery import ASK_TAP, OutboxMessage, ReplyWindow
from bot.domain.message_kinds import Kind
from bot.domain.messages import Media, Reply
from bot.domain.people import Identity, Person
from storage import outbox, people
from storage.db import Tx

log = logging.getLogger(__name__)


def preferred(identities: Sequence[Identity], first: str | None = None,
              low: Callable[[Identity], bool] | None = None) -> Identity | None:
    """Among the channels that still reach a person: one whose messaging window is not
    running `low`, if any; the one they chose (`first`), else the one they last used."""
    reachable = [i for i in identities if i.unreachable_at is None]
    reachable.sort(key=lambda i: (low(i) if low else False,
                                  i.channel != first if first else False,
                                  i.last_seen_at is None,
                                  -(i.last_seen_at.timestamp() if i.last_seen_at else 0),
                                  CHANNELS.index(i.channel)
                                  if i.channel in CHANNELS else 99))
    return reachable[0] if reachable else None


def edit_payload(original: OutboxMessage, reply: Reply, language: str,
                 meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"reply": reply.to_json(), "language": language,
            "meta": {**(meta or {}), "edit_of": original.id}}


# Channels that let the bot write only so much after the person last wrote.
WINDOWS: Mapping[str, ReplyWindow] = {"zalo": ReplyWindow()}
# Kinds that never ask for a tap: answers to what the person just did (their window has
# just opened), and what only follows or changes another message.
NO_ASKING = frozenset({Kind.REPLY, Kind.SORRY, Kind.MEDIA, Kind.EDIT, Kind.PROGRESS})


class Outbox:
    """Puts messages in the outbox for the channels this process delivers on. A person's
    channel whose messaging window runs low (`windows`) gives way to another of theirs;
    with none, the message asks for the tap that opens it again."""

    def __init__(self, served: Collection[str],
                 windows: Mapping[str, ReplyWindow] | None = None) -> None:
        self.served = frozenset(served)
        self.windows = dict(WINDOWS if windows is None else windows)

    def served_identities(self, identities: Sequence[Identity]) -> list[Identity]:
        return [i for i in identities if i.channel in self.served]

    async def send(self, tx: Tx, person: Person, reply: Reply, now: datetime, *,
                   kind: str = Kind.REPLY, case_id: int | None = None,
                   dedupe_key: str | None = None, fresh_key: bool = False,
                   to: tuple[str, str] | None = None,
                   identities: Sequence[Identity] | None = None,
                   meta: Mapping[str, Any] | None = None,
                   broadcast_id: int | None = None) -> OutboxMessage | None:
        """Queue `reply` for `person`: at `to` (channel, address) when answering them where
        they wrote, else on their preferred reachable channel. `fresh_key` says the dedupe
        key cannot exist yet (it names something made in this transaction), sparing the
        lookup. None when nothing was queued (a duplicate, or no channel reaches them)."""
        if dedupe_key and not fresh_key and await outbox.exists(tx, dedupe_key):
            return None
        extra: dict[str, Any] = {}
        if to is None:
            if identities is None:
                identities = await people.identities_of(tx, person.id)
            asking = kind not in NO_ASKING
            used = {i.id: await self._window_used(tx, i, now) for i in identities} \
                if asking else {}

            def low(ident: Identity) -> bool:
                window = self.windows.get(ident.channel)
                return window is not None and used.get(ident.id, 0) >= window.ask_at

            target = preferred(self.served_identities(identities), person.preferred_channel,
                               low if asking else None)
            if target is None:
                log.warning("no reachable channel person=%s kind=%s", person.id, kind)
                return None
            to = (target.channel, target.external_id)
            if asking and low(target):
                extra[ASK_TAP] = True
        return await outbox.add_message(
            tx, person_id=person.id, case_id=case_id, channel=to[0], address=to[1], kind=kind,
            payload={"reply": reply.to_json(), "language": person.language,
                     "meta": {**(meta or {}), **extra}},
            dedupe_key=dedupe_key, broadcast_id=broadcast_id, now=now)

    async def _window_used(self, tx: Tx, ident: Identity, now: datetime) -> int:
        """How much of the address's messaging window is spent, counting what waits to go
        there (0 on a channel without one)."""
        window = self.windows.get(ident.channel)
        if window is None or ident.unreachable_at is not None:
            return 0
        waiting = await outbox.waiting_for(tx, ident.channel, ident.external_id)
        return window.spent(ident.sent_since_heard + waiting, ident.heard_at, now)

    async def edit(self, tx: Tx, original: OutboxMessage, reply: Reply, now: datetime,
                   language: str, seq: int | None = None,
                   meta: Mapping[str, Any] | None = None) -> OutboxMessage | None:
        """Change a message already queued or sent (e.g. an alert someone has taken). Once
        per message; a message edited again and again (a progress count) numbers its edits
        `seq`. `meta` rides along (e.g. TOLD_APART)."""
        key = f"edit:{original.id}" if seq is None else f"edit:{original.id}:{seq}"
        if await outbox.exists(tx, key):
            return None
        return await outbox.add_message(
            tx, person_id=original.person_id, case_id=original.case_id,
            channel=original.channel, address=original.address, kind=Kind.EDIT,
            payload=edit_payload(original, reply, language, meta), dedupe_key=key,
            broadcast_id=None, now=now)

    async def send_media(self, tx: Tx, person: Person, alert: OutboxMessage | None,
                         media: Sequence[Media], caption: Reply, now: datetime,
                         dedupe_key: str) -> None:
        """Follow an alert with the report's photos and voice notes, each its own message,
        on the alert's chat, when the files came in on that same channel (a Telegram
        file_id means nothing elsewhere; the alert already says how many files there are)."""
        if alert is None:
            return
        for n, item in enumerate(media):
            if item.channel != alert.channel:
                continue
            await self.send(tx, person, Reply(caption.texts, media=item), now,
                            kind=Kind.MEDIA, case_id=alert.case_id,
                            dedupe_key=f"{dedupe_key}:m{n}", fresh_key=True,
                            to=(alert.channel, alert.address))
