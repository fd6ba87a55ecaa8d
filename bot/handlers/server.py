"""The web server every process runs (handlers layer): health, readiness and metrics, the
files the bot made, and the HTTP routes the channels bring (webhooks, the simulator).

/healthz: the process answers. /readyz: 200 when the database answers, every worker looks
in time and no message has waited too long; 503 naming the failing checks otherwise.
/metrics: Prometheus's text format, behind `Authorization: Bearer <token>` when a token is
set (SAFECHILD_METRICS_TOKEN)."""

from __future__ import annotations

import contextlib
import hmac
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from bot.domain.delivery import FileToSend
from bot.metrics import CONTENT_TYPE, Metrics
from bot.workers.readiness import Verdict

FileLookup = Callable[[int], Awaitable[FileToSend | None]]
# Told of each download before the file goes out (the audit trail records it).
DownloadAudit = Callable[[int], Awaitable[None]]


@dataclass(frozen=True)
class Watch:
    """What /readyz and /metrics answer from."""

    ready: Callable[[], Awaitable[Verdict]]
    metrics: Metrics
    # Called before each scrape: the gauges read from the database.
    before_scrape: Callable[[], Awaitable[None]]
    # None: /metrics is open to whoever reaches the port.
    token: str | None = None


def timed(channel: str, routes: Sequence[web.RouteDef], metrics: Metrics
          ) -> list[web.RouteDef]:
    """A channel's POST routes (its webhooks; the simulator's sends), their answer times
    counted by channel."""
    histogram = metrics.webhook_seconds.labels(channel)

    def wrap(handler: Any) -> Any:
        async def answer(request: web.Request) -> web.StreamResponse:
            start = time.perf_counter()
            try:
                response: web.StreamResponse = await handler(request)
                return response
            finally:
                histogram.observe(time.perf_counter() - start)
        return answer

    return [web.RouteDef(r.method, r.path, wrap(r.handler), r.kwargs) if r.method == "POST"
            else r for r in routes]


def make_server(stored_file: FileLookup, routes: Sequence[web.RouteDef] = (),
                watch: Watch | None = None, *,
                downloaded: DownloadAudit | None = None) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app.add_routes(list(routes))

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def ready(request: web.Request) -> web.Response:
        assert watch is not None
        verdict = await watch.ready()
        return web.json_response(verdict.to_json(), status=200 if verdict.ready else 503,
                                 headers={"Cache-Control": "no-store"})

    async def metrics(request: web.Request) -> web.Response:
        assert watch is not None
        if watch.token is not None:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {watch.token}".encode()):
                return web.json_response({"error": "unauthorized"}, status=401,
                                         headers={"WWW-Authenticate": "Bearer"})
        # The database gone: the counters still go out (readiness says what is wrong).
        with contextlib.suppress(Exception):
            await watch.before_scrape()
        return web.Response(body=watch.metrics.render(),
                            headers={"Content-Type": CONTENT_TYPE,
                                     "Cache-Control": "no-store"})

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
    if watch is not None:
        app.router.add_get("/readyz", ready)
        app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/files/{id}/{token}", download)
    return app
