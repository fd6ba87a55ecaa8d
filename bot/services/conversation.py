"""The conversation service: one inbound event in, one transaction, replies in the outbox.

Every channel turns what arrives into an InboundEvent and calls `handle`. In one
transaction the service drops a redelivery, finds the person, steps the flow (the flow
engine routes the input: bot/flows/routes.py), carries out the flow's effects in one `match`
and saves the new state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import assert_never

from bot import i18n
from bot.clock import Clock
from bot.domain import alerts
from bot.domain.commune import SenderLimits
from bot.domain.commune_search import CommuneIndex, find, nearest
from bot.domain.messages import Choice, Input, Reply, Text, say, storable, storable_input
from bot.domain.people import Person
from bot.domain.permissions import (
    kept_to_limits,
    may_broadcast,
    may_invite,
    may_read_calendar,
    offered_for_handover,
    works_cases,
)
from bot.domain.roles import Role
from bot.domain.sender_pace import NOT_YET, Paced, paced
from bot.flows import engine
from bot.flows.book import FLOWS
from bot.flows.broadcast import SEND
from bot.flows.calendar_admin import SAVE
from bot.flows.commune import PREFIX as COMMUNE_PREFIX
from bot.flows.effects import (
    AddCalendarEvent,
    AddToCase,
    AskReporter,
    Assess,
    CalendarCommand,
    CaseButton,
    ChooseCommune,
    CloseCase,
    CreateInvite,
    Effect,
    FindCommune,
    GroupPress,
    HandOver,
    ListCases,
    LookUpStatus,
    MakePoster,
    OpenCase,
    RecordProgress,
    RedeemInvite,
    ReporterAnswer,
    SendBroadcast,
    SetLanguage,
    ShowStatistics,
    StartBroadcast,
)
from bot.flows.place import COMMANDS as PLACED_COMMANDS
from bot.flows.place import command_of
from bot.flows.report import CONFIRM
from bot.flows.routes import CASE_BUTTONS, CLOSE_DECISIONS
from bot.metrics import Metrics
from bot.services.broadcasts import Broadcasts
from bot.services.calendar_commands import CalendarCommands
from bot.services.cases import CaseService
from bot.services.directory import Communes, code_of
from bot.services.invites import Invites
from bot.services.outbox import Outbox
from bot.services.period_reports import PeriodReports
from bot.services.places import AskWhere, place, row_in
from bot.services.poster_commands import PosterCommands
from storage import conversations, people
from storage.conversations import StoredConversation
from storage.db import Database, Tx

log = logging.getLogger(__name__)

# A commune's command acts as the person's row in one commune where their role may do it.
MAY_IN_COMMUNE: Mapping[str, Callable[[str], bool]] = {
    "broadcast": may_broadcast, "invite": may_invite, "poster": may_invite,
    "calendar": may_read_calendar,
}
DRAFT_TTL = timedelta(hours=24)
# Communes offered as buttons when a typed name fits several.
COMMUNE_CHOICES = 5
SEEN_REFRESH = timedelta(minutes=10)

# A channel's way of reading a typed label: the choice id it rendered with that label, if
# any of `choices` (rendered in the person's language) is what was typed.
LabelMatcher = Callable[[str, Sequence[Choice], str], str | None]


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


@dataclass
class Turn:
    """One event being handled: who, where, and where their conversation stands."""

    person: Person
    channel: str
    address: str
    state: engine.State
    ctx: engine.Context
    now: datetime
    notice: Text | None = None

    def made(self, choice: str, again: Reply) -> None:
        """The button `choice` made something: pressed again, it answers `again`."""
        self.state = replace(self.state, done={**self.state.done, choice: again.to_json()})


class _LostRace(Exception):
    """Another worker changed this conversation first; the event is handled again."""


@dataclass(frozen=True)
class Services:
    """The use cases an inbound event can call on."""

    cases: CaseService
    invites: Invites
    broadcasts: Broadcasts
    calendar: CalendarCommands
    period_reports: PeriodReports
    posters: PosterCommands


def left_half_way(conv: StoredConversation, state: engine.State, now: datetime) -> bool:
    """The person was in a flow (or had a draft put aside) and left it more than a day ago:
    the retention job has forgotten it (storage.conversations.forget_drafts), or will."""
    if conv.state.get("expired"):
        return True
    return now - conv.updated_at > DRAFT_TTL and not (state.idle and not state.parked)


def with_way_on(replies: list[Reply], menu: Reply) -> list[Reply]:
    """No screen is a dead end: a turn that leaves the person outside any question ends
    with buttons. A last answer without any gets the menu's (on the same message, so a
    channel that counts messages pays nothing more)."""
    if not replies:
        return replies
    last = replies[-1]
    if last.choices or last.request:
        return replies
    return [*replies[:-1], replace(last, choices=menu.choices)]


def where_they_are(state: engine.State, ctx: engine.Context) -> Reply:
    """The question someone is at, its buttons with it, or their home when at none."""
    if state.idle or not state.step:
        return engine.main_menu(ctx)
    return engine.prompt_of(FLOWS, state, ctx)


class ConversationService:
    def __init__(self, database: Database, clock: Clock, communes: Communes,
                 outbox: Outbox, services: Services,
                 labels: Mapping[str, LabelMatcher] | None = None,
                 on_queued: Callable[[], None] | None = None,
                 metrics: Metrics | None = None,
                 limits: SenderLimits | None = None) -> None:
        self.database = database
        self.limits = limits or SenderLimits()
        self.clock = clock
        self.metrics = metrics or Metrics()
        self.communes = communes
        # The communes as a person may name them (a province's bot asks which is theirs).
        self.places = CommuneIndex(communes.places())
        self.outbox = outbox
        self.services = services
        self.labels = dict(labels or {})
        self.on_queued = on_queued
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def handle(self, event: InboundEvent) -> Handled:
        """Process one event; falsy if it was a redelivery and changed nothing."""
        # Whatever a channel lets through, the database must be able to keep.
        event = InboundEvent(event.channel, storable(event.sender),
                             storable_input(event.input), storable(event.key),
                             storable(event.group))
        self.metrics.updates_received.labels(event.channel).inc()
        lock_key = (event.channel, event.sender)
        lock = self._locks.setdefault(lock_key, asyncio.Lock())
        try:
            async with lock:
                for _attempt in range(5):
                    try:
                        async with self.database.transaction() as tx:
                            handled = await self._handle(tx, event)
                        break
                    except _LostRace:
                        continue
                else:
                    raise RuntimeError("conversation kept changing under us")
        finally:
            if not lock.locked():
                self._locks.pop(lock_key, None)
        if handled and self.on_queued:
            self.on_queued()
        return handled

    async def _handle(self, tx: Tx, event: InboundEvent) -> Handled:
        now = self.clock.now()
        if event.key and not await conversations.remember_inbound(tx, event.key, now):
            log.info("duplicate inbound %s ignored", event.key)
            return Handled(False)
        person, conv = await self._sender(tx, event, now)
        state = engine.State.from_json(conv.state if conv else None)
        expired = conv is not None and left_half_way(conv, state, now)
        if conv is not None and now - conv.updated_at > DRAFT_TTL:
            state = engine.State()
        ctx = await self._context(tx, person, in_group=event.group is not None,
                                  first_contact=conv is None)
        ctx = await self._case_team(tx, person, state, ctx)
        inp = self._typed(event, state, ctx, person.language)
        pace = self._pace(conv, person, inp, state, ctx, now)
        new_state, effects = engine.step(FLOWS, state, inp, ctx)
        tx.after_commit(self.metrics.flow_steps.labels(
            new_state.flow or state.flow or "menu").inc)
        if (expired and inp.kind != "command" and new_state.idle
                and all(isinstance(e, Reply) for e in effects)):
            # What they answer belonged to the flow that is gone: say so, kindly, and show
            # the way on, rather than "not understood". Anything else they did (a command
            # such as /start, a case's button, a case code, words of danger) is done as
            # usual.
            effects = [engine.main_menu(ctx, Text("flow.expired"))]
        turn = Turn(person, event.channel, event.sender, new_state, ctx, now)
        replies: list[Reply] = []
        for effect in effects:
            replies.extend(await self._carry_out(tx, turn, effect, event.group))
        if event.group is None and turn.state.idle:
            replies = with_way_on(replies, engine.main_menu(turn.ctx))
        if pace.over and not any(isinstance(e, OpenCase | AddToCase) for e in effects):
            # Taken in, not answered: once told to slow down (with where they are, so
            # they can go on), then nothing until the minute is over. A report's answer
            # (its case code) always goes.
            replies = [self._slow_down(turn)] if pace.first_over else []
            log.info("sender slowed person=%s count=%s", person.id, pace.pace.count)
        for reply in replies:
            await self.outbox.send(tx, turn.person, reply, now,
                                   to=(event.channel, event.sender))
        if turn.state != state or conv is None or expired or pace.pace != conv.pace:
            saved = await conversations.save_conversation(
                tx, person.id, turn.state.to_json(), conv.version if conv else None, now,
                pace.pace)
            if not saved:
                raise _LostRace
        log.info("inbound channel=%s person=%s kind=%s flow=%s step=%s", event.channel,
                 person.id, inp.kind, turn.state.flow, turn.state.step,
                 extra={"channel": event.channel, "person_id": person.id,
                        "flow": turn.state.flow, "step": turn.state.step})
        notice = i18n.render(turn.notice, turn.person.language) if turn.notice else None
        return Handled(True, notice)

    def _pace(self, conv: StoredConversation | None, person: Person, inp: Input,
              state: engine.State, ctx: engine.Context, now: datetime) -> Paced:
        """How fast they write, this message counted unless it answers the question the
        bot just asked (a button of it: those come only as fast as the bot asks) or comes
        from the commune's own people (permissions.kept_to_limits)."""
        before = conv.pace if conv else NOT_YET
        answers = inp.kind == "choice" and inp.choice in {
            c.id for c in engine.typed_choices(FLOWS, state, ctx)}
        if answers or not kept_to_limits(person.role):
            return Paced(before, over=False, first_over=False)
        return paced(before, now, self.limits.messages_per_minute)

    @staticmethod
    def _slow_down(turn: Turn) -> Reply:
        """"You are writing fast; what you sent is kept", 111, and the question they are at
        (or their home), its buttons with it."""
        prompt = where_they_are(turn.state, turn.ctx)
        return replace(prompt, texts=(Text("limits.slow_down"), *prompt.texts))

    async def where_you_were(self, tx: Tx, person_id: int, now: datetime) -> Reply | None:
        """After replies to this person were dropped (their channel failed for hours): one
        message that says sorry, gives the hotline and asks the question they were at
        again, its buttons with it, so the conversation goes on where it stood."""
        person = await people.person(tx, person_id)
        if person is None:
            return None
        conv = await conversations.conversation(tx, person_id)
        state = engine.State.from_json(conv.state if conv else None)
        if conv is not None and now - conv.updated_at > DRAFT_TTL:
            state = engine.State()
        ctx = await self._context(tx, person, in_group=False)
        prompt = where_they_are(state, ctx)
        return replace(prompt, texts=(Text("delivery.sorry"), *prompt.texts))

    async def _sender(self, tx: Tx, event: InboundEvent, now: datetime
                      ) -> tuple[Person, StoredConversation | None]:
        found = await conversations.sender(tx, event.channel, event.sender)
        if found is None:
            # Someone new belongs to the first commune until they choose theirs.
            person = await people.add_person(tx, commune_id=self.communes.home_id,
                                             key=None, role=Role.CITIZEN, name="",
                                             language="vi", created_at=now)
            await people.bind_identity(tx, person.id, event.channel, event.sender)
            found = await conversations.sender(tx, event.channel, event.sender)
            assert found is not None
        ident, person, conv = found
        await people.note_seen(tx, ident, now, SEEN_REFRESH)
        return person, conv

    async def _context(self, tx: Tx, person: Person, in_group: bool,
                       first_contact: bool = False) -> engine.Context:
        served = self.communes.get(person.commune_id)
        commune = served or self.communes.first
        cfg = commune.config
        team = await self._team(tx, person, commune.commune_id)
        if served is None:
            # Of no commune yet: no commune's officer, places or villages are theirs (help
            # gives the hotlines); the province is where they are.
            return engine.Context(
                role=person.role, language=person.language, team=team,
                commune_name=self.communes.province_name or cfg.name, in_group=in_group,
                first_contact=first_contact, needs_commune=True,
                province_name=self.communes.province_name)
        return engine.Context(
            role=person.role, language=person.language, villages=cfg.villages,
            own_village=commune.village_key(person.village_id), team=team,
            officer_phone=cfg.officer_phone, trusted_addresses=cfg.trusted_addresses,
            commune_name=cfg.name, in_group=in_group, first_contact=first_contact,
            province_name=self.communes.province_name,
        )

    async def _case_team(self, tx: Tx, person: Person, state: engine.State,
                         ctx: engine.Context) -> engine.Context:
        """Within a case's flow, the colleagues offered are those of the case's commune
        (someone of several communes, or of the province, works on other communes')."""
        case_id = state.data.get("case_id")
        if not works_cases(person.role) or not isinstance(case_id, int):
            return ctx
        case = await self.services.cases.case_in_commune(tx, case_id)
        if case is None or case.commune_id == person.commune_id:
            return ctx
        actor = await self.services.cases.acting(tx, person, case.commune_id)
        return replace(ctx, team=await self._team(tx, actor, case.commune_id))

    async def _team(self, tx: Tx, person: Person, commune_id: int
                    ) -> tuple[tuple[str, str], ...]:
        """The colleagues in this commune a case of theirs can be handed over to."""
        if not works_cases(person.role):
            return ()
        everyone = await self.communes.everyone(tx, commune_id)
        return tuple((str(p.id), p.name) for p in everyone
                     if offered_for_handover(p.role) and p.id != person.id)

    def _typed(self, event: InboundEvent, state: engine.State, ctx: engine.Context,
               language: str) -> Input:
        """A typed button label (a reply keyboard sends its labels back) as the button's id:
        the channel knows how it rendered them; the flows never see a label."""
        inp = event.input
        matcher = self.labels.get(event.channel)
        if inp.kind != "text" or matcher is None:
            return inp
        chosen = matcher(inp.text, engine.typed_choices(FLOWS, state, ctx), language)
        return Input("choice", choice=chosen) if chosen is not None else inp

    async def _carry_out(self, tx: Tx, turn: Turn, effect: Effect,
                         group: str | None) -> list[Reply]:
        """Do what the flow asked; the replies for the person. A service that opens a flow
        (a case button, /broadcast, /calendar add) sets `turn.state`."""
        now, person, s = turn.now, turn.person, self.services
        if isinstance(effect, StartBroadcast | CreateInvite | MakePoster | CalendarCommand):
            command, args = command_of(effect)
            where = await place(tx, self.communes, person, command, args,
                                MAY_IN_COMMUNE[command])
            if isinstance(where, AskWhere):
                turn.state, asked = engine.start(FLOWS, "place", turn.ctx, {
                    "command": command, "args": args,
                    "places": [[code_of(c.config), c.config.name] for c in where.places],
                }, current=turn.state)
                return [e for e in asked if isinstance(e, Reply)]
            person, effect = where.person, PLACED_COMMANDS[command][0](where.args)
        match effect:
            case Reply():
                return [effect]
            case SetLanguage(language=language):
                if language in i18n.available_locales():
                    await people.set_language(tx, person.id, language)
                    turn.person = replace(person, language=language)
                return []
            case RedeemInvite(code=code, welcome=welcome):
                reply, turn.person = await s.invites.redeem(tx, person, code, now)
                if not welcome:
                    return [reply]
                # The home of who they are now: an invitation may have made them staff.
                turn.ctx = await self._context(tx, turn.person, in_group=False)
                return [reply, engine.main_menu(turn.ctx, Text(
                    "welcome", {"commune": turn.ctx.commune_name}))]
            case CreateInvite(args=args):
                return [await s.invites.create(tx, person, args, turn.channel, now)]
            case OpenCase(report=report, early=early):
                case = await s.cases.open_case(tx, person, turn.channel, report, now)
                if early:  # the questions go on, each answer added to this case
                    turn.state = replace(turn.state, data={
                        **turn.state.data, "case_id": case.id, "code": case.code})
                    return [alerts.emergency_alerted(case)]
                turn.made(CONFIRM.id, alerts.report_already_sent(case))
                return [alerts.report_received(case)]
            case AddToCase(case_id=case_id, report=report, final=final):
                return await s.cases.add_to_case(tx, person, case_id, report, turn.channel,
                                                 final, now)
            case LookUpStatus(code=code):
                return await s.cases.status(tx, code, person, now)
            case CaseButton():
                return await self._case_button(tx, turn, effect)
            case GroupPress():
                return await self._group_press(tx, turn, effect, group)
            case ReporterAnswer(case_id=case_id, answer=answer):
                return await s.cases.reporter_answer(tx, case_id, person, answer, now)
            case AskReporter() | HandOver() | Assess() | RecordProgress() | CloseCase():
                return await s.cases.team_action(tx, person, effect, now)
            case StartBroadcast(text=text):
                turn.state, effects = await s.broadcasts.start(tx, person, text, turn.state,
                                                               turn.ctx)
                return [e for e in effects if isinstance(e, Reply)]
            case SendBroadcast(text=text, commune_id=commune_id):
                sender = await row_in(tx, person, commune_id)
                if sender is None:
                    return [say("broadcast.not_allowed")]
                replies = await s.broadcasts.send(tx, sender, turn.channel, text, now)
                if not replies:  # queued: its progress message is the answer
                    turn.made(SEND.id, say("broadcast.already_sent"))
                return replies
            case CalendarCommand(args=args):
                turn.state, effects = await s.calendar.command(tx, person, args, turn.state,
                                                               turn.ctx, now)
                return [e for e in effects if isinstance(e, Reply)]
            case AddCalendarEvent(commune_id=commune_id):
                admin = await row_in(tx, person, commune_id)
                if admin is None:
                    return [say("calendar.change_not_allowed")]
                replies = await s.calendar.add(tx, admin, effect, now)
                if replies and replies[0].texts[0].id == "calendar.added":
                    turn.made(SAVE[0].id, say("calendar.add.already_saved", title=effect.title))
                return replies
            case ListCases(mine=mine):
                return await s.cases.list_cases(tx, person, mine, now)
            case ShowStatistics(period=period):
                return await s.period_reports.command(tx, person, period, now)
            case MakePoster(args=args):
                return await s.posters.command(tx, person, args, now)
            case FindCommune():
                return await self._find_commune(tx, turn, effect)
            case ChooseCommune(code=code, then=then, welcome=welcome):
                return await self._choose_commune(tx, turn, code, then, welcome)
            case _:
                assert_never(effect)

    async def _find_commune(self, tx: Tx, turn: Turn, found: FindCommune) -> list[Reply]:
        """Where someone lives, typed or shared: the one commune it names is theirs; several
        become buttons; none, they are asked again."""
        if found.latitude is not None and found.longitude is not None:
            near = nearest(found.latitude, found.longitude, self.places)
            matches = [near] if near is not None else []
        else:
            matches = find(found.text, self.places, limit=COMMUNE_CHOICES)
        if len(matches) == 1:
            return await self._choose_commune(tx, turn, matches[0].code, found.then, False)
        turn.state = replace(turn.state, flow="commune", step="ask",
                             data={"then": found.then}, history=())
        if not matches:
            reason = (say("commune.not_near") if found.latitude is not None
                      else say("commune.not_found"))
            return [reason, engine.prompt_of(FLOWS, turn.state, turn.ctx)]
        return [Reply((Text("commune.pick"),),
                      (*(Choice(f"{COMMUNE_PREFIX}{p.code}", Text("raw", {"text": p.name}))
                         for p in matches), engine.CANCEL))]

    async def _choose_commune(self, tx: Tx, turn: Turn, code: str, then: str | None,
                              welcome: bool) -> list[Reply]:
        """The person is of this commune from now on (until they change it with /commune);
        the flow they were starting goes on for it, or its home follows."""
        commune = self.communes.by_code(code)
        if commune is None:
            return [say("commune.unknown")]
        if turn.person.role != Role.CITIZEN and commune.commune_id != turn.person.commune_id:
            # Staff and collaborators belong where their file or invitation put them: a
            # poster of another commune must not make an officer one of its team.
            home = self.communes.get(turn.person.commune_id)
            return [engine.main_menu(turn.ctx, Text("commune.yours_stays", {
                "commune": home.config.name if home else self.communes.province_name}))]
        await people.set_commune(tx, turn.person.id, commune.commune_id)
        turn.person = replace(turn.person, commune_id=commune.commune_id, village_id=None)
        turn.ctx = await self._context(tx, turn.person, in_group=False)
        chosen = Text("commune.chosen", {"commune": commune.config.name})
        if then is not None and then in FLOWS.flows:
            turn.state, effects = engine.start(FLOWS, then, turn.ctx, current=turn.state)
            return [Reply((chosen,)), *(e for e in effects if isinstance(e, Reply))]
        if welcome:
            return [engine.main_menu(turn.ctx, Text("welcome", {"commune": turn.ctx.commune_name}))]
        return [Reply((chosen,))]

    async def _case_button(self, tx: Tx, turn: Turn, button: CaseButton) -> list[Reply]:
        """An alert's (or a question's) button: decide from the database, never from the
        button, who may act; a button that opens a flow starts it for the case."""
        cases = self.services.cases
        case = await cases.case_in_commune(tx, button.case_id)
        if case is None:
            return [say("error.stale_button")]
        # Someone of several communes acts as their role in the case's commune.
        actor = await cases.acting(tx, turn.person, case.commune_id)
        if button.action in CLOSE_DECISIONS:  # the chairman is on no team: checked there
            return await cases.decide_close(tx, case, actor, button.action == "close_ok",
                                            button.ref, turn.now)
        refused = await cases.may_open_flow(tx, case, actor, button.action, turn.now)
        if refused is not None:
            return [refused]
        if button.action == "ack":
            return await cases.acknowledge(tx, case, actor, turn.now)
        if button.action == "view":
            return await cases.card(tx, case, actor, turn.now)
        flow = CASE_BUTTONS.get(button.action)
        if flow is None:
            return [say("error.stale_button")]
        if case.closed and button.action != "reply":
            return [say("case.already_closed", code=case.code)]
        # The colleagues a case is handed over to are its commune's.
        turn.ctx = replace(turn.ctx, team=await self._team(tx, actor, case.commune_id))
        turn.state, effects = engine.start(FLOWS, flow, turn.ctx,
                                           {"case_id": case.id, "code": case.code},
                                           current=turn.state)
        return [e for e in effects if isinstance(e, Reply)]

    async def _group_press(self, tx: Tx, turn: Turn, press: GroupPress,
                           group: str | None) -> list[Reply]:
        """A press in the alert group: nothing but an alert's take button does anything
        there; the answer is a short word on the button (and the taker's own messages)."""
        cases = self.services.cases
        case = await cases.case_in_commune(tx, press.case_id)
        commune = self.communes.get(case.commune_id) if case is not None else None
        if (group is None or commune is None or group != commune.config.telegram_alert_group
                or press.action != "ack" or case is None):
            turn.notice = Text("error.stale_button")
            return []
        actor = await cases.acting(tx, turn.person, case.commune_id)
        replies, turn.notice = await cases.take_from_group(tx, case, actor, turn.now)
        return replies
