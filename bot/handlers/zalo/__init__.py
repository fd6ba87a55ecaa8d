"""The Zalo Official Account channel: the signed webhook (stored, then handled by the
inbound worker), the OA API client with its token store and refresher, rendering and the
sender (the package's modules: webhook, inbound, api, tokens, render, sender)."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from bot.handlers.labels import match_label
from bot.handlers.plugin import Base, Core, Inbound, Outbound
from bot.handlers.zalo.api import ZaloApi, ZaloSettings
from bot.handlers.zalo.inbound import ZaloInbound
from bot.handlers.zalo.sender import ZaloSender
from bot.handlers.zalo.webhook import CHANNEL, WEBHOOK_PATH, WebhookSettings, ZaloWebhook


class ZaloPlugin:
    """`public_url`: the web server's public address, which files the bot made are linked
    from. The OA's tokens are kept in the database (`base.token_rows`)."""

    name = CHANNEL

    def __init__(self, settings: ZaloSettings, webhook: WebhookSettings, *,
                 public_url: str = "", http: aiohttp.ClientSession | None = None) -> None:
        self.settings = settings
        self.webhook = webhook
        self.public_url = public_url
        self.http = http
        self.api: ZaloApi | None = None

    async def open(self, base: Base) -> Outbound:
        rows = base.token_rows(self.settings.oa_id)

        async def alert_admins(row_id: int, code: int) -> int:
            return await base.alert_admins(CHANNEL, row_id, code)

        api = ZaloApi(self.settings, rows, base.clock, http=self.http,
                      alert_admins=alert_admins, owner=base.identity.owner("zalo-tokens"))
        self.api = api
        # Seeds or recovers the OA's tokens (the client keeps them in the database).
        await api.start()
        return Outbound(sender=ZaloSender(api, self.public_url), labels=match_label,
                        workers=[api.tokens])

    async def attach(self, core: Core) -> Inbound:
        assert self.api is not None, "open() first"
        inbound = ZaloInbound(core.conversations, core.unreachable, core.heard)
        hook = ZaloWebhook(self.webhook, core.store_events, core.clock,
                           on_stored=lambda: core.wake("inbound"))
        return Inbound(stored_events=inbound.on_event,
                       routes=[web.post(WEBHOOK_PATH, hook.handle)],
                       announce=f"zalo webhook on POST {WEBHOOK_PATH}")

    async def close(self) -> None:
        if self.api is not None:
            await self.api.close()
