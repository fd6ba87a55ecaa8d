"""Case lifecycle (service layer): open a report, acknowledge, ask, hand over, assess,
record progress, close, status by code. Each runs inside the caller's transaction and
queues what must be sent in the outbox; every read and change of a case is audited."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.domain import alerts
from bot.domain.cases import (
    MILESTONE_STEPS,
    Access,
    Attachment,
    Case,
    Decision,
    NewCase,
    Status,
    Timer,
    Urgency,
    coarse_status,
)
from bot.domain.commune import SenderLimits
from bot.domain.delivery import TOLD_APART
from bot.domain.local_time import LOCAL_TZ
from bot.domain.message_kinds import Kind
from bot.domain.messages import Choice, Reply, Text, say
from bot.domain.people import Person
from bot.domain.permissions import (
    close_needs_chairman,
    hears_as_reporter,
    is_chairman,
    is_reporter,
    kept_to_limits,
    may_acknowledge,
    may_act_on_case,
    may_decide_close,
    may_receive_handover,
    may_see_status,
    may_take_from_group,
    oversees_communes,
    works_cases,
)
from bot.domain.routing import first_recipients, is_police_case, triage, village_collaborators
from bot.flows.effects import (
    AskReporter,
    Assess,
    CloseCase,
    HandOver,
    RecordProgress,
    ReportAnswers,
    TeamAction,
)
from bot.metrics import Metrics
from bot.services.directory import Communes, Directory
from bot.services.escalation import Escalation
from bot.services.outbox import Outbox
from storage import cases, close_requests, deadlines, outbox, people
from storage.db import Tx

log = logging.getLogger(__name__)
# How long an emergency's reporter may be silent before what they added goes to the team.
REPORTER_QUIET = timedelta(minutes=3)
QUIET_TIMER = "quiet"


def additions_to(case: Case, report: ReportAnswers) -> dict[str, object]:
    """The case's fields an emergency's later answers change (an answer changed by going
    back replaces the earlier one; nothing given erases nothing)."""
    wanted: dict[str, object] = {"age_band": report.age_band, "sex": report.sex,
                                 "child_count": report.child_count}
    if report.child_name:
        wanted["child_name"] = report.child_name
    if report.description:
        wanted["description"] = report.description
    if not report.anonymous and report.phone:
        wanted.update(reporter_anonymous=False, reporter_phone=report.phone)
    elif report.anonymous:
        wanted.update(reporter_anonymous=True, reporter_phone=None)
    return {k: v for k, v in wanted.items() if getattr(case, k) != v}


# Cases one list shows, each with its button (more are counted, not listed).
LIST_MAX = 10


class CaseService:
    def __init__(self, communes: Communes, escalation: Escalation, outbox: Outbox,
                 metrics: Metrics | None = None,
                 limits: SenderLimits | None = None) -> None:
        self.communes = communes
        self.metrics = metrics or Metrics()
        self.escalation = escalation
        self.outbox = outbox
        self.limits = limits or SenderLimits()

    # ---- opening ---------------------------------------------------------------------------

    def _commune(self, case: Case) -> Directory:
        return self.communes.of(case.commune_id)

    async def open_case(self, tx: Tx, reporter: Person, channel: str, report: ReportAnswers,
                        now: datetime) -> Case:
        """The report becomes a case of the reporter's commune, routed to its team."""
        commune = self.communes.of(reporter.commune_id)
        cfg = commune.config
        types = report.types or ("other",)
        urgency = triage(report.danger, types, report.age_band)
        year = now.astimezone(LOCAL_TZ).year
        seq = await cases.next_case_seq(tx, commune.commune_id, year)
        village_id = commune.village_ids.get(report.village or "")
        anonymous = report.anonymous
        case = await cases.add_case(tx, NewCase(
            commune_id=commune.commune_id, code=f"{cfg.code_prefix}-{year}-{seq:04d}",
            types=types, urgency=urgency, danger=report.danger,
            police_case=is_police_case(cfg, types, urgency), village_id=village_id,
            location_text=report.location_text, latitude=report.latitude,
            longitude=report.longitude, age_band=report.age_band, sex=report.sex,
            child_name=report.child_name, child_count=report.child_count,
            description=report.description, reporter_id=reporter.id,
            reporter_anonymous=anonymous, reporter_phone=None if anonymous else report.phone,
            created_at=now))
        files = [Attachment("photo", channel, ref) for ref in report.photos]
        if report.voice_ref:
            files.append(Attachment("voice", channel, report.voice_ref))
        await cases.add_attachments(tx, case.id, files, now)
        media = alerts.media_of(files)
        await cases.audit(tx, case.id, reporter.id, "opened", now, urgency=urgency,
                          anonymous=anonymous)
        tx.after_commit(self.metrics.reports_opened.labels(str(urgency)).inc)
        await self.escalation.arm_new_case(tx, case)
        everyone = await self.communes.everyone(tx, commune.commune_id)
        team = first_recipients(cfg, everyone, types, urgency)
        if await self._one_of_many(tx, reporter, case, now):
            await self._alert_many(tx, reporter, case, team, now)
            return case
        village = commune.village_name(village_id)
        # A new case has no attachments other than these, and the deadlines just armed.
        details = alerts.case_details(case, commune.place(case),
                                      await deadlines.deadlines_of(tx, case.id), files)
        protect = cfg.privacy.protect_content
        reply = alerts.team_alert(case, details, protect=protect)
        collaborators = [p for p in village_collaborators(everyone, village_id)
                         if p.id != reporter.id and p not in team
                         and cfg.tell_village_collaborator]
        identities = await people.identities_for(tx, [p.id for p in (*team, *collaborators)])
        await cases.join_team_many(tx, case.id, [p.id for p in team], 1, Access.TEAM, now)
        unreached = 0
        for person in team:
            message = await self.outbox.send(
                tx, person, reply, now, kind=Kind.ALERT, case_id=case.id,
                dedupe_key=f"alert:{case.id}:p{person.id}", fresh_key=True,
                identities=identities[person.id])
            unreached += message is None
            await self.outbox.send_media(tx, person, message, media,
                                         alerts.media_caption(case, protect=protect),
                                         now, f"alert:{case.id}:p{person.id}")
        if unreached:
            log.warning("case %s: %s of the team have no channel; next level now", case.id,
                        unreached)
            await self.escalation.climb_at_once(tx, case.id, 0, now)
        await cases.audit(tx, case.id, None, "alerted", now, recipients=[p.id for p in team])
        group_id = commune.group_person_id
        group = await people.person(tx, group_id) if group_id else None
        if group is not None and cfg.telegram_alert_group:
            await self.outbox.send(tx, group, alerts.group_alert(case, village,
                                                                 protect=protect), now,
                                   kind=Kind.ALERT, case_id=case.id,
                                   dedupe_key=f"alert:{case.id}:group", fresh_key=True,
                                   to=("telegram", cfg.telegram_alert_group),
                                   meta={"group": True})
        await cases.join_team_many(tx, case.id, [p.id for p in collaborators], 1,
                                   Access.VILLAGE, now)
        for person in collaborators:
            await self.outbox.send(tx, person, alerts.village_notice(case, village or ""), now,
                                   kind=Kind.NOTICE, case_id=case.id,
                                   dedupe_key=f"village:{case.id}:p{person.id}",
                                   fresh_key=True, identities=identities[person.id])
        return case

    async def _one_of_many(self, tx: Tx, reporter: Person, case: Case, now: datetime
                           ) -> bool:
        """One report too many from this person in the last hour (a child in danger now is
        never one of many)."""
        if case.urgency == Urgency.EMERGENCY or not kept_to_limits(reporter.role):
            return False
        opened = await cases.opened_by(tx, reporter.id, now - timedelta(hours=1))
        return opened > self.limits.reports_per_hour

    async def _alert_many(self, tx: Tx, reporter: Person, case: Case,
                          team: Sequence[Person], now: datetime) -> None:
        """The team joins the case as always (its deadlines are armed, it is on their
        lists), but hears of this sender's further reports in one alert an hour: the
        first one past the limit says so, the next ones of that hour add no message."""
        hour = now.astimezone(LOCAL_TZ).strftime("%Y%m%d%H")
        count = await cases.opened_by(tx, reporter.id, now - timedelta(hours=1))
        reply = alerts.many_reports(case, count)
        await cases.join_team_many(tx, case.id, [p.id for p in team], 1, Access.TEAM, now)
        identities = await people.identities_for(tx, [p.id for p in team])
        for person in team:
            await self.outbox.send(tx, person, reply, now, kind=Kind.ALERT, case_id=case.id,
                                   dedupe_key=f"many:{reporter.account}:{hour}:p{person.id}",
                                   identities=identities[person.id])
        await cases.audit(tx, case.id, None, "alerted", now, recipients=[p.id for p in team],
                          grouped=True)
        log.info("case %s: one of many reports from person %s this hour", case.id,
                 reporter.id)

    async def add_to_case(self, tx: Tx, reporter: Person, case_id: int, report: ReportAnswers,
                          channel: str, final: bool, now: datetime) -> list[Reply]:
        """An emergency's reporter answered one more question after the alert: the case
        takes it at once. With the last answer the team gets all of it in one message."""
        case = await self.case_in_commune(tx, case_id)
        if case is None or case.reporter_id != reporter.id:
            log.warning("additions for case %s from someone else's conversation", case_id)
            return [say("report.additions.lost")] if final else []
        changes = additions_to(case, report)
        known = {a.file_ref for a in await cases.attachments_of(tx, case.id)}
        files = [Attachment("photo", channel, ref) for ref in report.photos if ref not in known]
        if report.voice_ref and report.voice_ref not in known:
            files.append(Attachment("voice", channel, report.voice_ref))
        if changes:
            case = await cases.update_details(tx, case.id, **changes)
        await cases.add_attachments(tx, case.id, files, now)
        if changes or files:
            await cases.audit(tx, case.id, reporter.id, "reporter_added", now,
                              fields=sorted(changes) + (["attachments"] if files else []))
            if not final:
                await self._arm_quiet(tx, case, now)
        if final:
            await self._send_additions(tx, case, now)
            return [alerts.additions_received(case)]
        return []

    async def _arm_quiet(self, tx: Tx, case: Case, now: datetime) -> None:
        """A reporter may stop answering at any moment (they ran to help the child): if no
        answer comes for REPORTER_QUIET, what they said so far goes to the team then."""
        added, _, _ = await self._additions_so_far(tx, case.id)
        acknowledge = await deadlines.deadline(tx, case.id, "acknowledge")
        if acknowledge is not None:
            await deadlines.arm_timer(tx, acknowledge.id, QUIET_TIMER, added,
                                      now + REPORTER_QUIET, acknowledge.version)

    async def reporter_went_quiet(self, tx: Tx, timer: Timer, now: datetime) -> None:
        """The quiet timer of an emergency's reporter: no later answer came since it was
        armed (its seq counts the answers), so the team gets what was added."""
        dl = await deadlines.deadline_by_id(tx, timer.deadline_id)
        case = await cases.case_by_id(tx, dl.case_id) if dl is not None else None
        if case is None:
            return
        added, _, _ = await self._additions_so_far(tx, case.id)
        if added == timer.seq:
            await self._send_additions(tx, case, now)

    async def _additions_so_far(self, tx: Tx, case_id: int) -> tuple[int, int, int]:
        """(answers added, of them already sent to the team, attachments already sent)."""
        events = await cases.case_events(tx, case_id)
        added = sum(e.action == "reporter_added" for e in events)
        sent = [e.detail for e in events if e.action == "additions_sent"]
        return (added, int(sent[-1].get("added", 0)) if sent else 0,
                int(sent[-1].get("files", 0)) if sent else 0)

    async def _send_additions(self, tx: Tx, case: Case, now: datetime) -> None:
        """What the reporter added since the team last heard, in one message each (and the
        photos not sent before); nothing when there is nothing new or the case is closed."""
        added, sent, files_sent = await self._additions_so_far(tx, case.id)
        if case.closed or added <= sent:
            return
        attached = await cases.attachments_of(tx, case.id)
        details = alerts.case_details(case, self._commune(case).place(case),
                                      await deadlines.deadlines_of(tx, case.id), attached)
        protect = self._commune(case).config.privacy.protect_content
        reply = alerts.additions(case, details, protect=protect)
        media = alerts.media_of(attached[files_sent:])
        ids = [m.person_id for m in await cases.team_of(tx, case.id) if m.access == Access.TEAM]
        found = await people.people_by_id(tx, ids)
        for pid in ids:
            if (person := found.get(pid)) is None:
                continue
            key = f"additions:{case.id}:n{added}:p{pid}"
            message = await self.outbox.send(tx, person, reply, now, kind=Kind.ADDITIONS,
                                             case_id=case.id, dedupe_key=key, fresh_key=True)
            await self.outbox.send_media(tx, person, message, media,
                                         alerts.media_caption(case, protect=protect), now, key)
        await cases.audit(tx, case.id, None, "additions_sent", now, recipients=ids,
                          added=added, files=len(attached))

    async def _details(self, tx: Tx, case: Case) -> tuple[Text, ...]:
        return alerts.case_details(case, self._commune(case).place(case),
                                   await deadlines.deadlines_of(tx, case.id),
                                   await cases.attachments_of(tx, case.id))

    # ---- who may act -----------------------------------------------------------------------

    async def access_of(self, tx: Tx, case: Case, person: Person) -> str | None:
        """How the person stands to the case: on its team (the province's staff are, for
        every commune's case), told as the village's collaborator, or (None) not at all."""
        member = await cases.team_member(tx, case.id, person.id)
        if member is not None:
            return member.access
        return Access.TEAM if oversees_communes(person, self.communes.province_id) else None

    async def acting(self, tx: Tx, person: Person, commune_id: int) -> Person:
        """Who acts on a case of this commune: the person's role there. Someone with roles
        in several communes acts as the one of the case's commune, so each action is
        checked against that commune; someone with none there acts as themselves (and
        is refused)."""
        if person.commune_id == commune_id or person.commune_id == self.communes.province_id:
            return person
        rows = await people.rows_of_account(tx, person.account)
        return next((row for row in rows if row.commune_id == commune_id), person)

    async def working_rows(self, tx: Tx, person: Person) -> list[Person]:
        """The person's rows that work cases, one per commune where they do."""
        return [row for row in await people.rows_of_account(tx, person.account)
                if works_cases(row.role)]

    async def case_in_commune(self, tx: Tx, case_id: int | None) -> Case | None:
        """The case a button names, if it is one of this commune's."""
        case = await cases.case_by_id(tx, case_id) if case_id else None
        if case is None or self.communes.get(case.commune_id) is None:
            return None
        return case

    # ---- actions ---------------------------------------------------------------------------

    async def acknowledge(self, tx: Tx, case: Case, actor: Person, now: datetime) -> list[Reply]:
        if case.closed:
            return [say("case.already_closed", code=case.code)]
        if not await cases.claim_case(tx, case.id, actor.id, now):
            case = await cases.case_by_id(tx, case.id) or case
            holder = await people.person(tx, case.assignee_id) if case.assignee_id else None
            if holder is not None and holder.id == actor.id:
                return [say("case.you_have_it", code=case.code)]
            return [say("case.already_taken", code=case.code,
                        name=holder.name if holder else "?")]
        case = await cases.case_by_id(tx, case.id) or case
        await self.escalation.meet(tx, case.id, "acknowledge", now)
        await self.escalation.remind_holder(tx, case, now)
        await cases.audit(tx, case.id, actor.id, "acknowledged", now)
        # The rest of the team keeps its way in to the case through this notice (the
        # officer still assesses a case the police took); the old alert copies go quiet.
        notice = Reply((Text("case.taken_by", {"code": case.code, "name": actor.name}),),
                       alerts.action_choices(case.id, alerts.FOLLOW_UP))
        await self._tell_team(tx, case, notice, now, f"ack:{case.id}", skip=actor.id)
        await self._retire_alerts(tx, case, actor, now)
        await self._tell_reporter(tx, case, say("reporter.being_handled", code=case.code), now,
                                  f"ack-reporter:{case.id}")
        return [Reply((Text("case.you_took", {"code": case.code}),),
                      alerts.action_choices(case.id, alerts.FOLLOW_UP))]

    async def take_from_group(self, tx: Tx, case: Case, person: Person,
                              now: datetime) -> tuple[list[Reply], Text]:
        """The alert group's take button: only officers and police known to us may take a
        case there; everyone else gets a polite word on the button and nothing changes.
        Returns what the person is sent, and the short word shown on the button."""
        if not may_take_from_group(person.role):
            await cases.audit(tx, case.id, person.id, "refused", now, button="group-ack")
            return [], Text("group.not_allowed")
        # Taking a case from the group puts the officer on its team.
        await cases.join_team(tx, case.id, person.id, case.escalation_level, Access.TEAM, now)
        await cases.audit(tx, case.id, person.id, "viewed", now, button="group-ack")
        replies = await self.acknowledge(tx, case, person, now)
        fresh = await cases.case_by_id(tx, case.id)
        taken = fresh is not None and fresh.assignee_id == person.id
        return replies, Text("group.you_took" if taken else "group.already_taken",
                             {"code": case.code})

    async def team_action(self, tx: Tx, person: Person, action: TeamAction,
                          now: datetime) -> list[Reply]:
        """A case-team flow's result, checked again against the database."""
        case = await self.case_in_commune(tx, action.case_id)
        if case is None:
            return [say("error.stale_button")]
        person = await self.acting(tx, person, case.commune_id)
        if not may_act_on_case(person, case, await self.access_of(tx, case, person)):
            return [say("case.not_allowed")]
        if case.closed:
            return [say("case.already_closed", code=case.code)]
        match action:
            case AskReporter(question=question):
                return await self.ask_reporter(tx, case, person, question, now)
            case HandOver(to_person_id=to_person_id):
                return await self.hand_over(tx, case, person, to_person_id, now)
            case Assess():
                return await self.assess(tx, case, person, action, now)
            case RecordProgress(milestone=milestone):
                return await self.progress(tx, case, person, milestone, now)
            case CloseCase(outcome=outcome, note=closing_note):
                return await self.close(tx, case, person, outcome, now, closing_note)

    async def may_open_flow(self, tx: Tx, case: Case, person: Person, action: str,
                            now: datetime) -> Reply | None:
        """May this person press this button of the case? None when they may (audited as a
        view); otherwise the kind refusal (audited as refused)."""
        if action == "reply":
            if is_reporter(person, case):
                return None
            await cases.audit(tx, case.id, person.id, "refused", now, button="reply")
            return say("case.not_allowed")
        access = await self.access_of(tx, case, person)
        allowed = (may_acknowledge(person, case, access) if action == "ack"
                   else may_act_on_case(person, case, access))
        if not allowed:
            await cases.audit(tx, case.id, person.id, "refused", now, button=action[:16])
            return say("case.not_allowed")
        await cases.audit(tx, case.id, person.id, "viewed", now, button=action[:16])
        return None

    async def ask_reporter(self, tx: Tx, case: Case, actor: Person, question: str,
                           now: datetime) -> list[Reply]:
        reporter = await people.person(tx, case.reporter_id) if case.reporter_id else None
        if reporter is None:
            return [say("case.no_reporter", code=case.code)]
        await self.outbox.send(tx, reporter, Reply(
            (Text("reporter.question", {"code": case.code, "question": question}),),
            (Choice(f"case:reply:{case.id}", Text("case.button.reply")),)), now,
            kind=Kind.QUESTION, case_id=case.id)
        await cases.audit(tx, case.id, actor.id, "question_asked", now)
        return [Reply((Text("case.question_sent", {"code": case.code}),),
                      alerts.action_choices(case.id, self._next_actions(case)))]

    @staticmethod
    def _next_actions(case: Case) -> tuple[str, ...]:
        """The buttons after a question went or came back: take it while nobody has."""
        return ("ack", "ask") if case.assignee_id is None else alerts.FOLLOW_UP

    async def reporter_answer(self, tx: Tx, case_id: int, reporter: Person, answer: str,
                              now: datetime) -> list[Reply]:
        case = await self.case_in_commune(tx, case_id)
        if case is None:
            return [say("error.stale_button")]
        if not is_reporter(reporter, case):
            return [say("case.not_allowed")]
        # The answer goes to whoever asked since the last answer, and to the case holder.
        history = await cases.case_events(tx, case.id)
        answered = [n for n, e in enumerate(history) if e.action == "reporter_answered"]
        since = answered[-1] + 1 if answered else 0
        askers = [e.actor_id for e in history[since:]
                  if e.action == "question_asked" and e.actor_id is not None]
        ids = list(dict.fromkeys([*askers, *([case.assignee_id] if case.assignee_id else [])]))
        reply = Reply((Text("case.reporter_answered", {"code": case.code, "answer": answer}),),
                      alerts.action_choices(case.id, self._next_actions(case)))
        found = await people.people_by_id(tx, ids)
        for pid in ids:
            if (person := found.get(pid)) is not None:
                await self.outbox.send(tx, person, reply, now, kind=Kind.TEAM_NOTICE,
                                       case_id=case.id)
        if not found:  # nobody to give it to by name: an answer is never dropped
            await self._tell_team(tx, case, reply, now, None)
        await cases.audit(tx, case.id, reporter.id, "reporter_answered", now,
                          told=[pid for pid in ids if pid in found])
        return [say("reporter.answer_sent", code=case.code)]

    async def hand_over(self, tx: Tx, case: Case, actor: Person, to_person_id: int,
                        now: datetime) -> list[Reply]:
        target = await people.person(tx, to_person_id)
        if target is None or not may_receive_handover(target, case.commune_id):
            return [say("error.stale_button")]
        was_new = case.status == Status.NEW
        case = await cases.hand_over(tx, case, target.id, now)
        if was_new:
            await self.escalation.meet(tx, case.id, "acknowledge", now)
        await cases.join_team(tx, case.id, target.id, case.escalation_level, Access.TEAM, now)
        reply = Reply((Text("case.handed_to_you", {"code": case.code, "name": actor.name}),
                       *await self._details(tx, case)),
                      alerts.action_choices(case.id, alerts.FOLLOW_UP),
                      # The case's details, as on its card.
                      protect=self._commune(case).config.privacy.protect_content)
        await self.outbox.send(tx, target, reply, now, kind=Kind.HANDOVER, case_id=case.id)
        await cases.audit(tx, case.id, actor.id, "handed_over", now, to=target.id)
        return [say("case.handed_over", code=case.code, name=target.name)]

    async def assess(self, tx: Tx, case: Case, actor: Person, found: Assess,
                     now: datetime) -> list[Reply]:
        untaken = case.assignee_id is None
        case = await cases.record_assessment(tx, case, actor.id, risk=found.risk,
                                             measures=found.measures or None,
                                             form=found.form, setting=found.setting, now=now)
        if untaken:
            await self.escalation.meet(tx, case.id, "acknowledge", now)
        await self.escalation.meet(tx, case.id, "initial_assessment", now)
        await cases.audit(tx, case.id, actor.id, "assessed", now, risk=case.risk,
                          form=case.confirmed_form, setting=case.setting)
        summary = Text("case.assessment_summary", {
            "risk": Text(f"risk.{case.risk}") if case.risk else Text("report.not_given"),
            "measures": case.measures or Text("assess.measures.none"),
            "form": Text(f"case_type.{case.confirmed_form}") if case.confirmed_form
            else Text("report.not_given"),
            "setting": Text(f"setting.{case.setting}") if case.setting
            else Text("report.not_given")})
        return [Reply((Text("case.assessment_saved", {"code": case.code}), summary),
                      alerts.action_choices(case.id, ("progress", "close")))]

    async def progress(self, tx: Tx, case: Case, actor: Person, milestone: str,
                       now: datetime) -> list[Reply]:
        step = MILESTONE_STEPS.get(milestone)
        if step is not None:
            await self.escalation.meet(tx, case.id, step, now)
        if step == "plan_drafted":
            await self.escalation.arm(tx, case, "plan_approved", now)
        if step == "review":
            await self.escalation.arm(tx, case, "review", now)
        await cases.record_progress(tx, case.id)
        await cases.audit(tx, case.id, actor.id, "progress", now, milestone=milestone)
        return [Reply((Text("case.progress_saved", {"code": case.code,
                                                    "milestone": Text(f"milestone.{milestone}")}),),
                      alerts.action_choices(case.id, alerts.FOLLOW_UP))]

    async def close(self, tx: Tx, case: Case, actor: Person, outcome: str, now: datetime,
                    note: str = "") -> list[Reply]:
        if await self._close_needs_chairman(tx, case, actor):
            return await self._ask_chairman(tx, case, actor, outcome, note, now)
        closed = await cases.close_case(tx, case.id, outcome, now, note or None)
        if closed is None:
            return [say("case.already_closed", code=case.code)]
        await cases.audit(tx, case.id, actor.id, "closed", now, outcome=outcome)
        notice = say("case.closed_by", code=case.code, name=actor.name,
                     outcome=Text(f"outcome.{outcome}"))
        await self._tell_team(tx, closed, notice, now, f"closed:{case.id}", skip=actor.id)
        await self._tell_reporter(tx, closed, say("reporter.closed", code=case.code), now,
                                  f"closed-reporter:{case.id}")
        return [say("case.closed", code=case.code, outcome=Text(f"outcome.{outcome}"))]

    # ---- closing that waits for the chairman -----------------------------------------------

    async def _close_needs_chairman(self, tx: Tx, case: Case, actor: Person) -> bool:
        rule = self._commune(case).config.closing
        if not rule.high_risk_needs_chairman or case.risk != "high":
            return False
        plan_approved = any(e.action == "progress" and e.detail.get("milestone") ==
                            "plan_approved" for e in await cases.case_events(tx, case.id))
        return close_needs_chairman(
            rule.high_risk_needs_chairman, case.risk, plan_approved,
            is_chairman(actor, rule.chairman, case.commune_id))

    async def _chairmen(self, tx: Tx, case: Case) -> list[Person]:
        rule, commune_id = self._commune(case).config.closing, case.commune_id
        return [p for p in await self.communes.everyone(tx, commune_id)
                if is_chairman(p, rule.chairman, commune_id)]

    async def _ask_chairman(self, tx: Tx, case: Case, actor: Person, outcome: str, note: str,
                            now: datetime) -> list[Reply]:
        """The case stays open; the chairman gets the proposed outcome and note, to approve
        or refuse (a stored request, so it outlives a restart)."""
        request = await close_requests.add_request(tx, case.id, actor.id, outcome, note, now)
        chairmen = await self._chairmen(tx, case)
        if not chairmen:  # the commune file makes sure of one; the request is kept anyway
            log.warning("case %s: close request %s has no chairman to go to", case.id,
                        request.id)
        ask = Reply((Text("close.request", {
            "code": case.code, "name": actor.name, "outcome": Text(f"outcome.{outcome}"),
            "note": note or Text("report.not_given")}),),
            alerts.close_decision_choices(case.id, request.id))
        for chairman in chairmen:
            await self.outbox.send(tx, chairman, ask, now, kind=Kind.APPROVAL, case_id=case.id,
                                   dedupe_key=f"close-request:{request.id}:p{chairman.id}",
                                   fresh_key=True)
        await cases.audit(tx, case.id, actor.id, "close_requested", now, request=request.id,
                          outcome=outcome, chairman=[p.id for p in chairmen])
        return [Reply((Text("close.needs_chairman", {"code": case.code}),),
                      alerts.action_choices(case.id, alerts.FOLLOW_UP))]

    async def decide_close(self, tx: Tx, case: Case, person: Person, approve: bool,
                           request_id: int | None, now: datetime) -> list[Reply]:
        """The chairman's answer to a request to close: approved, the case closes with
        what was proposed; refused, it stays open. Only the chairman may answer, once."""
        button = "close_ok" if approve else "close_no"
        rule = self._commune(case).config.closing
        if not may_decide_close(person, rule.chairman, case.commune_id):
            await cases.audit(tx, case.id, person.id, "refused", now, button=button,
                              request=request_id)
            return [say("close.only_chairman")]
        request = await close_requests.request(tx, request_id) if request_id else None
        if request is None or request.case_id != case.id:
            return [say("error.stale_button")]
        if case.closed:
            return [say("case.already_closed", code=case.code)]
        decision = Decision.APPROVED if approve else Decision.REFUSED
        if not await close_requests.decide(tx, request.id, person.id, decision, now):
            return [say("error.stale_button")]
        closer = await people.person(tx, request.requested_by) if request.requested_by \
            else None
        way_on = (Choice("menu:cases", Text("menu.cases")),)
        outcome = Text(f"outcome.{request.outcome}")
        if not approve:
            await cases.audit(tx, case.id, person.id, "close_refused", now, request=request.id)
            refused = Text("close.refused", {"code": case.code, "name": person.name})
            await self._answered(tx, case, request.id, Reply((refused,)), now)
            if closer is not None:
                await self.outbox.send(
                    tx, closer, Reply((refused,), alerts.action_choices(case.id,
                                                                        alerts.FOLLOW_UP)),
                    now, kind=Kind.TEAM_NOTICE, case_id=case.id,
                    dedupe_key=f"close-refused:{request.id}")
            return [say("close.you_refused", code=case.code, choices=way_on)]
        closed = await cases.close_case(tx, case.id, request.outcome, now, request.note or None)
        if closed is None:
            return [say("case.already_closed", code=case.code)]
        await cases.audit(tx, case.id, person.id, "close_approved", now, request=request.id)
        await cases.audit(tx, case.id, person.id, "closed", now, outcome=request.outcome,
                          request=request.id)
        approved = say("close.approved", code=case.code, name=person.name, outcome=outcome)
        await self._answered(tx, case, request.id, approved, now)
        if closer is not None:
            await self.outbox.send(tx, closer, approved, now, kind=Kind.TEAM_NOTICE,
                                   case_id=case.id, dedupe_key=f"closed:{case.id}:p{closer.id}")
        await self._tell_team(tx, closed, approved, now, f"closed:{case.id}", skip=person.id)
        await self._tell_reporter(tx, closed, say("reporter.closed", code=case.code), now,
                                  f"closed-reporter:{case.id}")
        return [say("case.closed", code=case.code, outcome=outcome, choices=way_on)]

    async def _answered(self, tx: Tx, case: Case, request_id: int, reply: Reply,
                       now: datetime) -> None:
        """Each chairman's copy of the request now says how it was answered, without its
        buttons (a press on a copy that could not be edited is refused as stale anyway)."""
        for chairman in await self._chairmen(tx, case):
            sent = await outbox.by_key(tx, f"close-request:{request_id}:p{chairman.id}")
            if sent is not None:
                await self.outbox.edit(tx, sent, reply, now, sent.language)

    async def list_cases(self, tx: Tx, person: Person, mine: bool,
                         now: datetime) -> list[Reply]:
        """/cases and the staff menu: open cases (the person's own, or the commune's), each
        a line of code, urgency, village, holder and time left to its next deadline, and a
        button that opens its card. The details stay on the card, for its team only."""
        rows = await self.working_rows(tx, person)
        if not rows:
            return [say("case.not_allowed")]
        # The province's staff see every commune's cases; someone of several communes,
        # each commune's where they work.
        communes = ([c.commune_id for c in self.communes]
                    if oversees_communes(person, self.communes.province_id)
                    else [row.commune_id for row in rows])
        found = await cases.open_cases(tx, communes, LIST_MAX + 1,
                                       [row.id for row in rows] if mine else None)
        if not found:
            return [say("cases.none_mine")] if mine else [say("cases.none")]
        shown = found[:LIST_MAX]
        holders = await people.people_by_id(tx, [c.assignee_id for c in shown
                                                 if c.assignee_id is not None])
        lines: list[Text] = []
        for case in shown:
            waiting = [d for d in await deadlines.deadlines_of(tx, case.id) if d.met_at is None]
            due = min((d.due_at for d in waiting), default=None)
            left = (Text("cases.no_deadline") if due is None else
                    Text("cases.left", {"time": alerts.waited(due - now)}) if due > now
                    else Text("cases.overdue"))
            holder = holders.get(case.assignee_id) if case.assignee_id else None
            lines.append(Text("cases.line", {
                "code": case.code, "urgency": Text(f"urgency.{case.urgency}"),
                "place": self._commune(case).place(case, Text("cases.place_other")),
                "holder": holder.name if holder else Text("cases.nobody"), "left": left}))
        await cases.audit_all(tx, [(case.id, person.id, "listed", {}) for case in shown], now)
        title = Text("cases.title_mine" if mine else "cases.title", {"count": len(shown)})
        more = [Text("cases.more")] if len(found) > len(shown) else []
        choices = tuple(Choice(f"case:view:{c.id}", Text("cases.button", {"code": c.code}))
                        for c in shown)
        return [Reply((title, *lines, *more), choices)]

    async def card(self, tx: Tx, case: Case, person: Person, now: datetime) -> list[Reply]:
        """A case's card, for its team (the caller checked): its details and its actions."""
        actions = alerts.ACTIONS if case.assignee_id is None else alerts.FOLLOW_UP
        if case.closed:
            return [say("case.already_closed", code=case.code)]
        # The card shows the report's details: a read, whoever pressed what before.
        await cases.audit(tx, case.id, person.id, "card_opened", now)
        return [Reply((Text("case.card", {"code": case.code}), *await self._details(tx, case)),
                      alerts.action_choices(case.id, actions),
                      protect=self._commune(case).config.privacy.protect_content)]

    async def status(self, tx: Tx, code: str, viewer: Person, now: datetime) -> list[Reply]:
        case = await cases.case_by_code(tx, code)
        if case is not None:
            viewer = await self.acting(tx, viewer, case.commune_id)
        allowed = case is not None and may_see_status(viewer, case,
                                                      await self.access_of(tx, case, viewer))
        if case is None or not allowed:
            if case is not None:  # someone else's: asked after, never shown
                await cases.audit(tx, case.id, viewer.id, "refused", now, button="status")
            # The same answer whether the code does not exist or is someone else's.
            return [say("status.not_found", code=code)]
        await cases.audit(tx, case.id, viewer.id, "status_viewed", now)
        return [say(f"status.{coarse_status(case.status)}", code=case.code)]

    async def _retire_alerts(self, tx: Tx, case: Case, actor: Person, now: datetime) -> None:
        """Every copy of the alert now says who took the case and loses its buttons, so no
        stale copy invites a second person to act; the group's copy keeps no details. The
        team's copies are told apart (the taker by the answer, the rest by the notice): a
        channel that cannot edit sends nothing more for them."""
        details = await self._details(tx, case)
        for message in await outbox.case_alerts(tx, case.id):
            taken = Text("case.taken_by", {"code": case.code, "name": actor.name})
            group = bool(message.meta.get("group"))
            edited = Reply((taken,)) if group else Reply((taken, *details))
            await self.outbox.edit(tx, message, edited, now, message.language,
                                   meta=None if group else {TOLD_APART: True})

    # ---- telling people --------------------------------------------------------------------

    async def _tell_team(self, tx: Tx, case: Case, reply: Reply, now: datetime,
                         dedupe: str | None, skip: int | None = None,
                         only_assignee: bool = False) -> None:
        if only_assignee and case.assignee_id:
            ids = [case.assignee_id]
        else:
            ids = [m.person_id for m in await cases.team_of(tx, case.id)
                   if m.access == Access.TEAM]
        found = await people.people_by_id(tx, [pid for pid in ids if pid != skip])
        for pid in ids:
            person = found.get(pid)
            if person is not None:
                await self.outbox.send(tx, person, reply, now, kind=Kind.TEAM_NOTICE,
                                       case_id=case.id,
                                       dedupe_key=f"{dedupe}:p{pid}" if dedupe else None)

    async def _tell_reporter(self, tx: Tx, case: Case, reply: Reply, now: datetime,
                             dedupe: str) -> None:
        if case.reporter_id is None:
            return
        reporter = await people.person(tx, case.reporter_id)
        if reporter is not None and hears_as_reporter(reporter):
            await self.outbox.send(tx, reporter, reply, now, kind=Kind.REPORTER_NOTICE,
                                   case_id=case.id, dedupe_key=dedupe)
