"""The simulator's page and API: demo phones in a browser, talking to the real bot.

POST /api/phones/{key}/send turns a tap or a typed line into an InboundEvent; the phone
reads its chat log back. No login: whoever reaches it can act as any configured person, so
it is only served for training, on a private address (SAFECHILD_SIMULATOR).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from bot import i18n
from bot.clock import FakeClock
from bot.domain.messages import Input, Text, storable, storable_input
from bot.domain.roles import Role
from bot.handlers.plugin import Core
from bot.handlers.typed import typed_input
from bot.services.conversation import InboundEvent
from bot.services.simulator_log import CHANNEL, Phone, SimulatorLog

STATIC = Path(__file__).parent / "static"
DEMO_PHONES = ("citizen", "collaborator", "officer", "police", "leader")
MAX_INPUT = 50_000
# Longer ids could not be part of an inbound key (128 characters).
MAX_MESSAGE_ID = 100
# A year at a time is far more than a trainer needs, and keeps datetimes in range.
MAX_CLOCK_MINUTES = 366 * 24 * 60
# The clock's buttons: a deadline's first step, an hour, half a day.
CLOCK_STEPS = (15, 60, 720)
# Under each phone's name, in the person's language (the commune file's role is an English key).
ROLE_LABELS: dict[str, Text] = {
    Role.CITIZEN: Text("simulator.role.citizen"),
    Role.COLLABORATOR: Text("simulator.role.collaborator"),
    Role.OFFICER: Text("simulator.role.officer"),
    Role.POLICE: Text("simulator.role.police"),
    Role.LEADER: Text("simulator.role.leader"),
    Role.ADMIN: Text("simulator.role.admin"),
}


def phone_texts(language: str) -> dict[str, str]:
    """The phone's own words (its buttons, its empty screen), in its person's language."""
    t = i18n.t
    return {"empty": t("simulator.empty", language), "type": t("simulator.type", language),
            "send": t("simulator.send", language),
            "location": t("simulator.tool.location", language),
            "contact": t("simulator.tool.contact", language),
            "photo": t("simulator.tool.photo", language),
            "voice": t("simulator.tool.voice", language),
            # A file the bot shows without a name of its own (a reporter's photo, voice note).
            "media.photo": t("simulator.media.photo", language),
            "media.voice": t("simulator.media.voice", language),
            "media.document": t("simulator.media.document", language)}


def clock_label(minutes: int, language: str) -> str:
    if minutes % 60:
        return i18n.t("simulator.clock.minutes", language, minutes=minutes)
    return i18n.t("simulator.clock.hours", language, hours=minutes // 60)


def shown_phone(phone: Phone) -> dict[str, Any]:
    language = phone.language if phone.language in i18n.available_locales() \
        else i18n.DEFAULT_LOCALE
    role = ROLE_LABELS.get(phone.role)
    return {"key": phone.key, "name": phone.name, "role": phone.role, "phone": phone.phone,
            "language": language, "role_label": i18n.render(role, language) if role else "",
            "texts": phone_texts(language),
            # Where the phone's location tool is (its person's village), null: anywhere.
            "where": list(phone.where) if phone.where else None}


class BadRequest(ValueError):
    """What was wrong with a request, in one line for the 400's body."""


def parse_input(body: Any) -> Input:
    """A phone's message from its JSON body; BadRequest says what is wrong with it."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    kind = body.get("kind", "text")
    if kind == "text":
        return typed_input(str(body.get("text", ""))[:MAX_INPUT])
    if kind == "choice":
        return Input("choice", choice=str(body.get("choice", ""))[:128])
    if kind == "location":
        try:
            latitude, longitude = float(body["latitude"]), float(body["longitude"])
        except (KeyError, TypeError, ValueError):
            raise BadRequest("a location needs numbers 'latitude' and 'longitude'") from None
        return Input("location", latitude=latitude, longitude=longitude)
    if kind == "contact":
        return Input("contact", phone=str(body.get("phone", ""))[:32])
    if kind in ("photo", "voice"):
        return Input(kind, file_ref=str(body.get("file_ref", ""))[:200])
    return Input("other")


async def json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except (ValueError, RecursionError):
        raise BadRequest("the body is not JSON (or nested too deep)") from None


def bad(reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=400)


class SimulatorRoutes:
    def __init__(self, core: Core, log: SimulatorLog) -> None:
        self.core = core
        self.log = log

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/", self.index), web.get("/api/phones", self.phones),
                web.post("/api/phones/{key}/send", self.send),
                web.get("/api/phones/{key}/messages", self.messages),
                web.post("/api/clock", self.clock)]

    async def index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "simulator.html")

    async def phones(self, request: web.Request) -> web.Response:
        """The phones with their own words in their people's languages; the page's words
        (title, switcher, clock) in `?lang=` (the trainer's), Vietnamese by default."""
        listed = [shown_phone(p) for p in await self.log.phones()]
        listed.sort(key=lambda p: DEMO_PHONES.index(p["key"]) if p["key"] in DEMO_PHONES
                    else 99)
        lang = request.query.get("lang", "")
        page = lang if lang in i18n.available_locales() else i18n.DEFAULT_LOCALE
        clock = self.core.clock
        return web.json_response({
            "phones": listed, "demo": list(DEMO_PHONES),
            "fake_clock": isinstance(clock, FakeClock), "now": clock.now().isoformat(),
            "page": {"language": page, "title": i18n.t("simulator.title", page),
                     "people": i18n.t("simulator.people", page),
                     "clock": [{"minutes": m, "label": clock_label(m, page)}
                               for m in CLOCK_STEPS]}})

    async def send(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        try:
            body = await json_body(request)
            inp = storable_input(parse_input(body))
            msg_id = body.get("id")
            if msg_id is not None and (not isinstance(msg_id, str | int)
                                       or len(str(msg_id)) > MAX_MESSAGE_ID):
                raise BadRequest(f"'id' must be a text of at most {MAX_MESSAGE_ID} characters")
        except BadRequest as exc:
            return bad(str(exc))
        known = await self.log.record_sent(key, {
            "kind": inp.kind, "text": inp.text or (f"/{inp.command}" if inp.command else ""),
            # The tapped button's label, for the phone's own bubble (display only).
            "choice": inp.choice, "label": storable(str(body.get("label", ""))[:100]),
            "latitude": inp.latitude, "longitude": inp.longitude,
            "phone": inp.phone, "file_ref": inp.file_ref})
        if not known:
            return web.json_response({"error": "unknown phone"}, status=404)
        event = InboundEvent(CHANNEL, key, inp, key=f"web:{key}:{msg_id}" if msg_id else None)
        handled = await self.core.conversations.handle(event)
        # Deliver at once so the phone (and a test) sees the answer without waiting.
        await self.core.settle(("delivery",))
        return web.json_response({"ok": True, "duplicate": not handled})

    async def messages(self, request: web.Request) -> web.Response:
        raw = request.query.get("after", "0")
        if not raw.isdigit() or len(raw) > 18:
            return bad("'after' must be a message id (a whole number)")
        after = int(raw)
        rows = await self.log.messages(request.match_info["key"], after)
        return web.json_response({"messages": [
            {"id": m.id, "direction": m.direction, **m.payload} for m in rows]})

    async def clock(self, request: web.Request) -> web.Response:
        """Move the demo clock (only when the process runs on a fake clock): trainers show
        escalation without waiting, tests move time instead of sleeping."""
        clock = self.core.clock
        if not isinstance(clock, FakeClock):
            return web.json_response({"error": "clock is real"}, status=409)
        try:
            body = await json_body(request)
            minutes = body.get("minutes", 0) if isinstance(body, dict) else None
            if isinstance(minutes, bool) or not isinstance(minutes, int | float) \
                    or not 0 <= minutes <= MAX_CLOCK_MINUTES:
                raise BadRequest(f"'minutes' must be a number from 0 to {MAX_CLOCK_MINUTES}")
        except BadRequest as exc:
            return bad(str(exc))
        clock.advance(timedelta(minutes=minutes))
        # Timers, calendar reminders, deliveries and broadcast progress, until all is done.
        await self.core.settle(())
        return web.json_response({"now": clock.now().isoformat()})
