"""Queries behind period statistics (storage layer): the cases of some communes, counted.

The database counts: each breakdown is a GROUP BY per commune, so a province's year
(100,000 cases) comes back as a few thousand rows of counts, not as 100,000 cases; only
the times of the cases that have one come back a case at a time, for the medians and p90s,
which need every time. Everything is one statement (UNION ALL), so on PostgreSQL, whose
statements each see their own snapshot, a case written meanwhile is in every figure or in
none, and the breakdowns always add up to the same total.

SQLite sorts to group, and its sorts cost more than reading the cases once: there the
cases are read in one statement and counted here, a column at a time, into the same rows
(`_counted_here`). Portable SQL both ways (outer join, CASE, COALESCE, GROUP BY, UNION
ALL, range filters); on SQLite, a province's terms are written so that SQLite reads the
table in its own order (`_terms`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any, NamedTuple
from typing import cast as typed

from sqlalchemy import (
    DateTime,
    Integer,
    String,
    case,
    cast,
    func,
    literal_column,
    null,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.sql import Select, operators
from sqlalchemy.sql.expression import UnaryExpression

from storage.db import Tx
from storage.models import Case, Village

# Rows a chunk: small enough that a chunk's rows are gone before the garbage collector's
# next young-generation pass, so they are never promoted and never cause a full pass
# (with 5,000 a province's year took four full passes, 0.35 s; with 500, one).
CHUNK = 500
# SQLite keeps no statistics: it takes an index for any range or list (even only to
# group by commune), and reads the cases one by one in the index's order, not the
# table's. So several communes' cases (a province's) are read through the created_at
# index, never the commune_id one (which would read them all), and for a period at least
# LONG_PERIOD, through the table itself (a province's year: 0.23 s a breakdown through an
# index, 0.07 s reading the table). One commune's as SQLite chooses; PostgreSQL chooses
# by its own statistics.
LONG_PERIOD = timedelta(days=80)


class Part(IntEnum):
    """What a row of `case_counts` counts (its first column)."""

    FORM = 1  # first: the confirmed form ("" or None: none); second: the reported types
    PEOPLE = 2  # first, second, third: the child's sex, age band, setting
    HANDLING = 3  # first, second, third: urgency, status, outcome; level: escalation level
    PLACE = 4  # first: the village's name, else the place the reporter typed
    TIMES = 5  # one case: its created_at, acknowledged_at, assessed_at (n is 1)


class CountRow(NamedTuple):
    """`n` cases of a commune alike in what the part counts; no names, descriptions or
    phones. Times are in UTC, naive on SQLite (`_plain`)."""

    part: int
    commune_id: int
    first: str | None
    second: str | None
    third: str | None
    level: int | None
    n: int
    created_at: datetime | None
    acknowledged_at: datetime | None
    assessed_at: datetime | None


def _plain(column: Any) -> Any:
    """A time as the driver reads it, without storage.models' UTC conversion: naive UTC on
    SQLite, aware on PostgreSQL (statistics take both); three a case, a hundred thousand
    cases a province's year."""
    return type_coerce(column, DateTime(timezone=True))


def _none(kind: Any) -> Any:
    # Typed, so PostgreSQL can tell each column's type in every branch of the union.
    return cast(null(), kind)


def _part(part: Part, commune: Any, first: Any = None, second: Any = None, third: Any = None,
          level: Any = None, n: Any = None, times: tuple[Any, Any, Any] | None = None) -> Any:
    text, number, time = String(), Integer(), DateTime(timezone=True)
    columns = [
        literal_column(str(int(part)), Integer).label("part"),
        commune.label("commune_id"),
        (_none(text) if first is None else first).label("first"),
        (_none(text) if second is None else second).label("second"),
        (_none(text) if third is None else third).label("third"),
        (_none(number) if level is None else level).label("level"),
        (literal_column("1", Integer) if n is None else n).label("n"),
        *((_plain(_none(time)) if times is None else times[i]).label(name)
          for i, name in enumerate(("created_at", "acknowledged_at", "assessed_at"))),
    ]
    return select(*columns)


def _unindexed(column: Any) -> Any:
    """The column as SQLite's documented way of keeping a term from an index has it: a
    unary "+" (the same values, of the same type)."""
    return UnaryExpression(column, operator=operators.custom_op("+"), type_=column.type)


def _terms(dialect: str, commune_ids: Sequence[int], start: datetime,
           end: datetime) -> tuple[Any, Any]:
    """The commune and period terms of a statement over these communes and this period,
    and the commune column as the statement selects it."""
    commune: Any = Case.commune_id
    created: Any = Case.created_at
    if dialect == "sqlite" and len(commune_ids) > 1:
        commune = _unindexed(commune)
        if end - start >= LONG_PERIOD:
            created = _unindexed(created)
    return commune, (commune.in_(commune_ids), created >= start, created < end)


# A place the reporter typed stands in for a village the list did not have.
_PLACE = func.coalesce(Village.name, Case.location_text)
_TIMES = (_plain(Case.created_at), _plain(Case.acknowledged_at), _plain(Case.assessed_at))


def case_counts_statement(dialect: str, commune_ids: Sequence[int], start: datetime,
                          end: datetime) -> Select[Any]:
    """The statement `case_counts` runs on `dialect` ("sqlite", "postgresql")."""
    commune, terms = _terms(dialect, commune_ids, start, end)

    def of_period(stmt: Any) -> Any:
        return stmt.where(*terms)

    count = func.count()
    # Literal '' rather than a bound one: PostgreSQL matches a GROUP BY expression to the
    # selected one by its text, and two bound parameters are two different texts.
    empty = literal_column("''", String)
    unconfirmed = func.coalesce(Case.confirmed_form, empty) == empty
    reported = case((unconfirmed, Case.types), else_=None)
    place = _PLACE
    parts = [
        of_period(_part(Part.FORM, commune, Case.confirmed_form, reported, n=count))
        .group_by(commune, Case.confirmed_form, reported),
        of_period(_part(Part.PEOPLE, commune, Case.sex, Case.age_band, Case.setting,
                        n=count))
        .group_by(commune, Case.sex, Case.age_band, Case.setting),
        of_period(_part(Part.HANDLING, commune, Case.urgency, Case.status,
                        Case.outcome, Case.escalation_level, n=count))
        .group_by(commune, Case.urgency, Case.status, Case.outcome,
                  Case.escalation_level),
        of_period(_part(Part.PLACE, commune, place, n=count)
                  .select_from(Case).outerjoin(Village, Village.id == Case.village_id))
        .group_by(commune, place),
        of_period(_part(Part.TIMES, commune, times=_TIMES))
        .where((Case.acknowledged_at.is_not(None)) | (Case.assessed_at.is_not(None))),
    ]
    return union_all(*parts)  # type: ignore[return-value]


async def case_counts(tx: Tx, commune_ids: Sequence[int], start: datetime,
                      end: datetime) -> AsyncIterator[list[CountRow]]:
    """The communes' cases created in [start, end), counted (`Part`), in chunks of CHUNK
    rows: a commune's rows of each part, then each case that has a time, in no order."""
    if not commune_ids:
        return
    if tx.dialect == "sqlite":
        async for rows in _counted_here(tx, commune_ids, start, end):
            yield rows
        return
    stmt = case_counts_statement(tx.dialect, commune_ids, start, end).execution_options(
        yield_per=CHUNK)
    result = await tx.conn.stream(stmt)
    async for chunk in result.partitions(CHUNK):
        # The driver's rows have CountRow's fields by name and place (the statement's
        # labels): handed on as they are, 100,000 copies saved a province's year.
        yield typed("list[CountRow]", chunk)


async def _counted_here(tx: Tx, commune_ids: Sequence[int], start: datetime,
                        end: datetime) -> AsyncIterator[list[CountRow]]:
    """`case_counts` on SQLite: the cases read once, in the table's order, and counted
    here a column at a time (a Counter over zipped columns counts in C). The GROUP BYs'
    four sorts of a province's year take 0.6 s of CPU, reading it 0.3 s; the whole
    counting 1.07 s against 0.81 s. One statement, so one snapshot, as on PostgreSQL."""
    commune, terms = _terms(tx.dialect, commune_ids, start, end)
    stmt = (select(commune, Case.confirmed_form, Case.types, Case.sex, Case.age_band,
                   Case.setting, Case.urgency, Case.status, Case.outcome,
                   Case.escalation_level, _PLACE, *_TIMES)
            .select_from(Case).outerjoin(Village, Village.id == Case.village_id)
            .where(*terms).execution_options(yield_per=CHUNK))
    forms: Counter[tuple[Any, ...]] = Counter()
    people: Counter[tuple[Any, ...]] = Counter()
    handling: Counter[tuple[Any, ...]] = Counter()
    places: Counter[tuple[Any, ...]] = Counter()
    times = Part.TIMES
    result = await tx.conn.stream(stmt)
    async for chunk in result.partitions(CHUNK):
        (communes, confirmed, types, sexes, ages, settings, urgencies, statuses, outcomes,
         levels, named, created, acknowledged, assessed) = zip(*chunk, strict=True)
        forms.update(zip(communes, confirmed, types, strict=True))
        people.update(zip(communes, sexes, ages, settings, strict=True))
        handling.update(zip(communes, urgencies, statuses, outcomes, levels, strict=True))
        places.update(zip(communes, named, strict=True))
        yield [CountRow(times, c, None, None, None, None, 1, made, ack, done)
               for c, made, ack, done in zip(communes, created, acknowledged, assessed,
                                             strict=True)
               if ack is not None or done is not None]
    # As case_counts_statement's GROUP BYs give them: the types only of unconfirmed cases.
    yield [CountRow(Part.FORM, c, form, None if form else reported, None, None, n,
                    None, None, None)
           for (c, form, reported), n in forms.items()]
    yield [CountRow(Part.PEOPLE, c, sex, age, setting, None, n, None, None, None)
           for (c, sex, age, setting), n in people.items()]
    yield [CountRow(Part.HANDLING, c, urgency, status, outcome, level, n, None, None, None)
           for (c, urgency, status, outcome, level), n in handling.items()]
    yield [CountRow(Part.PLACE, c, place, None, None, None, n, None, None, None)
           for (c, place), n in places.items()]
