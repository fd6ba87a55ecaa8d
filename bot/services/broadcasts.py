"""Broadcasts (service layer): an officer's message to every collaborator of the commune.

`/broadcast` starts the flow in bot/flows/broadcast.py; its SendBroadcast queues one outbox
message per collaborator (kind "broadcast", so conversations go first) in the confirming
transaction, and the sender's progress message, which the broadcast tracker
(bot/workers/broadcasts.py) edits as delivery goes on. Collaborators with no channel that
reaches them count as unreachable from the start.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from bot.domain.message_kinds import Kind
from bot.domain.messages import Reply, Text, say
from bot.domain.people import Person
from bot.domain.permissions import may_broadcast
from bot.domain.roles import Role
from bot.flows import engine
from bot.flows.book import FLOWS
from bot.flows.broadcast import text_problem
from bot.flows.effects import Effect
from bot.services.directory import Communes
from bot.services.outbox import Outbox
from storage import broadcasts, people
from storage.db import Tx

log = logging.getLogger(__name__)


def progress_reply(done: int, total: int, finished: bool) -> Reply:
    if finished:
        return say("broadcast.progress_done", done=done, total=total)
    return say("broadcast.progress", done=done, total=total)


class Broadcasts:
    def __init__(self, communes: Communes, outbox: Outbox) -> None:
        self.communes = communes
        self.outbox = outbox

    async def start(self, tx: Tx, person: Person, typed: str, state: engine.State,
                    ctx: engine.Context) -> tuple[engine.State, list[Effect]]:
        """/broadcast [text]: start the flow for someone who may broadcast, with the number
        of collaborators it will reach."""
        if not may_broadcast(person.role):
            return state, [say("broadcast.not_allowed")]
        if self.communes.get(person.commune_id) is None:
            # A broadcast reaches one commune's collaborators, from that commune's staff.
            return state, [say("province.commune_only")]
        count = await people.count_with_roles(tx, person.commune_id,
                                              (Role.COLLABORATOR,))
        if count == 0:
            return state, [say("broadcast.nobody")]
        # Someone in several communes confirms later: the broadcast goes where it began.
        data: dict[str, Any] = {"count": count, "commune_id": person.commune_id}
        lead: list[Effect] = []
        typed = typed.strip()
        if typed:
            problem = text_problem(typed)
            if problem is None:
                data["text"] = typed
            else:
                lead.append(Reply((problem,)))
        new_state, effects = engine.start(FLOWS, "broadcast", ctx, data, current=state)
        return new_state, [*lead, *effects]

    async def send(self, tx: Tx, person: Person, channel: str, text: str,
                   now: datetime) -> list[Reply]:
        """Queue the message for every collaborator and the progress message for the sender."""
        if not may_broadcast(person.role):
            return [say("broadcast.not_allowed")]
        if self.communes.get(person.commune_id) is None:
            return [say("province.commune_only")]
        text = text.strip()
        problem = text_problem(text)
        if problem is not None:
            return [Reply((problem,))]
        commune_id = person.commune_id  # a broadcast reaches the sender's own commune
        collaborators = await people.people_with_roles(tx, commune_id, (Role.COLLABORATOR,))
        if not collaborators:
            return [say("broadcast.nobody")]
        sent = await broadcasts.add_broadcast(tx, commune_id, person.id, len(collaborators),
                                              now)
        progress = await self.outbox.send(
            tx, person, progress_reply(0, len(collaborators), False), now, kind=Kind.PROGRESS,
            to=await self._address(tx, person, channel),
            dedupe_key=f"broadcast:{sent}:progress", fresh_key=True)
        message = Reply((Text("broadcast.message", {
            "commune": self.communes.of(commune_id).config.name,
            "sender": person.name or Text("broadcast.unnamed_sender"), "text": text}),))
        identities = await people.identities_for(tx, [p.id for p in collaborators])
        queued = 0
        for collaborator in collaborators:
            row = await self.outbox.send(tx, collaborator, message, now, kind=Kind.BROADCAST,
                                         identities=identities[collaborator.id],
                                         dedupe_key=f"broadcast:{sent}:p{collaborator.id}",
                                         fresh_key=True, broadcast_id=sent)
            queued += row is not None
        await broadcasts.set_progress_message(tx, sent,
                                              progress.id if progress is not None else None)
        log.info("broadcast %s by person %s: %s collaborators, %s with a channel", sent,
                 person.id, len(collaborators), queued)
        # The progress message is the answer; the summary follows when delivery is over.
        return []

    @staticmethod
    async def _address(tx: Tx, person: Person, channel: str) -> tuple[str, str] | None:
        """Where the sender confirmed: progress belongs in that chat."""
        mine = [i for i in await people.identities_of(tx, person.id) if i.channel == channel]
        mine.sort(key=lambda i: i.last_seen_at.timestamp() if i.last_seen_at else 0.0,
                  reverse=True)
        return (channel, mine[0].external_id) if mine else None
