"""Cases, their codes, teams, attachments and audit trail (storage layer).

Functions take the caller's transaction and never commit; they return domain dataclasses.
Every change of a case moves its version on.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy import case as sql_case

from bot.domain.cases import Access, Attachment, Case, NewCase, Status, TeamMember
from bot.domain.top_digest import WaitingCase
from storage import audit as audit_chain
from storage.audit import AuditRow
from storage.db import Tx
from storage.models import Attachment as AttachmentRow
from storage.models import Case as CaseRow
from storage.models import CaseCounter, CaseDeadline, CaseEvent, CaseRecipient
from storage.sql import insert, rowcount, table

cases = table(CaseRow)
counters = table(CaseCounter)
team = table(CaseRecipient)
attachments = table(AttachmentRow)
events = table(CaseEvent)
deadlines = table(CaseDeadline)
CASE_COLUMNS = tuple(cases.c)


def to_case(m: Mapping[Any, Any]) -> Case:
    values = {c.name: m[c.name] for c in CASE_COLUMNS}
    values["types"] = tuple(t for t in (values["types"] or "").split(",") if t)
    return Case(**values)


def _seen(tx: Tx, m: Mapping[Any, Any]) -> Case:
    """A case read in this transaction; its commune is kept for auditing it (a case never
    moves), so an audit row of a case already read costs no read of its own."""
    case = to_case(m)
    tx.case_communes[case.id] = case.commune_id
    return case


def _team_member(m: Mapping[Any, Any]) -> TeamMember:
    return TeamMember(case_id=m["case_id"], person_id=m["person_id"], level=m["level"],
                      access=m["access"], alerted_at=m["alerted_at"])


# ---- opening --------------------------------------------------------------------------------


async def next_case_seq(tx: Tx, commune_id: int, year: int) -> int:
    """The next number of the commune's cases this year (safe between processes)."""
    stmt = insert(tx, counters).values(commune_id=commune_id, year=year, last_seq=1)
    stmt = stmt.on_conflict_do_update(index_elements=["commune_id", "year"],
                                      set_={"last_seq": counters.c.last_seq + 1})
    return int((await tx.conn.execute(stmt.returning(counters.c.last_seq))).scalar_one())


async def opened_by(tx: Tx, reporter_id: int, since: datetime) -> int:
    """How many cases this person reported since then."""
    return int(await tx.conn.scalar(select(func.count()).select_from(cases).where(
        cases.c.reporter_id == reporter_id, cases.c.created_at >= since)) or 0)


async def add_case(tx: Tx, new: NewCase) -> Case:
    values = asdict(new)
    values["types"] = ",".join(new.types)
    row = (await tx.conn.execute(cases.insert().values(
        **values, status=Status.NEW.value, escalation_level=1, version=1,
    ).returning(*CASE_COLUMNS))).one()
    return _seen(tx, row._mapping)


async def case_by_id(tx: Tx, case_id: int) -> Case | None:
    row = (await tx.conn.execute(select(cases).where(cases.c.id == case_id))).first()
    return _seen(tx, row._mapping) if row else None


async def cases_by_id(tx: Tx, case_ids: Collection[int]) -> dict[int, Case]:
    if not case_ids:
        return {}
    rows = await tx.conn.execute(select(cases).where(cases.c.id.in_(list(case_ids))))
    return {c.id: c for c in (_seen(tx, r._mapping) for r in rows)}


async def case_by_code(tx: Tx, code: str) -> Case | None:
    row = (await tx.conn.execute(select(cases).where(cases.c.code == code))).first()
    return _seen(tx, row._mapping) if row else None


# ---- changes --------------------------------------------------------------------------------


async def _change(tx: Tx, case_id: int, **values: Any) -> Case:
    row = (await tx.conn.execute(
        update(cases).where(cases.c.id == case_id)
        .values(**values, version=cases.c.version + 1).returning(*CASE_COLUMNS))).one()
    return _seen(tx, row._mapping)


async def claim_case(tx: Tx, case_id: int, person_id: int, now: datetime) -> bool:
    """First press wins: assign only if nobody holds the case yet and it is open."""
    return rowcount(await tx.conn.execute(
        update(cases)
        .where(cases.c.id == case_id, cases.c.assignee_id.is_(None),
               cases.c.status != Status.CLOSED.value)
        .values(assignee_id=person_id, status=Status.ACKNOWLEDGED.value,
                acknowledged_at=now, version=cases.c.version + 1))) == 1


async def hand_over(tx: Tx, case: Case, to_person_id: int, now: datetime) -> Case:
    """Give the case to someone else; a case nobody had taken counts as taken now."""
    values: dict[str, Any] = {"assignee_id": to_person_id}
    if case.status == Status.NEW:
        values.update(status=Status.ACKNOWLEDGED.value, acknowledged_at=now)
    return await _change(tx, case.id, **values)


async def record_assessment(tx: Tx, case: Case, actor_id: int, *, risk: str | None,
                            measures: str | None, form: str | None, setting: str | None,
                            now: datetime) -> Case:
    """The first assessment's findings; who assesses an untaken case takes it."""
    values: dict[str, Any] = {"risk": risk, "measures": measures, "confirmed_form": form,
                              "setting": setting, "assessed_at": now}
    if case.assignee_id is None:
        values.update(assignee_id=actor_id, acknowledged_at=now)
    if case.status != Status.CLOSED:
        values["status"] = Status.ASSESSED.value
    return await _change(tx, case.id, **values)


async def update_details(tx: Tx, case_id: int, **values: Any) -> Case:
    """What a reporter added to an open case (the child, the story, their contact)."""
    return await _change(tx, case_id, **values)


async def record_progress(tx: Tx, case_id: int) -> Case:
    """A milestone was recorded (its deadlines change elsewhere): the case moved on."""
    return await _change(tx, case_id)


async def close_case(tx: Tx, case_id: int, outcome: str, now: datetime,
                     note: str | None = None) -> Case | None:
    """Close an open case; None if it was closed already."""
    row = (await tx.conn.execute(
        update(cases).where(cases.c.id == case_id, cases.c.status != Status.CLOSED.value)
        .values(status=Status.CLOSED.value, outcome=outcome, closed_at=now, closing_note=note,
                version=cases.c.version + 1).returning(*CASE_COLUMNS))).first()
    return _seen(tx, row._mapping) if row else None


async def climb_all(tx: Tx, levels: Mapping[int, int]) -> dict[int, Case]:
    """Cases up the chain, case id -> level, in one statement per level."""
    by_level: dict[int, list[int]] = {}
    for case_id, level in levels.items():
        by_level.setdefault(level, []).append(case_id)
    found: dict[int, Case] = {}
    for level, ids in by_level.items():
        rows = await tx.conn.execute(
            update(cases).where(cases.c.id.in_(ids))
            .values(escalation_level=level, version=cases.c.version + 1)
            .returning(*CASE_COLUMNS))
        found.update((c.id, c) for c in (_seen(tx, r._mapping) for r in rows))
    return found


# ---- the team -------------------------------------------------------------------------------


async def join_team(tx: Tx, case_id: int, person_id: int, level: int, access: str,
                    now: datetime) -> bool:
    """Route the case to this person (at `level`, with `access`); False if it already
    was, which changes nothing."""
    stmt = insert(tx, team).values(case_id=case_id, person_id=person_id, level=level,
                                   access=str(access), alerted_at=now)
    result = await tx.conn.execute(stmt.on_conflict_do_nothing(
        index_elements=["case_id", "person_id"]).returning(team.c.id))
    return result.first() is not None


async def join_team_many(tx: Tx, case_id: int, person_ids: Sequence[int], level: int,
                         access: str, now: datetime) -> None:
    """A new case's recipients, in one statement (none can be there yet)."""
    if person_ids:
        await tx.conn.execute(team.insert(), [
            {"case_id": case_id, "person_id": pid, "level": level, "access": str(access),
             "alerted_at": now} for pid in person_ids])


async def join_teams(tx: Tx, members: Sequence[tuple[int, int, int]], access: str,
                     now: datetime) -> set[tuple[int, int]]:
    """Route cases to people, (case, person, level) each, as `join_team` does one by one:
    the (case, person) pairs new to their case; those told of it before are moved to the
    new level."""
    if not members:
        return set()
    rows = [{"case_id": c, "person_id": p, "level": lv, "access": str(access),
             "alerted_at": now} for c, p, lv in dict.fromkeys(members)]
    # executemany: one statement whatever the count, compiled once and cached.
    joined = {(r[0], r[1]) for r in await tx.conn.execute(
        insert(tx, team).on_conflict_do_nothing(index_elements=["case_id", "person_id"])
        .returning(team.c.case_id, team.c.person_id), rows)}
    moved = [{"c": r["case_id"], "p": r["person_id"], "lv": r["level"]} for r in rows
             if (r["case_id"], r["person_id"]) not in joined]
    if moved:
        await tx.conn.execute(update(team).where(team.c.case_id == bindparam("c"),
                                                 team.c.person_id == bindparam("p"))
                              .values(level=bindparam("lv"), access=str(access)), moved)
    return joined


async def team_member(tx: Tx, case_id: int, person_id: int) -> TeamMember | None:
    row = (await tx.conn.execute(select(team).where(team.c.case_id == case_id,
                                                    team.c.person_id == person_id))).first()
    return _team_member(row._mapping) if row else None


async def team_of(tx: Tx, case_id: int) -> list[TeamMember]:
    """Everyone the case was routed to, in the order they were told."""
    rows = await tx.conn.execute(select(team).where(team.c.case_id == case_id)
                                 .order_by(team.c.id))
    return [_team_member(r._mapping) for r in rows]


async def waiting_on(tx: Tx, person_id: int, level: int, now: datetime) -> list[WaitingCase]:
    """The open cases at escalation `level` (or above it, had the chain been shortened)
    with this person on their team there, that have a deadline passed and not met: each
    with the first such step, oldest case first."""
    rows = await tx.conn.execute(
        select(*CASE_COLUMNS, deadlines.c.step)
        .join(team, team.c.case_id == cases.c.id)
        .join(deadlines, deadlines.c.case_id == cases.c.id)
        .where(team.c.person_id == person_id, team.c.level >= level,
               team.c.access == Access.TEAM.value, cases.c.escalation_level >= level,
               cases.c.status != Status.CLOSED.value, deadlines.c.met_at.is_(None),
               deadlines.c.due_at <= now)
        .order_by(cases.c.created_at, cases.c.id, deadlines.c.due_at, deadlines.c.id))
    found: dict[int, WaitingCase] = {}
    for row in rows:
        case = _seen(tx, row._mapping)
        found.setdefault(case.id, WaitingCase(case, row._mapping["step"]))
    return list(found.values())


# ---- attachments ----------------------------------------------------------------------------


async def open_cases(tx: Tx, commune_ids: Sequence[int], limit: int,
                     person_ids: Sequence[int] | None = None) -> list[Case]:
    """The communes' cases not closed, emergencies first then the oldest; with
    `person_ids` (one person's rows in several communes), only those they hold or were
    routed to act on."""
    query = select(*CASE_COLUMNS).where(cases.c.commune_id.in_(list(commune_ids)),
                                        cases.c.status != Status.CLOSED.value)
    if person_ids is not None:
        routed = select(team.c.case_id).where(team.c.person_id.in_(list(person_ids)),
                                              team.c.access == Access.TEAM.value)
        query = query.where(cases.c.assignee_id.in_(list(person_ids))
                            | cases.c.id.in_(routed))
    # Emergencies first in the query itself, so the limit never cuts one off for an older
    # case that is not.
    first = sql_case((cases.c.urgency == "EMERGENCY", 0), else_=1)
    rows = await tx.conn.execute(query.order_by(first, cases.c.created_at, cases.c.id)
                                 .limit(limit))
    return [_seen(tx, r._mapping) for r in rows]


async def add_attachments(tx: Tx, case_id: int, files: Sequence[Attachment],
                          now: datetime) -> None:
    if files:
        await tx.conn.execute(attachments.insert(), [
            {"case_id": case_id, "kind": f.kind, "channel": f.channel, "file_ref": f.file_ref,
             "created_at": now} for f in files])


async def attachments_of_cases(tx: Tx, case_ids: Collection[int]
                               ) -> dict[int, list[Attachment]]:
    found: dict[int, list[Attachment]] = {case_id: [] for case_id in case_ids}
    if found:
        rows = await tx.conn.execute(select(attachments.c.case_id, attachments.c.kind,
                                            attachments.c.channel, attachments.c.file_ref)
                                     .where(attachments.c.case_id.in_(list(found)))
                                     .order_by(attachments.c.id))
        for r in rows:
            found[r[0]].append(Attachment(r[1], r[2], r[3]))
    return found


async def attachments_of(tx: Tx, case_id: int) -> list[Attachment]:
    rows = await tx.conn.execute(select(attachments.c.kind, attachments.c.channel,
                                        attachments.c.file_ref)
                                 .where(attachments.c.case_id == case_id)
                                 .order_by(attachments.c.id))
    return [Attachment(*r) for r in rows]


# ---- the audit trail ------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditEntry:
    """Who read or changed which case, when. Never holds report text."""

    case_id: int
    actor_id: int | None
    action: str
    at: datetime
    detail: Mapping[str, Any]


async def audit(tx: Tx, case_id: int, actor_id: int | None, action: str, now: datetime,
                **detail: Any) -> None:
    await audit_chain.record_all(tx, [AuditRow(None, actor_id, action, now, detail, case_id)])


async def audit_all(tx: Tx, entries: Sequence[tuple[int, int | None, str, Mapping[str, Any]]],
                    now: datetime) -> None:
    """Audit rows (case, actor, action, detail), in this order, each on its case's
    commune's chain (written when the transaction commits: storage/audit.py)."""
    await audit_chain.record_all(tx, [AuditRow(None, a, action, now, d, case_id=c)
                                      for c, a, action, d in entries])


async def case_events(tx: Tx, case_id: int) -> list[AuditEntry]:
    rows = await tx.conn.execute(select(events.c.case_id, events.c.actor_id, events.c.action,
                                        events.c.at, events.c.detail)
                                 .where(events.c.case_id == case_id).order_by(events.c.id))
    # Rows this transaction audited are written at its commit: they count already.
    pending = [AuditEntry(case_id, r.actor_id, r.action, r.at, r.detail)
               for r in audit_chain.pending(tx) if r.case_id == case_id]
    return [AuditEntry(*r) for r in rows] + pending
