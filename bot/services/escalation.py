"""Deadlines, reminders and escalation. Timers are rows; a sweep claims due ones with a
lease and fires each once; a timer set for an older deadline version does nothing."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.domain import alerts
from bot.domain.messages import Reply
from bot.domain.routing import level_recipients
from bot.domain.work_hours import WorkHours
from bot.services.directory import Directory
from bot.services.outbox import enqueue, enqueue_media, served_identities
from bot.services.sweeping import sweep_forever
from storage import repo
from storage.models import Case, CaseDeadline, CaseRecipient, Outbox, Person, Timer

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=120)
# Which step each milestone meets; the assessment and acknowledgement have their own actions.
OPEN_STEPS = ("acknowledge", "initial_assessment", "detailed_assessment", "plan_drafted",
              "review")


class Escalation:
    def __init__(self, directory: Directory, calendar: WorkHours) -> None:
        self.directory = directory
        self.calendar = calendar

    def due(self, step: str, urgency: str, start: datetime) -> datetime:
        return self.calendar.add(start, self.directory.config.deadlines[step][urgency])

    async def arm(self, s: AsyncSession, case: Case, step: str, start: datetime) -> CaseDeadline:
        """Set (or reset) one deadline of a case, with its reminders and escalation timer."""
        due = self.due(step, case.urgency, start)
        existing = await repo.deadline(s, case.id, step)
        if existing is None:
            dl = await repo.add(s, CaseDeadline(case_id=case.id, step=step, started_at=start,
                                                due_at=due, version=1))
        else:
            dl = existing
            dl.started_at, dl.due_at, dl.met_at = start, due, None
            dl.version += 1
            await s.flush()
        await repo.add_timers(s, self._timers(dl.id, start, due, dl.version))
        return dl

    async def meet(self, s: AsyncSession, case_id: int, step: str, now: datetime) -> bool:
        dl = await repo.deadline(s, case_id, step)
        if dl is None or dl.met_at is not None:
            return False
        dl.met_at = now
        dl.version += 1
        return True

    async def arm_new_case(self, s: AsyncSession, case: Case) -> None:
        """All first deadlines of a new case and their timers, in two statements (the ORM
        would insert the 20 rows one by one on SQLite, to match each to its new id)."""
        start = case.created_at
        dues = {step: self.due(step, case.urgency, start) for step in OPEN_STEPS}
        ids = await repo.add_deadlines(s, [
            {"case_id": case.id, "step": step, "started_at": start, "due_at": due,
             "version": 1} for step, due in dues.items()])
        await repo.add_timers(s, [timer for step, due in dues.items()
                                  for timer in self._timers(ids[step], start, due, 1)])

    def _timers(self, deadline_id: int, start: datetime, due: datetime,
                version: int) -> list[dict[str, object]]:
        """The reminders at the configured fractions of the span, then the escalation."""
        span = due - start
        timers: list[dict[str, object]] = [
            {"deadline_id": deadline_id, "kind": f"remind{version}", "seq": seq,
             "fire_at": start + span * fraction, "deadline_version": version}
            for seq, fraction in enumerate(self.directory.config.reminders_at)]
        timers.append({"deadline_id": deadline_id, "kind": f"escalate{version}", "seq": 0,
                       "fire_at": due, "deadline_version": version})
        return timers

    async def fire(self, s: AsyncSession, timer: Timer, now: datetime) -> None:
        """Carry out one due timer inside the caller's transaction."""
        timer.done_at = now
        dl = await s.get(CaseDeadline, timer.deadline_id)
        if dl is None or dl.met_at is not None or dl.version != timer.deadline_version:
            return
        case = await repo.case_by_id(s, dl.case_id)
        if case is None or case.status == "closed":
            return
        if timer.kind.startswith("remind"):
            if now < dl.due_at:  # a reminder after its deadline (e.g. after downtime) is noise
                await self._remind(s, case, dl, timer, now)
        else:
            await self._escalate(s, case, dl, timer, now,
                                 rearm=not timer.kind.startswith("unreachable"))

    async def reroute(self, s: AsyncSession, row: Outbox, now: datetime) -> None:
        """A message could not reach its person on that channel: try their other channels
        (those this deployment serves, as the session says); an alert with none left climbs
        one level at once instead of waiting for the deadline."""
        person = await repo.person(s, row.person_id)
        others = [i for i in served_identities(s, await repo.identities_of(s, row.person_id))
                  if i.unreachable_at is None
                  and (i.channel, i.external_id) != (row.channel, row.address)]
        if person is not None and others:
            await enqueue(s, person, Reply.from_json(row.payload["reply"]), now, kind=row.kind,
                          case_id=row.case_id, dedupe_key=f"reroute:{row.id}",
                          identities=others, meta=row.payload.get("meta"),
                          broadcast_id=row.broadcast_id)
            return
        if row.case_id is not None and row.kind in ("alert", "escalation"):
            await self.climb_at_once(s, row.case_id, row.id, now)

    async def climb_at_once(self, s: AsyncSession, case_id: int, seq: int,
                            now: datetime) -> None:
        """Someone on the team cannot be reached at all: the next level is alerted now, not
        at the deadline. `seq` names the cause (the failed row; 0: none at creation)."""
        dl = await repo.deadline(s, case_id, "acknowledge")
        if dl is not None and dl.met_at is None:
            s.add(Timer(deadline_id=dl.id, kind=f"unreachable{dl.version}", seq=seq,
                        fire_at=now, deadline_version=dl.version))

    async def _remind(self, s: AsyncSession, case: Case, dl: CaseDeadline, timer: Timer,
                      now: datetime) -> None:
        targets = await self._current_team(s, case)
        reply = alerts.reminder(case, dl.step, dl.due_at)
        for person in targets:
            await enqueue(s, person, reply, now, kind="reminder", case_id=case.id,
                          dedupe_key=f"t{timer.id}:p{person.id}")
        await repo.audit(s, case.id, None, "reminder_sent", now, step=dl.step,
                         recipients=[p.id for p in targets])

    async def _current_team(self, s: AsyncSession, case: Case) -> list[Person]:
        if case.assignee_id is not None:
            person = await repo.person(s, case.assignee_id)
            return [person] if person else []
        team: list[Person] = []
        for r in await repo.recipients(s, case.id):
            if r.access == "team" and r.level == case.escalation_level:
                person = await repo.person(s, r.person_id)
                if person:
                    team.append(person)
        return team

    async def _escalate(self, s: AsyncSession, case: Case, dl: CaseDeadline, timer: Timer,
                        now: datetime, rearm: bool = True) -> None:
        top = len(self.directory.config.levels)
        level = min(case.escalation_level + 1, top)
        case.escalation_level = level
        case.version += 1
        people = await repo.people_of(s, self.directory.commune_id)
        targets = level_recipients(self.directory.config, people, level, case.police_case)
        files = await repo.attachments(s, case.id)
        details = alerts.case_details(case, self.directory.village_names.get(case.village_id or 0),
                                      await repo.deadlines(s, case.id), len(files))
        reply = alerts.team_alert(case, details, level, dl.step)
        for person in targets:
            existing = await repo.recipient(s, case.id, person.id)
            if existing is None:
                s.add(CaseRecipient(case_id=case.id, person_id=person.id, level=level,
                                    access="team", alerted_at=now))
            else:
                existing.level, existing.access = level, "team"
            row = await enqueue(s, person, reply, now, kind="escalation", case_id=case.id,
                                dedupe_key=f"t{timer.id}:p{person.id}")
            if existing is None:  # someone new to the case sees the files too
                await enqueue_media(s, person, row, alerts.media_of(files),
                                    alerts.media_caption(case), now, f"t{timer.id}:p{person.id}")
        await repo.audit(s, case.id, None, "escalated", now, step=dl.step, level=level,
                         recipients=[p.id for p in targets])
        if not rearm:
            return
        # Keep climbing each period until someone acts; a period missed while the bot was
        # down counts once, not once per missed period.
        period = dl.due_at - dl.started_at
        next_at = timer.fire_at + period
        if next_at <= now:
            next_at = now + period
        s.add(Timer(deadline_id=dl.id, kind=timer.kind, seq=timer.seq + 1,
                    fire_at=next_at, deadline_version=dl.version))
        log.info("case %s escalated to level %s on %s", case.id, level, dl.step)


class TimerSweeper:
    """Wakes at the next due timer and fires what is due, shared safely between processes."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock,
                 escalation: Escalation, on_sent: Callable[[], None] | None = None,
                 owner: str | None = None) -> None:
        self.sessions = sessions
        self.clock = clock
        self.escalation = escalation
        self.on_sent = on_sent
        self.owner = owner or f"timers-{uuid.uuid4().hex[:8]}"
        self.wake = asyncio.Event()

    async def fire_due(self) -> int:
        now = self.clock.now()
        fired = 0
        async with self.sessions.begin() as s:
            ids = await repo.due_timer_ids(s, now, 100)
            claimed = [i for i in ids if await repo.lease_timer(s, i, self.owner, now, LEASE)]
        for timer_id in claimed:
            async with self.sessions.begin() as s:
                timer = await repo.leased_timer(s, timer_id, self.owner)
                if timer is None:
                    continue
                await self.escalation.fire(s, timer, now)
                fired += 1
        if fired and self.on_sent:
            self.on_sent()
        return fired

    async def next_due(self) -> datetime | None:
        async with self.sessions() as s:
            return await repo.next_timer_at(s)

    async def run(self, stop: asyncio.Event, idle: float = 30.0) -> None:
        await sweep_forever(stop, self.wake, self.clock, self.fire_due, self.next_due, idle,
                            "timer")
