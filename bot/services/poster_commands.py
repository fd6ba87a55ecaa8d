"""/poster: a commune's printable QR poster for its admins (service layer). The poster's
link is the bot's own deep link with the commune's code (`t.me/<bot>?start=c-<code>`), so
a villager who scans it is of that commune at once."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime

from bot.domain.commune_links import start_payload
from bot.domain.messages import Media, Reply, Text, say
from bot.domain.people import Person
from bot.domain.permissions import may_invite
from bot.services.directory import Communes, code_of
from bot.services.period_reports import PNG_MIME
from storage import files
from storage.db import Tx


class PosterCommands:
    def __init__(self, communes: Communes, links: Mapping[str, str]) -> None:
        self.communes = communes
        # Per channel, what a start payload is appended to (Telegram: t.me/<bot>?start=).
        self.links = dict(links)

    async def command(self, tx: Tx, person: Person, args: str, now: datetime) -> list[Reply]:
        """`/poster` for a commune's admin (their commune); `/poster <commune>` for the
        province's admins."""
        if not may_invite(person.role):
            return [say("poster.not_allowed")]
        commune = self.communes.get(person.commune_id)
        if commune is None:
            commune, _ = self.communes.named(args)
            if commune is None:
                return [say("poster.usage_province")]
        base = self.links.get("telegram")
        if base is None:  # no bot a phone could open: nothing to print yet
            return [say("poster.no_link")]
        link = base + start_payload(code_of(commune.config))
        # Imported here: Pillow, segno and matplotlib's fonts cost a process some 30 MB that
        # only an admin's poster needs.
        from bot.services.posters import poster
        drawn = await asyncio.to_thread(poster, link, commune.config.name, person.language)
        stored = await files.add_file(tx, f"poster-{commune.config.key}.png", PNG_MIME,
                                      drawn.png, now)
        return [Reply((Text("poster.ready", {"commune": commune.config.name, "link": link}),),
                      media=Media("document", "stored", str(stored.id), stored.name))]
