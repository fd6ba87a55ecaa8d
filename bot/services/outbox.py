"""Queueing messages (service layer): a message is written to the outbox in the transaction
of the change that causes it; the delivery worker (bot/workers/delivery.py) sends it.

Messages are queued only on the channels this deployment runs, given when the process is
assembled: a message on a channel nobody serves would wait for ever.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.domain.commune import CHANNELS
from bot.domain.delivery import OutboxMessage
from bot.domain.message_kinds import Kind
from bot.domain.messages import Media, Reply
from bot.domain.people import Identity, Person
from storage import outbox, people
from storage.db import Tx

log = logging.getLogger(__name__)


def preferred(identities: Sequence[Identity], first: str | None = None) -> Identity | None:
    """Among the channels that still reach a person: the one they chose (`first`), else
    the one they last used."""
    reachable = [i for i in identities if i.unreachable_at is None]
    reachable.sort(key=lambda i: (i.channel != first if first else False,
                                  i.last_seen_at is None,
                                  -(i.last_seen_at.timestamp() if i.last_seen_at else 0),
                                  CHANNELS.index(i.channel)
                                  if i.channel in CHANNELS else 99))
    return reachable[0] if reachable else None


def edit_payload(original: OutboxMessage, reply: Reply, language: str) -> dict[str, Any]:
    return {"reply": reply.to_json(), "language": language, "meta": {"edit_of": original.id}}


class Outbox:
    """Puts messages in the outbox for the channels this process delivers on."""

    def __init__(self, served: Collection[str]) -> None:
        self.served = frozenset(served)

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
        if to is None:
            if identities is None:
                identities = await people.identities_of(tx, person.id)
            target = preferred(self.served_identities(identities), person.preferred_channel)
            if target is None:
                log.warning("no reachable channel person=%s kind=%s", person.id, kind)
                return None
            to = (target.channel, target.external_id)
        return await outbox.add_message(
            tx, person_id=person.id, case_id=case_id, channel=to[0], address=to[1], kind=kind,
            payload={"reply": reply.to_json(), "language": person.language,
                     "meta": dict(meta or {})},
            dedupe_key=dedupe_key, broadcast_id=broadcast_id, now=now)

    async def edit(self, tx: Tx, original: OutboxMessage, reply: Reply, now: datetime,
                   language: str, seq: int | None = None) -> OutboxMessage | None:
        """Change a message already queued or sent (e.g. an alert someone has taken). Once
        per message; a message edited again and again (a progress count) numbers its edits
        `seq`."""
        key = f"edit:{original.id}" if seq is None else f"edit:{original.id}:{seq}"
        if await outbox.exists(tx, key):
            return None
        return await outbox.add_message(
            tx, person_id=original.person_id, case_id=original.case_id,
            channel=original.channel, address=original.address, kind=Kind.EDIT,
            payload=edit_payload(original, reply, language), dedupe_key=key,
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
