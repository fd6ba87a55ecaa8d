"""Queueing messages (service layer): a message is written to the outbox in the transaction
of the change that causes it; the delivery worker (bot/workers/delivery.py) sends it.

Messages are queued only on the channels this deployment runs, given when the process is
assembled: a message on a channel nobody serves would wait for ever.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Send:
    """One message of `Outbox.send_all`: what `send` is given, on the preferred channel."""

    person: Person
    reply: Reply
    kind: str
    case_id: int | None
    dedupe_key: str


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
            found = await self._target(tx, person, identities, kind, now, {})
            if found is None:
                return None
            to, extra = found
        return await outbox.add_message(
            tx, person_id=person.id, case_id=case_id, channel=to[0], address=to[1], kind=kind,
            payload={"reply": reply.to_json(), "language": person.language,
                     "meta": {**(meta or {}), **extra}},
            dedupe_key=dedupe_key, broadcast_id=broadcast_id, now=now)

    async def send_all(self, tx: Tx, sends: Sequence[Send], now: datetime
                       ) -> list[OutboxMessage | None]:
        """Many `send`s (each on the person's preferred channel), with one read of their
        addresses, one of the dedupe keys and one insert; each's message or None, in order."""
        known = await outbox.existing_keys(tx, {s.dedupe_key for s in sends})
        addresses = await people.identities_for(tx, [s.person.id for s in sends])
        # Rows queued here count against a messaging window like those already waiting.
        queued: dict[tuple[str, str], int] = {}
        rows: list[dict[str, Any]] = []
        placed: list[int | None] = []
        # A case's alert goes to each of its level's people: written out once.
        written: dict[int, dict[str, Any]] = {}
        for s in sends:
            found = None if s.dedupe_key in known else await self._target(
                tx, s.person, addresses[s.person.id], s.kind, now, queued)
            if found is None:
                placed.append(None)
                continue
            (channel, address), extra = found
            if id(s.reply) not in written:
                written[id(s.reply)] = s.reply.to_json()
            known.add(s.dedupe_key)
            queued[(channel, address)] = queued.get((channel, address), 0) + 1
            placed.append(len(rows))
            rows.append({"person_id": s.person.id, "case_id": s.case_id, "channel": channel,
                         "address": address, "kind": s.kind, "dedupe_key": s.dedupe_key,
                         "broadcast_id": None,
                         "payload": {"reply": written[id(s.reply)],
                                     "language": s.person.language, "meta": extra}})
        added = await outbox.add_messages(tx, rows, now)
        return [None if n is None else added[n] for n in placed]

    async def _target(self, tx: Tx, person: Person, identities: Sequence[Identity],
                      kind: str, now: datetime, queued: Mapping[tuple[str, str], int]
                      ) -> tuple[tuple[str, str], dict[str, Any]] | None:
        """Where a message to `person` goes, and the meta that says it asks for a tap;
        None when no channel reaches them. `queued` counts rows not yet written."""
        asking = kind not in NO_ASKING
        used = {i.id: await self._window_used(tx, i, now)
                + queued.get((i.channel, i.external_id), 0)
                for i in identities} if asking else {}

        def low(ident: Identity) -> bool:
            window = self.windows.get(ident.channel)
            return window is not None and used.get(ident.id, 0) >= window.ask_at

        target = preferred(self.served_identities(identities), person.preferred_channel,
                           low if asking else None)
        if target is None:
            log.warning("no reachable channel person=%s kind=%s", person.id, kind)
            return None
        extra: dict[str, Any] = {ASK_TAP: True} if asking and low(target) else {}
        return (target.channel, target.external_id), extra

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

    async def edit_all(self, tx: Tx, edits: Sequence[tuple[OutboxMessage, Reply]],
                       now: datetime, seq: int) -> None:
        """Many `edit`s of the same `seq`, each in its message's language, in one insert."""
        keyed = {f"edit:{original.id}:{seq}": (original, reply) for original, reply in edits}
        known = await outbox.existing_keys(tx, keyed)
        await outbox.add_messages(tx, [
            {"person_id": original.person_id, "case_id": original.case_id,
             "channel": original.channel, "address": original.address, "kind": Kind.EDIT,
             "payload": edit_payload(original, reply, original.language), "dedupe_key": key,
             "broadcast_id": None}
            for key, (original, reply) in keyed.items() if key not in known], now)

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
            await self.send(tx, person, Reply(caption.texts, media=item,
                                              protect=caption.protect), now,
                            kind=Kind.MEDIA, case_id=alert.case_id,
                            dedupe_key=f"{dedupe_key}:m{n}", fresh_key=True,
                            to=(alert.channel, alert.address))
