"""The simulator's outbound side: a message shown on a phone is a row of its chat log,
written once per outbox message (a resend after a crash writes nothing new)."""

from __future__ import annotations

from typing import Any

from bot import i18n
from bot.domain.delivery import Delivery, file_url
from bot.domain.message_kinds import Kind
from bot.services.simulator_log import CHANNEL, SimulatorLog


def rendered(delivery: Delivery) -> dict[str, Any]:
    """The message as a phone shows it, in the recipient's language."""
    lang = delivery.language
    reply = delivery.reply
    return {
        "text": "\n\n".join(i18n.render(t, lang) for t in reply.texts),
        # Catalog ids let tests (and trainers) see which message this is, in any language.
        "ids": [t.id for t in reply.texts],
        "choices": [{"id": c.id, "label": i18n.render(c.label, lang)} for c in reply.choices],
        "request": reply.request,
        "phones": list(reply.phones),
        "kind": delivery.kind,
        "media": shown_media(delivery),
    }


def shown_media(delivery: Delivery) -> dict[str, str] | None:
    media = delivery.reply.media
    if media is None:
        return None
    shown = media.to_json()
    if delivery.file is not None and delivery.file.token:
        shown["url"] = file_url(delivery.file)
    return shown


class SimulatorSender:
    name = CHANNEL

    def __init__(self, log: SimulatorLog) -> None:
        self.log = log

    async def deliver(self, delivery: Delivery) -> str | None:
        if delivery.kind == Kind.EDIT:
            ref = str(delivery.meta["message_ref"])
            await self.log.edited(ref, {**rendered(delivery), "edited": True})
            return ref
        return await self.log.delivered(delivery.outbox_id, delivery.address,
                                        rendered(delivery))
