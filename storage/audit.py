"""The audit trail's hash chain (storage layer): every row of `case_events` carries the hash
of the row before it in its commune, so a row edited, removed or slipped in later breaks
the chain from there on, and `verify` names the first row that does not match.

A row's hash is SHA-256 over a canonical JSON encoding of its commune, case, actor,
action, time and detail, and the previous row's hash (GENESIS for a commune's first row).
The row's id is left out: it is only known once the row is written, and the order of a
commune's rows is what `prev_hash` already pins down.

Rows asked for during a transaction are written together just before it commits
(`Tx.before_commit`): the commune's last hash is read once per transaction, not once per
row, and all of them go in one statement. On PostgreSQL several processes append at once:
before that read the transaction takes the commune's advisory lock (held until it ends),
so the next appender reads the tail only after this one committed and the chain stays one
line. Taken last, just before the commit, the lock is held for a moment and never while
the transaction waits for another lock. SQLite has one writer at a time anyway (BEGIN
IMMEDIATE, storage/db.py). The rows are not visible inside their own transaction until
`flush`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import select

from storage.db import Tx
from storage.models import Case, CaseEvent
from storage.sql import table

events = table(CaseEvent)
_cases = table(Case)
GENESIS: Final[str] = "0" * 64
# The first key of PostgreSQL's two-key advisory locks that guard the communes' chains
# (the second is the commune's id); storage/db.py's migration lock uses 727001 alone.
_CHAIN_LOCK: Final[int] = 727002


@dataclass(frozen=True)
class AuditRow:
    """One audit row to append: who did or was shown what, in which commune (and case;
    commune None: the case's). `detail` holds ids, kinds and counts only, never report
    text, names or phones."""

    commune_id: int | None
    actor_id: int | None
    action: str
    at: datetime
    detail: Mapping[str, Any] = field(default_factory=dict)
    case_id: int | None = None


def _utc(at: datetime) -> str:
    # SQLite hands naive datetimes back (UTC): the encoding must not depend on the backend.
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def row_hash(*, commune_id: int, case_id: int | None, actor_id: int | None, action: str,
             at: datetime, detail: Mapping[str, Any], prev_hash: str) -> str:
    """The row's hash: SHA-256 (hex) over its fields and the previous row's hash."""
    encoded = json.dumps([commune_id, case_id, actor_id, action, _utc(at), dict(detail),
                          prev_hash], sort_keys=True, separators=(",", ":"),
                         ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


async def record_all(tx: Tx, rows: Sequence[AuditRow]) -> None:
    """Append rows to their communes' chains, in this order, when the transaction commits
    (or at `flush`): the chain's lock is then held only from there to the commit, and is
    the last lock the transaction takes, so no other lock can wait on it in a circle."""
    if not rows:
        return
    if not tx.audit_pending:
        tx.before_commit(lambda: flush(tx))
    tx.audit_pending.extend(rows)


async def record(tx: Tx, *, commune_id: int, actor_id: int | None, action: str, at: datetime,
           detail: Mapping[str, Any] | None = None, case_id: int | None = None) -> None:
    """Append one audit row (a read or change not tied to a case when case_id is None)."""
    await record_all(tx, [AuditRow(commune_id, actor_id, action, at, detail or {}, case_id)])


def pending(tx: Tx) -> list[AuditRow]:
    """The rows this transaction asked for and has not written yet, in order."""
    return list(tx.audit_pending)


async def _communes_of(tx: Tx, rows: Sequence[AuditRow]) -> dict[int, int]:
    """The commune of each case of these rows, read once per transaction (storage/cases.py
    keeps those of the cases it read)."""
    known = tx.case_communes
    missing = list({r.case_id for r in rows if r.commune_id is None and r.case_id is not None
                    and r.case_id not in known})
    if missing:
        known.update((r[0], r[1]) for r in await tx.conn.execute(
            select(_cases.c.id, _cases.c.commune_id).where(_cases.c.id.in_(missing))))
    return known


async def _tail(tx: Tx, commune_id: int) -> str:
    """The commune's last hash, read once per transaction (after taking its lock)."""
    tails = tx.audit_tails
    if commune_id not in tails:
        if tx.dialect == "postgresql":
            await tx.conn.exec_driver_sql(
                f"SELECT pg_advisory_xact_lock({_CHAIN_LOCK}, {int(commune_id)})")
        last = (await tx.conn.execute(
            select(events.c.hash).where(events.c.commune_id == commune_id)
            .order_by(events.c.id.desc()).limit(1))).scalar()
        tails[commune_id] = last or GENESIS
    return tails[commune_id]


async def flush(tx: Tx) -> None:
    """Write the transaction's pending audit rows now, on their chains, in one statement
    (the commune's lock stays taken until the transaction ends)."""
    rows, tx.audit_pending = tx.audit_pending, []
    if not rows:
        return
    communes = await _communes_of(tx, rows)
    placed = [(r.commune_id if r.commune_id is not None else communes[_case_of(r)], r)
              for r in rows]
    # Locks taken in commune id order: two transactions auditing the same communes never
    # wait on each other in a circle.
    for commune_id in sorted({c for c, _ in placed}):
        await _tail(tx, commune_id)
    tails = tx.audit_tails
    values: list[dict[str, Any]] = []
    for commune_id, r in placed:
        prev = tails[commune_id]
        detail = dict(r.detail)
        digest = row_hash(commune_id=commune_id, case_id=r.case_id, actor_id=r.actor_id,
                          action=r.action, at=r.at, detail=detail, prev_hash=prev)
        values.append({"commune_id": commune_id, "case_id": r.case_id,
                       "actor_id": r.actor_id, "action": r.action, "at": r.at,
                       "detail": detail, "prev_hash": prev, "hash": digest})
        tails[commune_id] = digest
    await tx.conn.execute(events.insert(), values)


def _case_of(row: AuditRow) -> int:
    if row.case_id is None:
        raise ValueError("an audit row names its commune or its case")
    return row.case_id


# ---- checking the chain ---------------------------------------------------------------------


@dataclass(frozen=True)
class Broken:
    """The first row of a commune's chain that does not match."""

    row_id: int
    commune_id: int
    reason: str


@dataclass(frozen=True)
class Verified:
    """What `verify` found: rows checked per commune, and the first broken row (if any)."""

    rows: dict[int, int]
    broken: Broken | None

    @property
    def ok(self) -> bool:
        return self.broken is None


VERIFY_BATCH: Final[int] = 5000


class ChainCheck:
    """Checks rows fed in id order (every commune's chain at once), link by link."""

    def __init__(self) -> None:
        self.last: dict[int, str] = {}
        self.counts: dict[int, int] = {}
        self.broken: Broken | None = None

    def feed(self, rows: Iterable[Mapping[Any, Any]]) -> bool:
        """Check these rows; False once a row does not match (the rest is not looked at)."""
        for m in rows:
            commune_id = m["commune_id"]
            prev = self.last.get(commune_id, GENESIS)
            self.counts[commune_id] = self.counts.get(commune_id, 0) + 1
            if m["prev_hash"] != prev:
                self.broken = Broken(m["id"], commune_id, "prev_hash")
                return False
            if m["hash"] != row_hash(commune_id=commune_id, case_id=m["case_id"],
                                     actor_id=m["actor_id"], action=m["action"], at=m["at"],
                                     detail=m["detail"] or {}, prev_hash=prev):
                self.broken = Broken(m["id"], commune_id, "hash")
                return False
            self.last[commune_id] = m["hash"]
        return True


async def verify(tx: Tx) -> Verified:
    """Recompute every commune's chain, reading the table in batches of VERIFY_BATCH."""
    check = ChainCheck()
    after = 0
    while True:
        batch = list((await tx.conn.execute(
            select(events.c.id, events.c.commune_id, events.c.case_id, events.c.actor_id,
                   events.c.action, events.c.at, events.c.detail, events.c.prev_hash,
                   events.c.hash)
            .where(events.c.id > after).order_by(events.c.id).limit(VERIFY_BATCH))).mappings())
        if not batch or not check.feed(batch):
            break
        after = batch[-1]["id"]
    return Verified(check.counts, check.broken)
