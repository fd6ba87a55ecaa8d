"""What the case team, the village collaborator and the reporter are told (as Replies)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.cases import URGENCIES, Attachment, Case, Deadline
from bot.domain.messages import Choice, Media, Reply, Text
from bot.domain.top_digest import WaitingCase

ALERT_DESCRIPTION_MAX = 1500
# A new alert's buttons: no "close" before anyone took the case (closing is deliberate).
ACTIONS = ("ack", "ask", "handover", "assess", "progress")
FOLLOW_UP = ("assess", "progress", "ask", "handover", "close")
# Cases a digest lists one by one, each with its button; the rest are counted.
DIGEST_MAX = 10


def action_choices(case_id: int, actions: Sequence[str]) -> tuple[Choice, ...]:
    return tuple(Choice(f"case:{a}:{case_id}", Text(f"case.button.{a}")) for a in actions)


def close_decision_choices(case_id: int, request_id: int) -> tuple[Choice, ...]:
    """The chairman's answer to a request to close the case; the request's id makes the
    buttons of an older request stale (`case:close_ok:<case>:<request>`)."""
    return (Choice(f"case:close_ok:{case_id}:{request_id}", Text("close.approve")),
            Choice(f"case:close_no:{case_id}:{request_id}", Text("close.refuse")))


def place_of(case: Case, village_name: str | Text | None) -> str | Text:
    if village_name:
        return village_name
    if case.latitude is not None and case.longitude is not None:
        return Text("alert.place.map", {"lat": f"{case.latitude:.5f}",
                                        "lon": f"{case.longitude:.5f}"})
    return case.location_text or Text("report.not_given")


def case_details(case: Case, village_name: str | Text | None, deadlines: Sequence[Deadline],
                 attachments: Sequence[Attachment]) -> tuple[Text, ...]:
    attachment_count = len(attachments)
    told = case.description or ""
    if len(told) > ALERT_DESCRIPTION_MAX:
        told = told[:ALERT_DESCRIPTION_MAX] + "…"
    description: str | Text = told
    if not told:
        # An emergency is alerted before the reporter has told the story.
        description = (Text("report.voice_note") if any(a.kind == "voice" for a in attachments)
                       else Text("alert.no_description"))
    texts = [
        Text("alert.details", {
            "code": case.code,
            "urgency": Text(f"urgency.{case.urgency}"),
            "types": [Text(f"case_type.{t}") for t in case.types],
            "place": place_of(case, village_name),
            "age": Text(f"age.{case.age_band}"),
            "sex": Text(f"sex.{case.sex}"),
            "count": case.child_count,
            "name": case.child_name or Text("report.name.unknown"),
        }),
        Text("alert.description", {"description": description}),
    ]
    if attachment_count:
        texts.append(Text("alert.attachment") if attachment_count == 1
                     else Text("alert.attachments", {"count": attachment_count}))
    open_deadlines = [d for d in deadlines if d.met_at is None]
    if open_deadlines:
        texts.append(Text("alert.deadlines", {"lines": [
            Text("alert.deadline_line", {"step": Text(f"step.{d.step}"), "due": d.due_at})
            for d in open_deadlines[:3]]}))
    if case.reporter_anonymous:
        texts.append(Text("alert.reporter_anonymous"))
    else:
        texts.append(Text("alert.reporter_contact", {"phone": case.reporter_phone or "-"}))
    return tuple(texts)


@dataclass(frozen=True)
class Climb:
    """Why a case reached more people: the step it missed, how long it had waited for it,
    and who (name, role) was told now."""

    step: str
    waited: timedelta
    told: tuple[tuple[str, str], ...]


def team_alert(case: Case, details: tuple[Text, ...], climb: Climb | None = None, *,
               protect: bool = False) -> Reply:
    """A case's alert: new, or (climbed) saying in words of people, not levels, why more
    were told and who they are."""
    if climb is None:
        lead = Text("alert.new", {"code": case.code})
    else:
        # A name the commune file already gave a title ("Anh Dũng (Trưởng Công an xã)")
        # is shown as written; a bare one gets its role.
        told = [name if "(" in name else
                Text("alert.told_person", {"name": name, "role": Text(f"role.{role}")})
                for name, role in climb.told]
        params: dict[str, object] = {"code": case.code, "waited": waited(climb.waited),
                                     "people": told}
        if climb.step == "acknowledge":
            lead = Text("alert.nobody_took", params)
        else:
            lead = Text("alert.escalated", {**params, "step": Text(f"step.{climb.step}")})
    actions = ACTIONS if case.assignee_id is None else FOLLOW_UP
    return Reply((lead, *details), action_choices(case.id, actions), protect=protect)


def many_reports(case: Case, count: int) -> Reply:
    """One alert for a sender's reports past their hourly limit: how many there are now,
    the newest one's code, and the way to the list where each one is."""
    return Reply((Text("alert.many_reports", {"count": count, "code": case.code}),),
                 (Choice("menu:cases", Text("menu.cases")),))


def group_alert(case: Case, village_name: str | None, *, protect: bool = False) -> Reply:
    """The copy for the commune's alert group: enough to act on, without the child's name,
    the description or the reporter, which stay with the people the case is routed to."""
    return Reply((Text("alert.group", {
        "code": case.code,
        "urgency": Text(f"urgency.{case.urgency}"),
        "types": [Text(f"case_type.{t}") for t in case.types],
        "place": place_of(case, village_name),
        "age": Text(f"age.{case.age_band}"),
    }),), action_choices(case.id, ("ack",)), protect=protect)


def media_of(attachments: Sequence[Attachment]) -> tuple[Media, ...]:
    return tuple(Media(a.kind, a.channel, a.file_ref) for a in attachments)


def media_caption(case: Case, *, protect: bool = False) -> Reply:
    return Reply((Text("alert.media_caption", {"code": case.code}),), protect=protect)


def village_notice(case: Case, village_name: str) -> Reply:
    return Reply((Text("alert.village_notice", {"code": case.code, "village": village_name}),))


def reminder(case: Case, step: str, due: datetime) -> Reply:
    return Reply((Text("reminder.deadline", {"code": case.code, "step": Text(f"step.{step}"),
                                             "due": due}),),
                 action_choices(case.id, ("ack",) if case.assignee_id is None else FOLLOW_UP))



def waited(span: timedelta) -> Text:
    """How long something has waited, in the largest whole unit: 40 minutes, 5 hours,
    3 days (hours up to two days, so a night is not yet "1 day")."""
    minutes = max(0, int(span.total_seconds() // 60))
    if minutes < 60:
        return Text("waited.minute" if minutes == 1 else "waited.minutes", {"count": minutes})
    if minutes < 48 * 60:
        hours = minutes // 60
        return Text("waited.hour" if hours == 1 else "waited.hours", {"count": hours})
    return Text("waited.days", {"count": minutes // (24 * 60)})


def top_digest(waiting: Sequence[tuple[WaitingCase, str | None]], now: datetime) -> Reply:
    """The top of the chain's reminder of every case still waiting on it (with its
    village's name, if any): emergencies first, then the oldest; each listed case has a
    button to take it (or, taken but late, to hand it over); 111 is one tap away."""
    ordered = sorted(waiting, key=lambda w: (URGENCIES.index(w[0].case.urgency)
                                            if w[0].case.urgency in URGENCIES else 99,
                                            w[0].case.created_at, w[0].case.id))
    listed = ordered[:DIGEST_MAX]
    texts = [Text("digest.top", {"count": len(ordered)})]
    texts.extend(Text("digest.case", {
        "code": w.case.code, "urgency": Text(f"urgency.{w.case.urgency}"),
        "place": place_of(w.case, village), "waited": waited(now - w.case.created_at),
        "step": Text(f"step.{w.step}")}) for w, village in listed)
    if len(ordered) > len(listed):
        texts.append(Text("digest.more", {"count": len(ordered) - len(listed)}))
    texts.append(Text("digest.act"))
    choices = tuple(
        Choice(f"case:ack:{w.case.id}", Text("digest.button.ack", {"code": w.case.code}))
        if w.case.assignee_id is None else
        Choice(f"case:handover:{w.case.id}",
               Text("digest.button.handover", {"code": w.case.code}))
        for w, _ in listed)
    return Reply(tuple(texts), choices, phones=("111",))


def report_already_sent(case: Case) -> Reply:
    """Confirm pressed again: the report is not made twice; its code, and where to call."""
    return Reply((Text("report.already_sent", {"code": case.code}),), phones=("111",))


def emergency_alerted(case: Case) -> Reply:
    """The reporter of a child in danger, the moment the team was alerted: the code, call
    113 if they can, and a few more questions will help."""
    return Reply((Text("report.emergency.alerted", {"code": case.code}),),
                 phones=("113", "111"))


def additions(case: Case, details: tuple[Text, ...], *, protect: bool = False) -> Reply:
    """What an emergency's reporter added after the alert, in one message to the team."""
    actions = ACTIONS if case.assignee_id is None else FOLLOW_UP
    return Reply((Text("alert.additions", {"code": case.code}), *details),
                 action_choices(case.id, actions), protect=protect)


def additions_received(case: Case) -> Reply:
    """The reporter's last answer after an emergency: thanks, and the team has it."""
    return Reply((Text("report.additions.done", {"code": case.code}), Text("report.hotline")),
                 phones=("111",))


def report_received(case: Case) -> Reply:
    """The reporter's answer once their report is a case: its code, what happens next."""
    return Reply((Text("report.received", {"code": case.code}),
                  Text(f"report.next.{case.urgency}"), Text("report.hotline")),
                 phones=("111",))
