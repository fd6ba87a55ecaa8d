"""The web server every process runs (handlers layer): health, the files the bot made, and
the HTTP routes the channels bring (webhooks, the simulator)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import quote

from aiohttp import web

from bot.domain.delivery import FileToSend

FileLookup = Callable[[int], Awaitable[FileToSend | None]]
# Told of each download before the file goes out (the audit trail records it).
DownloadAudit = Callable[[int], Awaitable[None]]


def make_server(stored_file: FileLookup, routes: Sequence[web.RouteDef] = (), *,
                downloaded: DownloadAudit | None = None) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app.add_routes(list(routes))

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def download(request: web.Request) -> web.Response:
        """GET /api/files/{id}/{token}: a file the bot made, for whoever holds its link."""
        raw_id, token = request.match_info["id"], request.match_info["token"]
        file = await stored_file(int(raw_id)) if raw_id.isdigit() and len(raw_id) < 19 \
            else None
        if file is None or not file.token or not hmac.compare_digest(file.token.encode(),
                                                                     token.encode()):
            return web.json_response({"error": "not found"}, status=404)
        if downloaded is not None:
            await downloaded(file.id)
        disposition = "inline" if file.mime.startswith("image/") else "attachment"
        return web.Response(body=file.content, content_type=file.mime, headers={
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(file.name)}",
            "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"})

    app.router.add_get("/healthz", health)
    app.router.add_get("/api/files/{id}/{token}", download)
    return app
