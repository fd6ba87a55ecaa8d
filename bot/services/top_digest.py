"""The top of the escalation chain's digest (service layer): once a case has reached the top
and its people had their alert, they hear of it again only in one digest at the commune's
pace (bot/domain/top_digest.py), listing every case still waiting on them.

A person's digest is a row (storage/top_digests.py) armed when a case waits on them; the
timer worker claims it when due and hands it to `fire`, in its own transaction. `fire`
sends only what still waits at that moment, so a case someone acted on drops out, and a
row with nothing left goes quiet until a case waits again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from bot.domain import alerts
from bot.domain.cases import Urgency
from bot.domain.message_kinds import Kind
from bot.domain.people import Person
from bot.domain.top_digest import DigestPace, DigestTimer
from bot.services.directory import Communes
from bot.services.outbox import Outbox
from storage import cases, people, top_digests
from storage.db import Tx

log = logging.getLogger(__name__)


class TopDigest:
    def __init__(self, communes: Communes, outbox: Outbox) -> None:
        self.communes = communes
        self.outbox = outbox

    def pace(self, person: Person | None = None) -> DigestPace:
        """The pace of the person's commune's digests; the province file's for the
        province's own people (the first commune's for a person not known here)."""
        found = self.communes.get(person.commune_id) if person is not None else None
        if (found is None and person is not None and self.communes.province_digest
                and person.commune_id == self.communes.province_id):
            return self.communes.province_digest
        return (found or self.communes.first).config.top_digest

    def _village(self, commune_id: int, village_id: int | None) -> str | None:
        found = self.communes.get(commune_id)
        return found.village_name(village_id) if found is not None else None

    def top(self, person: Person) -> int:
        """From which level a case waits on this person: their commune's top. The
        province's people sit at any level of any commune's chain (chains differ in
        length), and hear in their digest of every case that reached them."""
        found = self.communes.get(person.commune_id)
        return len(found.config.levels) if found is not None else 1

    async def arm_after_alert(self, tx: Tx, commune_id: int, person_ids: Sequence[int],
                              now: datetime) -> None:
        """A case has just reached the top and these people had its alert: their next
        digest comes one interval later (or sooner, if one was due already)."""
        pace = self.communes.of(commune_id).config.top_digest
        await top_digests.arm(tx, person_ids, now + pace.interval)

    async def arm_now(self, tx: Tx, person_ids: Sequence[int], now: datetime) -> None:
        """A case already at the top missed another deadline: it goes into these people's
        next digest, at once if the pace allows."""
        await top_digests.arm(tx, person_ids, now)

    async def fire(self, tx: Tx, timer: DigestTimer, now: datetime) -> bool:
        """Send the person's digest if it is time and something waits on them; otherwise
        set when to look again. True when a digest was queued."""
        person = await people.person(tx, timer.person_id)
        waiting = (await cases.waiting_on(tx, timer.person_id, self.top(person), now)
                   if person is not None else [])
        if person is None or not waiting:
            await top_digests.hold(tx, timer.person_id, None)
            return False
        emergency = any(w.case.urgency == Urgency.EMERGENCY for w in waiting)
        pace = self.pace(person)
        held = pace.held_until(now, timer.last_sent_at, emergency)
        if held is not None:
            await top_digests.hold(tx, timer.person_id, held)
            return False
        reply = alerts.top_digest(
            [(w, self._village(w.case.commune_id, w.case.village_id)) for w in waiting], now)
        await self.outbox.send(tx, person, reply, now, kind=Kind.DIGEST,
                               dedupe_key=f"digest:p{person.id}:{timer.seq + 1}")
        await top_digests.sent(tx, person.id, now, now + pace.interval)
        for w in waiting:
            await cases.audit(tx, w.case.id, None, "digest_sent", now, step=w.step,
                              recipient=person.id)
        log.info("top digest person=%s cases=%s", person.id, len(waiting))
        return True
