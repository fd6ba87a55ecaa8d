"""Case lifecycle: open a report, acknowledge, ask, hand over, assess, progress, close,
status by code. Each function runs inside the caller's transaction and queues what must
be sent in the outbox; every read and change of a case is audited."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import alerts
from bot.domain.cases import MILESTONE_STEPS, coarse_status
from bot.domain.local_time import LOCAL_TZ
from bot.domain.messages import Choice, Reply, Text, say
from bot.domain.permissions import (
    hears_as_reporter,
    is_reporter,
    may_receive_handover,
    on_case_team,
    works_cases,
)
from bot.domain.routing import first_recipients, is_police_case, triage, village_collaborators
from bot.services.directory import Directory
from bot.services.escalation import Escalation
from bot.services.outbox import enqueue, enqueue_edit, enqueue_media
from storage import repo
from storage.models import Attachment, Case, CaseRecipient, Person

log = logging.getLogger(__name__)



class CaseService:
    def __init__(self, directory: Directory, escalation: Escalation) -> None:
        self.directory = directory
        self.escalation = escalation

    # ---- opening ---------------------------------------------------------------------------

    async def open_case(self, s: AsyncSession, reporter: Person, channel: str,
                        data: Mapping[str, Any], now: datetime) -> Case:
        cfg = self.directory.config
        types = [t for t in data.get("types", ()) if t] or ["other"]
        age_band = data.get("age_band") or "unknown"
        urgency = triage(data.get("danger", "unsure"), types, age_band)
        year = now.astimezone(LOCAL_TZ).year
        seq = await repo.next_case_seq(s, self.directory.commune_id, year)
        village_id = self.directory.village_ids.get(data.get("village") or "")
        anonymous = bool(data.get("anonymous", True))
        case = await repo.add(s, Case(
            commune_id=self.directory.commune_id, code=f"{cfg.code_prefix}-{year}-{seq:04d}",
            types=",".join(types), urgency=urgency, danger=data.get("danger", "unsure"),
            police_case=is_police_case(cfg, types, urgency), status="new",
            village_id=village_id, location_text=data.get("location_text"),
            latitude=data.get("latitude"), longitude=data.get("longitude"),
            age_band=age_band, sex=data.get("sex") or "unknown",
            child_name=data.get("child_name"), child_count=int(data.get("child_count") or 1),
            description=data.get("description"), reporter_id=reporter.id,
            reporter_anonymous=anonymous, reporter_phone=None if anonymous else data.get("phone"),
            escalation_level=1, created_at=now, version=1,
        ))
        files = [Attachment(case_id=case.id, kind="photo", channel=channel, file_ref=ref,
                            created_at=now) for ref in data.get("photos", ())]
        if data.get("voice_ref"):
            files.append(Attachment(case_id=case.id, kind="voice", channel=channel,
                                    file_ref=data["voice_ref"], created_at=now))
        s.add_all(files)
        media = alerts.media_of(files)
        await repo.audit(s, case.id, reporter.id, "opened", now, urgency=urgency,
                         anonymous=anonymous)
        await self.escalation.arm_new_case(s, case)
        people = await repo.people_of(s, self.directory.commune_id)
        team = first_recipients(cfg, people, types, urgency)
        # A new case has no attachments other than these, and the deadlines just armed.
        details = alerts.case_details(case, self.directory.village_names.get(village_id or 0),
                                      await repo.deadlines(s, case.id),
                                      len(data.get("photos", ())) + bool(data.get("voice_ref")))
        reply = alerts.team_alert(case, details, 1)
        collaborators = [p for p in village_collaborators(people, village_id)
                         if p.id != reporter.id and p not in team
                         and cfg.tell_village_collaborator]
        identities = await repo.identities_for(s, [p.id for p in (*team, *collaborators)])
        unreached = 0
        for person in team:
            s.add(CaseRecipient(case_id=case.id, person_id=person.id, level=1, access="team",
                                alerted_at=now))
            row = await enqueue(s, person, reply, now, kind="alert", case_id=case.id,
                                dedupe_key=f"alert:{case.id}:p{person.id}", fresh_key=True,
                                identities=identities[person.id])
            unreached += row is None
            await enqueue_media(s, person, row, media, alerts.media_caption(case), now,
                                f"alert:{case.id}:p{person.id}")
        if unreached:
            log.warning("case %s: %s of the team have no channel; next level now", case.id,
                        unreached)
            await s.flush()  # the deadlines armed above
            await self.escalation.climb_at_once(s, case.id, 0, now)
        await repo.audit(s, case.id, None, "alerted", now, recipients=[p.id for p in team])
        group_id = self.directory.group_person_id
        group = await repo.person(s, group_id) if group_id else None
        if group is not None and self.directory.config.telegram_alert_group:
            await enqueue(s, group, alerts.group_alert(
                case, self.directory.village_names.get(village_id or 0)), now, kind="alert",
                case_id=case.id, dedupe_key=f"alert:{case.id}:group", fresh_key=True,
                to=("telegram", self.directory.config.telegram_alert_group),
                meta={"group": True})
        for person in collaborators:
            s.add(CaseRecipient(case_id=case.id, person_id=person.id, level=1,
                                access="village", alerted_at=now))
            await enqueue(s, person, alerts.village_notice(
                case, self.directory.village_names[village_id or 0]), now, kind="notice",
                case_id=case.id, dedupe_key=f"village:{case.id}:p{person.id}", fresh_key=True,
                identities=identities[person.id])
        return case

    async def _details(self, s: AsyncSession, case: Case) -> tuple[Text, ...]:
        return alerts.case_details(case, self.directory.village_names.get(case.village_id or 0),
                                   await repo.deadlines(s, case.id),
                                   len(await repo.attachments(s, case.id)))

    def confirmation(self, case: Case) -> Reply:
        return Reply((Text("report.received", {"code": case.code}),
                      Text(f"report.next.{case.urgency}"), Text("report.hotline")),
                     phones=("111",))

    # ---- who may act -----------------------------------------------------------------------

    async def team_member(self, s: AsyncSession, case: Case, person: Person) -> bool:
        if not works_cases(person):
            return False
        r = await repo.recipient(s, case.id, person.id)
        return on_case_team(person, case, r.access if r is not None else None)

    # ---- actions ---------------------------------------------------------------------------

    async def acknowledge(self, s: AsyncSession, case: Case, actor: Person,
                          now: datetime) -> list[Reply]:
        if case.status == "closed":
            return [say("case.already_closed", code=case.code)]
        if not await repo.claim_case(s, case.id, actor.id, now):
            case = await repo.case_by_id(s, case.id) or case
            holder = await repo.person(s, case.assignee_id) if case.assignee_id else None
            if holder is not None and holder.id == actor.id:
                return [say("case.you_have_it", code=case.code)]
            return [say("case.already_taken", code=case.code,
                        name=holder.name if holder else "?")]
        case = await repo.case_by_id(s, case.id) or case
        await self.escalation.meet(s, case.id, "acknowledge", now)
        await repo.audit(s, case.id, actor.id, "acknowledged", now)
        # The rest of the team keeps its way in to the case through this notice (the
        # officer still assesses a case the police took); the old alert copies go quiet.
        notice = Reply((Text("case.taken_by", {"code": case.code, "name": actor.name}),),
                       alerts.action_choices(case.id, alerts.FOLLOW_UP))
        await self._tell_team(s, case, notice, now, f"ack:{case.id}", skip=actor.id)
        await self._retire_alerts(s, case, actor, now)
        await self._tell_reporter(s, case, say("reporter.being_handled", code=case.code), now,
                                  f"ack-reporter:{case.id}")
        return [Reply((Text("case.you_took", {"code": case.code}),),
                      alerts.action_choices(case.id, alerts.FOLLOW_UP))]

    async def ask_reporter(self, s: AsyncSession, case: Case, actor: Person, question: str,
                           now: datetime) -> list[Reply]:
        reporter = await repo.person(s, case.reporter_id) if case.reporter_id else None
        if reporter is None:
            return [say("case.no_reporter", code=case.code)]
        await enqueue(s, reporter, Reply(
            (Text("reporter.question", {"code": case.code, "question": question}),),
            (Choice(f"case:reply:{case.id}", Text("case.button.reply")),)), now,
            kind="question", case_id=case.id)
        await repo.audit(s, case.id, actor.id, "question_asked", now)
        return [say("case.question_sent", code=case.code)]

    async def reporter_answer(self, s: AsyncSession, case: Case, reporter: Person, answer: str,
                              now: datetime) -> list[Reply]:
        reply = say("case.reporter_answered", code=case.code, answer=answer)
        await self._tell_team(s, case, reply, now, None, only_assignee=True)
        await repo.audit(s, case.id, reporter.id, "reporter_answered", now)
        return [say("reporter.answer_sent", code=case.code)]

    async def hand_over(self, s: AsyncSession, case: Case, actor: Person, to_person_id: int,
                        now: datetime) -> list[Reply]:
        target = await repo.person(s, to_person_id)
        if target is None or not may_receive_handover(target, self.directory.commune_id):
            return [say("error.stale_button")]
        case.assignee_id = target.id
        if case.status == "new":
            case.status = "acknowledged"
            case.acknowledged_at = now
            await self.escalation.meet(s, case.id, "acknowledge", now)
        case.version += 1
        if await repo.recipient(s, case.id, target.id) is None:
            s.add(CaseRecipient(case_id=case.id, person_id=target.id,
                                level=case.escalation_level, access="team", alerted_at=now))
        reply = Reply((Text("case.handed_to_you", {"code": case.code, "name": actor.name}),
                       *await self._details(s, case)),
                      alerts.action_choices(case.id, alerts.FOLLOW_UP))
        await enqueue(s, target, reply, now, kind="handover", case_id=case.id)
        await repo.audit(s, case.id, actor.id, "handed_over", now, to=target.id)
        return [say("case.handed_over", code=case.code, name=target.name)]

    async def assess(self, s: AsyncSession, case: Case, actor: Person, data: Mapping[str, Any],
                     now: datetime) -> list[Reply]:
        case.risk = data.get("risk")
        case.measures = data.get("measures") or None
        case.confirmed_form = data.get("form")
        case.setting = data.get("value")
        case.assessed_at = now
        if case.assignee_id is None:
            case.assignee_id = actor.id
            case.acknowledged_at = now
            await self.escalation.meet(s, case.id, "acknowledge", now)
        if case.status != "closed":
            case.status = "assessed"
        case.version += 1
        await self.escalation.meet(s, case.id, "initial_assessment", now)
        await repo.audit(s, case.id, actor.id, "assessed", now, risk=case.risk,
                         form=case.confirmed_form, setting=case.setting)
        return [Reply((Text("case.assessment_saved", {"code": case.code}),),
                      alerts.action_choices(case.id, ("progress", "close")))]

    async def progress(self, s: AsyncSession, case: Case, actor: Person, milestone: str,
                       now: datetime) -> list[Reply]:
        step = MILESTONE_STEPS.get(milestone)
        if step is not None:
            await self.escalation.meet(s, case.id, step, now)
        if step == "plan_drafted":
            await self.escalation.arm(s, case, "plan_approved", now)
        if step == "review":
            await self.escalation.arm(s, case, "review", now)
        case.version += 1
        await repo.audit(s, case.id, actor.id, "progress", now, milestone=milestone)
        return [Reply((Text("case.progress_saved", {"code": case.code,
                                                    "milestone": Text(f"milestone.{milestone}")}),),
                      alerts.action_choices(case.id, alerts.FOLLOW_UP))]

    async def close(self, s: AsyncSession, case: Case, actor: Person, outcome: str,
                    now: datetime) -> list[Reply]:
        if case.status == "closed":
            return [say("case.already_closed", code=case.code)]
        case.status = "closed"
        case.outcome = outcome
        case.closed_at = now
        case.version += 1
        await repo.audit(s, case.id, actor.id, "closed", now, outcome=outcome)
        notice = say("case.closed_by", code=case.code, name=actor.name,
                     outcome=Text(f"outcome.{outcome}"))
        await self._tell_team(s, case, notice, now, f"closed:{case.id}", skip=actor.id)
        await self._tell_reporter(s, case, say("reporter.closed", code=case.code), now,
                                  f"closed-reporter:{case.id}")
        return [say("case.closed", code=case.code, outcome=Text(f"outcome.{outcome}"))]

    async def status(self, s: AsyncSession, code: str, viewer: Person,
                     now: datetime) -> list[Reply]:
        case = await repo.case_by_code(s, code)
        allowed = case is not None and (is_reporter(viewer, case)
                                        or await self.team_member(s, case, viewer))
        if case is None or not allowed:
            # The same answer whether the code does not exist or is someone else's.
            return [say("status.not_found", code=code)]
        await repo.audit(s, case.id, viewer.id, "status_viewed", now)
        return [say(f"status.{coarse_status(case.status)}", code=case.code)]

    async def _retire_alerts(self, s: AsyncSession, case: Case, actor: Person,
                             now: datetime) -> None:
        """Every copy of the alert now says who took the case and loses its buttons, so no
        stale copy invites a second person to act; the group's copy keeps no details."""
        details = await self._details(s, case)
        for row in await repo.case_alert_rows(s, case.id):
            taken = Text("case.taken_by", {"code": case.code, "name": actor.name})
            if row.payload.get("meta", {}).get("group"):
                edited = Reply((taken,))
            else:
                edited = Reply((taken, *details))
            await enqueue_edit(s, row, edited, now, row.payload.get("language", "vi"))

    # ---- telling people --------------------------------------------------------------------

    async def _tell_team(self, s: AsyncSession, case: Case, reply: Reply, now: datetime,
                         dedupe: str | None, skip: int | None = None,
                         only_assignee: bool = False) -> None:
        ids: list[int] = []
        if only_assignee and case.assignee_id:
            ids = [case.assignee_id]
        else:
            ids = [r.person_id for r in await repo.recipients(s, case.id) if r.access == "team"]
        for pid in ids:
            if pid == skip:
                continue
            person = await repo.person(s, pid)
            if person is not None:
                await enqueue(s, person, reply, now, kind="team_notice", case_id=case.id,
                              dedupe_key=f"{dedupe}:p{pid}" if dedupe else None)

    async def _tell_reporter(self, s: AsyncSession, case: Case, reply: Reply, now: datetime,
                             dedupe: str) -> None:
        if case.reporter_id is None:
            return
        reporter = await repo.person(s, case.reporter_id)
        if reporter is not None and hears_as_reporter(reporter):
            await enqueue(s, reporter, reply, now, kind="reporter_notice", case_id=case.id,
                          dedupe_key=dedupe)
