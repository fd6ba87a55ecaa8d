"""The conversation service: one inbound event in, one transaction, replies in the outbox.

Every channel adapter normalises what arrives into an InboundEvent and calls `handle`. The
service deduplicates, finds the person, steps the flow, carries out the flow's effects and
saves the new state, all in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import i18n
from bot.clock import Clock
from bot.domain.messages import Input, Reply, Text, say
from bot.domain.permissions import is_reporter, may_take_from_group, works_cases
from bot.domain.roles import Role
from bot.flows import engine
from bot.flows.book import FLOWS
from bot.flows.effects import Effect, SetLanguage, Submit
from bot.services.cases import CaseService
from bot.services.directory import Directory
from bot.services.invites import Invites
from bot.services.outbox import enqueue
from storage import repo
from storage.models import Case, CaseRecipient, Conversation, Person

log = logging.getLogger(__name__)
DRAFT_TTL = timedelta(hours=24)
SEEN_REFRESH = timedelta(minutes=10)
CASE_FLOWS = {"ask": "ask", "handover": "handover", "assess": "assess", "progress": "progress",
              "close": "close"}


@dataclass(frozen=True)
class InboundEvent:
    """Anything a person sent, on any channel, in one shape."""

    channel: str
    sender: str
    input: Input
    key: str | None = None
    # The group chat a button was pressed in, when not a private chat.
    group: str | None = None


@dataclass(frozen=True)
class Handled:
    """What became of an event; truthy when it was processed (not a redelivery)."""

    processed: bool
    # A short answer shown on the pressed button itself (where the channel has one).
    notice: str | None = None

    def __bool__(self) -> bool:
        return self.processed


CommandResult = tuple[engine.State, list[Effect]]


class CommandHandler(Protocol):
    """A command a domain service answers (/report 2026-Q2, /calendar, /broadcast). It
    decides who may use it; None hands the command back to the flows."""

    async def __call__(self, s: AsyncSession, person: Person, state: engine.State,
                       ctx: engine.Context, inp: Input, now: datetime
                       ) -> CommandResult | None: ...


class ActionHandler(Protocol):
    """Carries out a flow's Submit(action, data) for a domain service; returns the replies
    for the person who submitted it. It checks, again, that the person may do this."""

    async def __call__(self, s: AsyncSession, person: Person, channel: str,
                       data: dict[str, Any], now: datetime) -> list[Reply]: ...


class _LostRace(Exception):
    """Another worker changed this conversation first; the event is handled again."""


class _Duplicate(Exception):
    """The event's key was processed before: a channel's redelivery."""


class ConversationService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock,
                 directory: Directory, cases: CaseService,
                 on_queued: Callable[[], None] | None = None) -> None:
        self.sessions = sessions
        self.clock = clock
        self.directory = directory
        self.cases = cases
        self.on_queued = on_queued
        self.invites = Invites(directory)
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        # Filled in by the services at wiring time (bot/app.py).
        self.commands: dict[str, CommandHandler] = {}
        self.actions: dict[str, ActionHandler] = {}

    async def handle(self, event: InboundEvent) -> Handled:
        """Process one event; falsy if it was a redelivery and changed nothing."""
        lock_key = (event.channel, event.sender)
        lock = self._locks.setdefault(lock_key, asyncio.Lock())
        try:
            async with lock:
                for _attempt in range(5):
                    try:
                        async with self.sessions.begin() as s:
                            handled = await self._handle(s, event)
                        break
                    except _LostRace:
                        continue
                    except _Duplicate:
                        log.info("duplicate inbound %s ignored", event.key)
                        handled = Handled(False)
                        break
                else:
                    raise RuntimeError("conversation kept changing under us")
        finally:
            if not lock.locked():
                self._locks.pop(lock_key, None)
        if handled and self.on_queued:
            self.on_queued()
        return handled

    async def _handle(self, s: AsyncSession, event: InboundEvent) -> Handled:
        now = self.clock.now()
        if event.key:
            try:
                await repo.remember_inbound(s, event.key, now)
            except IntegrityError as exc:
                raise _Duplicate from exc
        person, conv = await self._person(s, event, now)
        state = engine.State.from_json(conv.state if conv else None)
        if conv is not None and now - conv.updated_at > DRAFT_TTL:
            state = engine.State()
        inp = event.input
        lead: list[Effect] = []
        if inp.kind == "command" and inp.command == "start" and inp.args.strip():
            # A deep link: /start <invite code>.
            lead.append(await self.invites.redeem(s, person, inp.args, now))
        ctx = await self._context(s, person)
        effects: list[Effect]
        notice: Text | None = None
        if event.group is not None:
            # Only an alert's button can be pressed in a group; nothing else happens there.
            new_state = state
            effects, notice = await self._group_button(s, person, event.group, inp, now)
        elif inp.kind == "command" and inp.command == "invite":
            new_state, effects = state, [await self.invites.create(s, person, inp.args,
                                                                  event.channel, now)]
        elif inp.kind == "choice" and inp.choice.startswith("case:"):
            new_state, effects = await self._case_button(s, person, state, ctx, inp, now)
        else:
            answered = None
            if inp.kind == "command" and inp.command in self.commands:
                answered = await self.commands[inp.command](s, person, state, ctx, inp, now)
            new_state, effects = answered or engine.step(FLOWS, state, inp, ctx)
        effects = [*lead, *effects]
        await self._apply(s, person, event.channel, event.sender, effects, now)
        if new_state != state or conv is None:
            saved = await repo.save_conversation(s, person.id, new_state.to_json(),
                                                 conv.version if conv else None, now)
            if not saved:
                raise _LostRace
        log.info("inbound channel=%s person=%s kind=%s flow=%s step=%s", event.channel,
                 person.id, inp.kind, new_state.flow, new_state.step)
        return Handled(True, i18n.render(notice, person.language) if notice else None)

    async def _person(self, s: AsyncSession, event: InboundEvent,
                      now: datetime) -> tuple[Person, Conversation | None]:
        found = await repo.sender(s, event.channel, event.sender)
        if found is None:
            person = await repo.add_person(s, commune_id=self.directory.commune_id, key=None,
                                           role="citizen", name="", language="vi",
                                           created_at=now)
            await repo.bind_identity(s, person.id, event.channel, event.sender)
            found = await repo.sender(s, event.channel, event.sender)
            assert found is not None
        ident, person, conv = found
        # Writing to someone makes that channel theirs again; refreshed coarsely so a chat
        # does not rewrite the identity row on every message.
        if ident.last_seen_at is None or now - ident.last_seen_at > SEEN_REFRESH:
            ident.last_seen_at = now
        if ident.unreachable_at is not None:
            ident.unreachable_at = None
        return person, conv

    async def _context(self, s: AsyncSession, person: Person) -> engine.Context:
        cfg = self.directory.config
        team: tuple[tuple[str, str], ...] = ()
        if works_cases(person):
            people = await repo.people_of(s, self.directory.commune_id)
            team = tuple((str(p.id), p.name) for p in people
                         if p.role in (Role.OFFICER, Role.POLICE) and p.id != person.id)
        language = person.language

        def translate(text: Text) -> str:
            return i18n.render(text, language)

        return engine.Context(
            role=person.role, language=language, villages=cfg.villages,
            own_village=self.directory.village_key(person.village_id), team=team,
            officer_phone=cfg.officer_phone, trusted_addresses=cfg.trusted_addresses,
            commune_name=cfg.name, translate=translate,
        )

    async def _case_button(self, s: AsyncSession, person: Person, state: engine.State,
                           ctx: engine.Context, inp: Input, now: datetime
                           ) -> tuple[engine.State, list[Effect]]:
        """An alert's button: decide from the database, never from the button, who may act."""
        _, action, raw_id = [*inp.choice.split(":"), "", ""][:3]
        case = await repo.case_by_id(s, int(raw_id)) if raw_id.isdigit() else None
        if case is None or case.commune_id != self.directory.commune_id:
            return state, [say("error.stale_button")]
        if action == "reply":
            if not is_reporter(person, case):
                return state, [say("case.not_allowed")]
            return engine.start(FLOWS, "answer", ctx, {"case_id": case.id, "code": case.code},
                                current=state)
        if not await self.cases.team_member(s, case, person):
            await repo.audit(s, case.id, person.id, "refused", now, button=action[:16])
            return state, [say("case.not_allowed")]
        await repo.audit(s, case.id, person.id, "viewed", now, button=action[:16])
        if action == "ack":
            return state, list(await self.cases.acknowledge(s, case, person, now))
        if action in CASE_FLOWS:
            if case.status == "closed":
                return state, [say("case.already_closed", code=case.code)]
            return engine.start(FLOWS, CASE_FLOWS[action], ctx,
                                {"case_id": case.id, "code": case.code}, current=state)
        return state, [say("error.stale_button")]

    async def _group_button(self, s: AsyncSession, person: Person, group: str, inp: Input,
                            now: datetime) -> tuple[list[Effect], Text]:
        """A press in the alert group: only officers and police known to us may take a
        case there; everyone else gets a polite word on the button and nothing changes."""
        _, action, raw_id = [*inp.choice.split(":"), "", ""][:3]
        case = await repo.case_by_id(s, int(raw_id)) if raw_id.isdigit() else None
        if (group != self.directory.config.telegram_alert_group or action != "ack"
                or case is None or case.commune_id != self.directory.commune_id):
            return [], Text("error.stale_button")
        if not may_take_from_group(person):
            await repo.audit(s, case.id, person.id, "refused", now, button="group-ack")
            return [], Text("group.not_allowed")
        if await repo.recipient(s, case.id, person.id) is None:
            # Taking a case from the group puts the officer on its team.
            s.add(CaseRecipient(case_id=case.id, person_id=person.id,
                                level=case.escalation_level, access="team", alerted_at=now))
            await s.flush()
        await repo.audit(s, case.id, person.id, "viewed", now, button="group-ack")
        effects: list[Effect] = list(await self.cases.acknowledge(s, case, person, now))
        fresh = await repo.case_by_id(s, case.id)
        taken = fresh is not None and fresh.assignee_id == person.id
        return effects, Text("group.you_took" if taken else "group.already_taken",
                             {"code": case.code})

    async def _apply(self, s: AsyncSession, person: Person, channel: str, sender: str,
                     effects: list[Effect], now: datetime) -> None:
        for effect in effects:
            if isinstance(effect, SetLanguage):
                if effect.language in i18n.available_locales():
                    person.language = effect.language
                continue
            replies = [effect] if isinstance(effect, Reply) else await self._submit(
                s, person, channel, effect, now)
            for reply in replies:
                await enqueue(s, person, reply, now, to=(channel, sender))

    async def _submit(self, s: AsyncSession, person: Person, channel: str, effect: Submit,
                      now: datetime) -> list[Reply]:
        data: dict[str, Any] = dict(effect.data)
        if effect.action == "report":
            opened = await self.cases.open_case(s, person, channel, data, now)
            return [self.cases.confirmation(opened)]
        if effect.action == "status":
            return await self.cases.status(s, data["code"], person, now)
        if effect.action in self.actions:
            return await self.actions[effect.action](s, person, channel, data, now)
        case = await repo.case_by_id(s, int(data.get("case_id", 0)))
        if case is None:
            return [say("error.stale_button")]
        if effect.action == "answer":
            if not is_reporter(person, case):
                return [say("case.not_allowed")]
            return await self.cases.reporter_answer(s, case, person, data["answer"], now)
        if not await self.cases.team_member(s, case, person):
            return [say("case.not_allowed")]
        return await self._team_action(s, case, person, effect.action, data, now)

    async def _team_action(self, s: AsyncSession, case: Case, person: Person, action: str,
                           data: dict[str, Any], now: datetime) -> list[Reply]:
        if case.status == "closed":
            return [say("case.already_closed", code=case.code)]
        if action == "ask":
            return await self.cases.ask_reporter(s, case, person, data["question"], now)
        if action == "handover":
            return await self.cases.hand_over(s, case, person, int(data["value"]), now)
        if action == "assess":
            return await self.cases.assess(s, case, person, data, now)
        if action == "progress":
            return await self.cases.progress(s, case, person, data["value"], now)
        if action == "close":
            return await self.cases.close(s, case, person, data["value"], now)
        return [say("error.stale_button")]
