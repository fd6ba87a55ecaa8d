"""The web simulator: demo phones in a browser, talking to the real engine (channel adapter).

Inbound: POST /api/phones/{key}/send turns a tap or a typed line into an InboundEvent.
Outbound: the `web` channel renders outbox rows into the simulator's chat log.
"""

from __future__ import annotations

import hmac
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot import i18n
from bot.app import Engine
from bot.clock import FakeClock
from bot.domain.messages import Input
from bot.handlers.typed import typed_input
from bot.services.conversation import InboundEvent
from bot.services.outbox import Delivery, FileToSend
from storage import files_repo, repo
from storage.models import SimMessage

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
DEMO_PHONES = ("citizen", "collaborator", "officer", "police", "leader")
MAX_INPUT = 50_000
ENGINE_KEY = web.AppKey("engine", Engine)


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


def file_url(file: FileToSend) -> str:
    """A stored file's download link: unguessable, since the token is random per file."""
    return f"/api/files/{file.id}/{file.token}"


def shown_media(delivery: Delivery) -> dict[str, str] | None:
    media = delivery.reply.media
    if media is None:
        return None
    shown = media.to_json()
    if delivery.file is not None and delivery.file.token:
        shown["url"] = file_url(delivery.file)
    return shown


class WebChannel:
    """Delivery to a simulator phone is a row in its chat log, written in the same
    transaction that marks the outbox row sent, so it happens exactly once."""

    name = "web"
    transactional = True

    def __init__(self, clock: Any) -> None:
        self.clock = clock

    async def deliver(self, session: AsyncSession | None, delivery: Delivery) -> str | None:
        assert session is not None, "the simulator writes in the delivery's transaction"
        if delivery.kind == "edit":
            ref = str(delivery.meta["message_ref"])
            original = await session.get(SimMessage, int(ref))
            if original is not None:
                original.payload = {**rendered(delivery), "edited": True}
            return ref
        msg = SimMessage(address=delivery.address, direction="out", payload=rendered(delivery),
                         created_at=self.clock.now())
        session.add(msg)
        await session.flush()
        return str(msg.id)


def parse_input(body: dict[str, Any]) -> Input:
    kind = body.get("kind", "text")
    if kind == "text":
        return typed_input(str(body.get("text", ""))[:MAX_INPUT])
    if kind == "choice":
        return Input("choice", choice=str(body.get("choice", ""))[:128])
    if kind == "location":
        return Input("location", latitude=float(body["latitude"]),
                     longitude=float(body["longitude"]))
    if kind == "contact":
        return Input("contact", phone=str(body.get("phone", ""))[:32])
    if kind in ("photo", "voice"):
        return Input(kind, file_ref=str(body.get("file_ref", ""))[:200])
    return Input("other")


async def index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "simulator.html")


async def phones(request: web.Request) -> web.Response:
    engine = request.app[ENGINE_KEY]
    async with engine.sessions() as s:
        people = await repo.people_of(s, engine.directory.commune_id)
    listed = [{"key": p.key, "name": p.name, "role": p.role, "phone": p.phone or ""}
              for p in people]
    listed.sort(key=lambda p: DEMO_PHONES.index(p["key"]) if p["key"] in DEMO_PHONES else 99)
    return web.json_response({"phones": listed, "demo": list(DEMO_PHONES),
                              "fake_clock": isinstance(engine.clock, FakeClock),
                              "now": engine.clock.now().isoformat()})


async def send(request: web.Request) -> web.Response:
    engine = request.app[ENGINE_KEY]
    key = request.match_info["key"]
    try:
        body = await request.json()
        inp = parse_input(body)
    except (ValueError, KeyError, TypeError):
        return web.json_response({"error": "bad request"}, status=400)
    async with engine.sessions.begin() as s:
        if await repo.identity(s, "web", key) is None:
            return web.json_response({"error": "unknown phone"}, status=404)
        s.add(SimMessage(address=key, direction="in", payload={
            "kind": inp.kind, "text": inp.text or (f"/{inp.command}" if inp.command else ""),
            # The tapped button's label, for the phone's own bubble (display only).
            "choice": inp.choice, "label": str(body.get("label", ""))[:100],
            "latitude": inp.latitude, "longitude": inp.longitude,
            "phone": inp.phone, "file_ref": inp.file_ref}, created_at=engine.clock.now()))
    msg_id = body.get("id")
    event = InboundEvent("web", key, inp, key=f"web:{key}:{msg_id}" if msg_id else None)
    handled = await engine.conversations.handle(event)
    # Deliver at once so the phone (and a test) sees the answer without waiting for a sweep.
    while await engine.outbox.deliver_due():
        pass
    return web.json_response({"ok": True, "duplicate": not handled})


async def messages(request: web.Request) -> web.Response:
    engine = request.app[ENGINE_KEY]
    after = int(request.query.get("after", "0"))
    async with engine.sessions() as s:
        rows = await repo.sim_messages(s, request.match_info["key"], after)
    return web.json_response({"messages": [
        {"id": m.id, "direction": m.direction, **m.payload} for m in rows]})


async def clock(request: web.Request) -> web.Response:
    """Move the demo clock (only when the process runs on a fake clock): trainers show
    escalation without waiting, tests move time instead of sleeping."""
    engine = request.app[ENGINE_KEY]
    if not isinstance(engine.clock, FakeClock):
        return web.json_response({"error": "clock is real"}, status=409)
    body = await request.json()
    engine.clock.advance(timedelta(minutes=float(body.get("minutes", 0))))
    while await engine.sweeper.fire_due():
        pass
    if engine.reminders is not None:
        await engine.reminders.send_due(engine.clock.now())
    while await engine.outbox.deliver_due():
        pass
    # Broadcasts under way: their senders see the progress and, once done, the summary.
    while engine.broadcasts is not None and await engine.broadcasts.track_due():
        while await engine.outbox.deliver_due():
            pass
    return web.json_response({"now": engine.clock.now().isoformat()})


async def stored_file(request: web.Request) -> web.Response:
    """GET /api/files/{id}/{token}: a file the bot made, for whoever holds its link."""
    engine = request.app[ENGINE_KEY]
    raw_id, token = request.match_info["id"], request.match_info["token"]
    row = None
    if raw_id.isdigit() and len(raw_id) < 19:
        async with engine.sessions() as s:
            row = await files_repo.stored_file(s, int(raw_id))
    if row is None or not row.token or not hmac.compare_digest(row.token.encode(),
                                                               token.encode()):
        return web.json_response({"error": "not found"}, status=404)
    disposition = "inline" if row.mime.startswith("image/") else "attachment"
    return web.Response(body=row.content, content_type=row.mime, headers={
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(row.name)}",
        "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def make_app(engine: Engine, extra_routes: list[web.RouteDef] | None = None, *,
             simulator: bool = True) -> web.Application:
    """The web server: health, the bot's files, the channels' webhooks (`extra_routes`)
    and, with `simulator`, the simulator's page and API (no login: demo use only)."""
    app = web.Application(client_max_size=1024 * 1024)
    app.add_routes(extra_routes or [])
    app[ENGINE_KEY] = engine
    app.router.add_get("/healthz", health)
    app.router.add_get("/api/files/{id}/{token}", stored_file)
    if simulator:
        app.router.add_get("/", index)
        app.router.add_get("/api/phones", phones)
        app.router.add_post("/api/phones/{key}/send", send)
        app.router.add_get("/api/phones/{key}/messages", messages)
        app.router.add_post("/api/clock", clock)
    return app
