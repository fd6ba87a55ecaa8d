"""A closed case's free text, purged once the commune's period after the close has passed
(storage layer): what people wrote about a child (the description, the child's name, the
assessment's measures, the closing note, a close request's note), the reporter's phone,
and the references of the photos and voice notes sent. The structured fields (types,
urgency, village, age band, sex, outcome, times...) stay, so the commune's statistics of
any period come out the same before and after.

Each function blanks a bounded batch in one statement and returns how many rows it
changed; a row once blanked no longer matches, so running again changes nothing, and
processes running at once skip each other's rows (storage.sql.update_batch).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select

from bot.domain.cases import Status
from storage.db import Tx
from storage.models import Attachment, Case, CloseRequest
from storage.sql import table, update_batch

cases = table(Case)
attachments = table(Attachment)
requests = table(CloseRequest)
# Set to NULL: the case's free text and the reporter's contact.
CASE_TEXT = ("description", "child_name", "reporter_phone", "measures", "closing_note")


def _closed_before(commune_ids: Collection[int], closed_before: datetime) -> Any:
    # Closed cases by (status, closed_at) (ix_cases_closed), not every case of the
    # communes: a province has a hundred thousand open ones.
    return and_(cases.c.status == Status.CLOSED.value, cases.c.closed_at < closed_before,
                cases.c.commune_id.in_(list(commune_ids)))


def _of_cases_closed_before(case_id: Any, commune_ids: Collection[int],
                            closed_before: datetime) -> Any:
    return case_id.in_(select(cases.c.id).where(_closed_before(commune_ids, closed_before))
                       .correlate(None))


async def _per_commune(tx: Tx, ids: Sequence[Any], table_: Any) -> dict[int, int]:
    """How many of these rows of `table_` (cases, or rows of a case) each commune has."""
    if not ids:
        return {}
    commune = cases.c.commune_id
    if table_ is cases:
        query = select(commune, func.count()).where(cases.c.id.in_(list(ids)))
    else:
        query = (select(commune, func.count())
                 .select_from(table_.join(cases, cases.c.id == table_.c.case_id))
                 .where(table_.c.id.in_(list(ids))))
    return {int(c): int(n) for c, n in await tx.conn.execute(query.group_by(commune))}


async def purge_cases(tx: Tx, commune_ids: Collection[int], closed_before: datetime,
                      limit: int) -> dict[int, int]:
    """Blank the free text of up to `limit` of these communes' cases closed before
    `closed_before` (communes that keep it equally long), those closed first first; how
    many per commune."""
    return await _per_commune(tx, await update_batch(
        tx, cases, {**dict.fromkeys(CASE_TEXT), "version": cases.c.version + 1},
        and_(_closed_before(commune_ids, closed_before),
             or_(*(cases.c[name].is_not(None) for name in CASE_TEXT))),
        (cases.c.closed_at, cases.c.id), limit), cases)


async def purge_attachments(tx: Tx, commune_ids: Collection[int], closed_before: datetime,
                            limit: int) -> dict[int, int]:
    """Blank the file references of up to `limit` attachments of those cases (the row
    stays: a case had so many photos); how many per commune."""
    return await _per_commune(tx, await update_batch(
        tx, attachments, {"file_ref": ""},
        and_(_of_cases_closed_before(attachments.c.case_id, commune_ids, closed_before),
             attachments.c.file_ref != ""),
        (attachments.c.id,), limit), attachments)


async def purge_close_notes(tx: Tx, commune_ids: Collection[int], closed_before: datetime,
                            limit: int) -> dict[int, int]:
    """Blank the notes of up to `limit` close requests of those cases (who asked, the
    outcome proposed and the decision stay); how many per commune."""
    return await _per_commune(tx, await update_batch(
        tx, requests, {"note": ""},
        and_(_of_cases_closed_before(requests.c.case_id, commune_ids, closed_before),
             requests.c.note != ""),
        (requests.c.id,), limit), requests)
