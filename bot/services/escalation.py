"""Deadlines, reminders and escalation (service layer). Timers are rows: the timer worker
(bot/workers/timers.py) claims due ones and hands them to `fire_all`, a batch per transaction; a
timer set for an older deadline version does nothing.

Below the top of the chain a missed deadline climbs one level each period, day and night.
The top is alerted once per case, when the case reaches it (not in its quiet hours unless
the case is an EMERGENCY: the climb waits for their end); from then on the case waits in
the top people's digest (bot/services/top_digest.py), not in an alert per period.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from bot.domain import alerts
from bot.domain.cases import FIRST_STEPS, Access, Attachment, Case, Deadline, Timer, Urgency
from bot.domain.delivery import INSTEAD_OF, OutboxMessage, copy_key
from bot.domain.message_kinds import Kind, rule_of
from bot.domain.messages import Reply, Text
from bot.domain.people import Person
from bot.domain.permissions import hears_as_reporter
from bot.domain.routing import level_recipients
from bot.domain.work_hours import WorkHours
from bot.metrics import Metrics
from bot.services.directory import Communes, Directory
from bot.services.outbox import Outbox, Send
from bot.services.top_digest import TopDigest
from storage import cases, deadlines, outbox, people
from storage.db import Tx

log = logging.getLogger(__name__)
# The holder's own reminders of a deadline are numbered from here (the first ones from 0).
HOLDER_SEQ = 100
# The edit of a first alert that says it is overdue (taking the case makes the other one).
OVERDUE_EDIT = 0


@dataclass(frozen=True)
class _Climbing:
    """A case about to climb one level because `timer` of deadline `dl` fired."""

    case_id: int
    dl: Deadline
    timer: Timer
    level: int
    rearm: bool


class Escalation:
    def __init__(self, communes: Communes, outbox: Outbox, digest: TopDigest,
                 metrics: Metrics | None = None) -> None:
        self.communes = communes
        self.metrics = metrics or Metrics()
        # Each commune's own working hours, the clock its deadlines run on.
        self.hours = {c.commune_id: WorkHours(*c.config.working_hours) for c in communes}
        self.outbox = outbox
        self.digest = digest
        # Timers of other kinds riding on a case's deadline (an emergency reporter's quiet
        # timer), by kind: carried out whatever became of the deadline.
        self.riders: dict[str, Callable[[Tx, Timer, datetime], Awaitable[None]]] = {}

    def _commune(self, case: Case) -> Directory:
        return self.communes.of(case.commune_id)

    def top_of(self, case: Case) -> int:
        """The top of the case's commune's escalation chain."""
        return len(self._commune(case).config.levels)

    def due(self, case: Case, step: str, start: datetime) -> datetime:
        cfg = self._commune(case).config
        return self.hours[case.commune_id].add(start, cfg.deadlines[step][case.urgency])

    async def arm(self, tx: Tx, case: Case, step: str, start: datetime) -> Deadline:
        """Set (or reset) one deadline of a case, with its reminders and escalation timer."""
        dl = await deadlines.set_deadline(tx, case.id, step, start,
                                          self.due(case, step, start))
        await deadlines.arm_timers(tx, self._timers(case, dl.id, start, dl.due_at,
                                                    dl.version))
        return dl

    async def meet(self, tx: Tx, case_id: int, step: str, now: datetime) -> bool:
        return await deadlines.meet_deadline(tx, case_id, step, now)

    async def remind_holder(self, tx: Tx, case: Case, now: datetime) -> None:
        """Someone took the case: each deadline still open reminds them first, at the same
        fractions of the time left (a deadline already passed, at once), before it climbs.
        The reminders armed at the case's start may have gone to the team before anyone
        took it, or be past already."""
        fractions = self._commune(case).config.reminders_at
        for dl in await deadlines.deadlines_of(tx, case.id):
            if dl.met_at is not None or dl.step == "acknowledge":
                continue
            left = dl.due_at - now
            times = [now + left * f for f in fractions] if left.total_seconds() > 0 else [now]
            for seq, fire_at in enumerate(times):
                await deadlines.arm_timer(tx, dl.id, f"remind{dl.version}", HOLDER_SEQ + seq,
                                          fire_at, dl.version)

    async def arm_new_case(self, tx: Tx, case: Case) -> None:
        """All first deadlines of a new case and their timers, in two statements."""
        start = case.created_at
        dues = {step: self.due(case, step, start) for step in FIRST_STEPS}
        ids = await deadlines.add_deadlines(tx, case.id, {s: (start, d) for s, d in dues.items()})
        await deadlines.arm_timers(tx, [timer for step, due in dues.items()
                                        for timer in self._timers(case, ids[step], start, due,
                                                                  1)])

    def _timers(self, case: Case, deadline_id: int, start: datetime, due: datetime,
                version: int) -> list[dict[str, object]]:
        """The reminders at the configured fractions of the span, then the escalation."""
        span = due - start
        timers: list[dict[str, object]] = [
            {"deadline_id": deadline_id, "kind": f"remind{version}", "seq": seq,
             "fire_at": start + span * fraction, "deadline_version": version}
            for seq, fraction in enumerate(self._commune(case).config.reminders_at)]
        timers.append({"deadline_id": deadline_id, "kind": f"escalate{version}", "seq": 0,
                       "fire_at": due, "deadline_version": version})
        return timers

    async def fire_all(self, tx: Tx, timers: Sequence[Timer], now: datetime) -> None:
        """Carry out due timers, in this order, inside the caller's transaction. The cases
        they climb are climbed together (a restart may find a thousand due at once): one
        read of each kind for all of them, one write of each kind. A case met twice is
        climbed with what came before it written first, so it reads its own news."""
        await deadlines.finish_timers(tx, [t.id for t in timers], now)
        found = await deadlines.deadlines_by_id(tx, {t.deadline_id for t in timers})
        read = await cases.cases_by_id(tx, {d.case_id for d in found.values()})
        # Cases as read, and not changed since by an earlier timer of these (climbed, or a
        # rider's work): a case met again is read again once what waits is written.
        fresh = set(read)
        climbing: list[_Climbing] = []
        for timer in timers:
            dl = found.get(timer.deadline_id)
            if dl is not None and dl.case_id not in fresh:
                await self._climb_all(tx, climbing, now)
                climbing = []
                dl = await deadlines.deadline_by_id(tx, timer.deadline_id)
                case = await cases.case_by_id(tx, dl.case_id) if dl is not None else None
                if case is not None:
                    read[case.id] = case
                    fresh.add(case.id)
            if (rider := self.riders.get(timer.kind)) is not None:
                if dl is not None:
                    fresh.discard(dl.case_id)
                await rider(tx, timer, now)
                continue
            if dl is None or dl.met_at is not None or dl.version != timer.deadline_version:
                continue
            case = read.get(dl.case_id)
            if case is None or case.closed:
                continue
            if timer.kind.startswith("remind"):
                # A reminder after its deadline (e.g. after downtime) is noise, unless it is
                # the one telling whoever just took the case that a deadline already passed.
                if now < dl.due_at or timer.seq >= HOLDER_SEQ:
                    await self._remind(tx, case, dl, timer, now)
            elif (climb := await self._before_climb(
                    tx, case, dl, timer, now,
                    rearm=not timer.kind.startswith("unreachable"))) is not None:
                climbing.append(climb)
                fresh.discard(case.id)
        await self._climb_all(tx, climbing, now)

    async def reroute(self, tx: Tx, message: OutboxMessage, now: datetime) -> bool:
        """A message could not reach its person on that channel: try their other channels
        (those this deployment serves); an alert with none left climbs one level at once
        instead of waiting for the deadline. True when a timer was armed for that."""
        if await self._copy_elsewhere(tx, message, now):
            return False
        if message.case_id is not None and rule_of(message.kind).climbs:
            return await self.climb_at_once(tx, message.case_id, message.id, now)
        return False

    async def channel_failing(self, tx: Tx, message: OutboxMessage, now: datetime) -> bool:
        """A message a case waits on keeps failing because its channel does: a copy goes
        at once on the person's other channel (whichever arrives first withdraws the
        other). A case's first alert also moves it up the chain, as for a person nobody
        can reach: the channel may be down for everyone on it. A later escalation climbs
        only when it has no other channel (or its copy fails too), or an outage would
        carry every case to the top in minutes. True when a timer was armed for that."""
        copied = INSTEAD_OF not in message.meta and await self._copy_elsewhere(
            tx, message, now)
        if (message.case_id is not None and rule_of(message.kind).climbs
                and (message.kind == Kind.ALERT or not copied)):
            return await self.climb_at_once(tx, message.case_id, message.id, now)
        return False

    async def _copy_elsewhere(self, tx: Tx, message: OutboxMessage, now: datetime) -> bool:
        """The message again on the person's other reachable channels; False if none."""
        person = await people.person(tx, message.person_id)
        others = [i for i in self.outbox.served_identities(
                      await people.identities_of(tx, message.person_id))
                  if i.unreachable_at is None
                  and (i.channel, i.external_id) != (message.channel, message.address)]
        if person is None or not others:
            return False
        await self.outbox.send(tx, person, message.reply, now, kind=message.kind,
                               case_id=message.case_id, dedupe_key=copy_key(message.id),
                               identities=others,
                               meta={**message.meta, INSTEAD_OF: message.id},
                               broadcast_id=message.broadcast_id)
        return True

    async def climb_at_once(self, tx: Tx, case_id: int, seq: int, now: datetime) -> bool:
        """Someone on the team cannot be reached at all: the next level is alerted now, not
        at the deadline. `seq` names the cause (the failed message; 0: none at creation)."""
        dl = await deadlines.deadline(tx, case_id, "acknowledge")
        if dl is None or dl.met_at is not None:
            return False
        case = await cases.case_by_id(tx, case_id)
        if case is None or case.escalation_level >= self.top_of(case):
            return False  # nobody above the top: its digest keeps the case before it
        return await deadlines.arm_timer(tx, dl.id, f"unreachable{dl.version}", seq, now,
                                         dl.version)

    async def _tell_reporter_to_call(self, tx: Tx, case: Case, now: datetime) -> None:
        """Nobody took an EMERGENCY in time: its reporter must not wait on us, but call the
        police or the hotline themselves (once per case; the chain climbs meanwhile)."""
        reporter = await people.person(tx, case.reporter_id) if case.reporter_id else None
        if reporter is None or not hears_as_reporter(reporter):
            return
        reply = Reply((Text("reporter.nobody_yet", {"code": case.code}),),
                      phones=("113", "111"))
        await self.outbox.send(tx, reporter, reply, now, kind=Kind.REPORTER_NOTICE,
                               case_id=case.id, dedupe_key=f"ack-late-reporter:{case.id}")

    async def _remind(self, tx: Tx, case: Case, dl: Deadline, timer: Timer,
                      now: datetime) -> None:
        if case.assignee_id is None and case.escalation_level >= self.top_of(case):
            return  # the top hears of a case nobody took in its digest, not per deadline
        targets = await self._current_team(tx, case)
        reply = alerts.reminder(case, dl.step, dl.due_at)
        for person in targets:
            await self.outbox.send(tx, person, reply, now, kind=Kind.REMINDER, case_id=case.id,
                                   dedupe_key=f"t{timer.id}:p{person.id}")
        await cases.audit(tx, case.id, None, "reminder_sent", now, step=dl.step,
                          recipients=[p.id for p in targets])

    async def _current_team(self, tx: Tx, case: Case) -> list[Person]:
        if case.assignee_id is not None:
            person = await people.person(tx, case.assignee_id)
            return [person] if person else []
        ids = [m.person_id for m in await cases.team_of(tx, case.id)
               if m.access == Access.TEAM and m.level == case.escalation_level]
        found = await people.people_by_id(tx, ids)
        return [found[i] for i in ids if i in found]

    async def _before_climb(self, tx: Tx, case: Case, dl: Deadline, timer: Timer,
                            now: datetime, rearm: bool) -> _Climbing | None:
        """A missed deadline: what happens before its case climbs, and the climb, if it
        climbs now (not at the top already, nor waiting for the top's quiet hours' end)."""
        if timer.kind.startswith("escalate") and timer.seq == 0:
            # A deadline's first miss; the climbs each period after it are escalations.
            tx.after_commit(self.metrics.deadlines_overdue.labels(dl.step).inc)
        if dl.step == "acknowledge" and case.urgency == Urgency.EMERGENCY:
            await self._tell_reporter_to_call(tx, case, now)
        top = self.top_of(case)
        if case.escalation_level >= top:
            await self._wait_at_top(tx, case, dl, now)
            return None
        level = case.escalation_level + 1
        pace = self._commune(case).config.top_digest
        if level == top and case.urgency != Urgency.EMERGENCY and pace.is_quiet(now):
            # The top is not woken for this case: it climbs when the quiet hours end (the
            # timer's own id keeps the new one's seq unique).
            await deadlines.arm_timer(tx, dl.id, f"dawn{dl.version}", timer.id,
                                      pace.quiet_end(now), dl.version)
            log.info("case %s reaches the top after the quiet hours", case.id)
            return None
        return _Climbing(case.id, dl, timer, level, rearm)

    async def _climb_all(self, tx: Tx, climbing: Sequence[_Climbing], now: datetime) -> None:
        """Each case one level up: the level's people join its team and are alerted (those
        new to it get its files too), its first alert says it is overdue, and the next
        climb is armed, for all of them with one statement of each kind."""
        if not climbing:
            return
        climbed = await cases.climb_all(tx, {c.case_id: c.level for c in climbing})
        ids = list(climbed)
        everyone = await self.communes.everyone_in(
            tx, {c.commune_id for c in climbed.values()})
        files = await cases.attachments_of_cases(tx, ids)
        dues = await deadlines.deadlines_of_cases(tx, ids)
        first_alerts = await outbox.case_alerts_of(
            tx, [c.case_id for c in climbing if c.dl.step == "acknowledge"])
        edits: list[tuple[OutboxMessage, Reply]] = []
        members: list[tuple[int, int, int]] = []
        sends: list[tuple[Send, list[Attachment]]] = []
        audits: list[tuple[int, int | None, str, Mapping[str, object]]] = []
        in_digests: list[int] = []
        next_timers: list[dict[str, object]] = []
        for c in climbing:
            case, dl, timer = climbed[c.case_id], c.dl, c.timer
            commune = self._commune(case)
            targets = level_recipients(commune.config, everyone[case.commune_id], c.level,
                                       case.police_case)
            details = alerts.case_details(case, commune.place(case), dues[case.id],
                                          files[case.id])
            # How long it waited by the clock of its deadline (15 minutes, then 30...),
            # not by when the timer happened to run.
            climb = alerts.Climb(dl.step, timer.fire_at - dl.started_at,
                                 tuple((p.name, p.role) for p in targets))
            reply = alerts.team_alert(case, details, climb,
                                      protect=commune.config.privacy.protect_content)
            if dl.step == "acknowledge":
                edits += self._overdue_edits(case, details, climb, first_alerts[case.id])
            told: list[int] = []
            for person in targets:
                members.append((case.id, person.id, c.level))
                if (person.commune_id == self.communes.province_id
                        and case.urgency != Urgency.EMERGENCY):
                    # The province's people serve a hundred communes: a case reaching them
                    # waits in their one digest across communes, not in a message of its
                    # own (a child in danger now still reaches them at once).
                    in_digests.append(person.id)
                else:
                    told.append(person.id)
                    sends.append((Send(person, reply, Kind.ESCALATION, case.id,
                                       f"t{timer.id}:p{person.id}"), files[case.id]))
            tx.after_commit(self.metrics.escalations.labels(str(c.level)).inc)
            audits.append((case.id, None, "escalated",
                           {"step": dl.step, "level": c.level,
                            "recipients": [p.id for p in targets]}))
            if c.level == self.top_of(case):
                # From now on the case waits in the top people's digest, not in a re-alert.
                await self.digest.arm_after_alert(tx, case.commune_id, told, now)
                log.info("case %s escalated to the top on %s", case.id, dl.step,
                         extra={"case_id": case.id, "level": c.level, "step": dl.step})
                continue
            log.info("case %s escalated to level %s on %s", case.id, c.level, dl.step,
                     extra={"case_id": case.id, "level": c.level, "step": dl.step})
            if c.rearm:
                # Keep climbing each period until someone acts; a period missed while the
                # bot was down counts once, not once per missed period.
                period = dl.due_at - dl.started_at
                next_at = timer.fire_at + period
                if next_at <= now:
                    next_at = now + period
                next_timers.append({"deadline_id": dl.id, "kind": timer.kind,
                                    "seq": timer.seq + 1, "fire_at": next_at,
                                    "deadline_version": dl.version})
        if edits:
            await self.outbox.edit_all(tx, edits, now, OVERDUE_EDIT)
        new = await cases.join_teams(tx, members, Access.TEAM, now)
        queued = await self.outbox.send_all(tx, [s for s, _ in sends], now)
        for (send, attached), message in zip(sends, queued, strict=True):
            if attached and (send.case_id or 0, send.person.id) in new:
                # Someone new to the case sees the files too.
                await self.outbox.send_media(tx, send.person, message,
                                             alerts.media_of(attached),
                                             alerts.media_caption(
                                                 climbed[send.case_id or 0],
                                                 protect=send.reply.protect),
                                             now, send.dedupe_key)
        await cases.audit_all(tx, audits, now)
        await self.digest.arm_now(tx, in_digests, now)
        await deadlines.arm_timers_once(tx, next_timers)

    def _overdue_edits(self, case: Case, details: tuple[Text, ...], climb: alerts.Climb,
                       first_alerts: Sequence[OutboxMessage]
                       ) -> list[tuple[OutboxMessage, Reply]]:
        """The first alert's copies stop reading "new case": they say nobody took it in
        time, and keep their buttons (edited once; taking the case edits them again)."""
        overdue = Text("alert.overdue", {"code": case.code, "waited": alerts.waited(
            climb.waited)})
        village = self._commune(case).village_name(case.village_id)
        edits: list[tuple[OutboxMessage, Reply]] = []
        for message in first_alerts:
            if message.kind != Kind.ALERT:
                continue
            if message.meta.get("group"):  # the group's copy: the line before its summary
                shown = alerts.group_alert(case, village)
                edits.append((message, replace(shown, texts=(overdue, *shown.texts))))
            else:  # the line instead of "new case"
                shown = alerts.team_alert(case, details)
                edits.append((message, replace(shown, texts=(overdue, *shown.texts[1:]))))
        return edits

    async def _wait_at_top(self, tx: Tx, case: Case, dl: Deadline, now: datetime) -> None:
        """A deadline passed for a case already at the top: no alert again, the case goes
        into the digest of everyone on its team there."""
        ids = [m.person_id for m in await cases.team_of(tx, case.id)
               if m.access == Access.TEAM and m.level == case.escalation_level]
        await self.digest.arm_now(tx, ids, now)
        await cases.audit(tx, case.id, None, "overdue_at_top", now, step=dl.step)
