"""Which of a person's roles a commune's command acts as (service layer).

Someone may hold roles in several communes (one account, a row in each). A command that
belongs to one commune (a broadcast, an invitation, a poster, the calendar) acts as their
row in the commune they name, or in the one commune where their role may do it; where
several may, they are asked which (bot/flows/place.py). The province's own people, and
a deployment of one commune, are left as they were: their commands name the commune or
need none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.domain.people import Person
from bot.flows.place import COMMANDS
from bot.services.directory import Communes, Directory
from storage import people
from storage.db import Tx


@dataclass(frozen=True)
class Placed:
    """Act as `person` (their row in one commune) with `args` (its name taken out)."""

    person: Person
    args: str


@dataclass(frozen=True)
class AskWhere:
    """Several communes where they may: which one."""

    places: tuple[Directory, ...]


async def place(tx: Tx, communes: Communes, person: Person, command: str, args: str,
                may: Callable[[str], bool]) -> Placed | AskWhere:
    if communes.province_id is None or person.commune_id == communes.province_id:
        return Placed(person, args)
    rows = [row for row in await people.rows_of_account(tx, person.account)
            if may(row.role) and communes.get(row.commune_id) is not None]
    if not rows:
        return Placed(person, args)  # the command refuses them as it always has
    _, skip = COMMANDS[command]
    words = args.split()
    named, after = communes.named(" ".join(words[skip:]))
    if named is not None:
        row = next((r for r in rows if r.commune_id == named.commune_id), None)
        if row is not None:
            return Placed(row, " ".join([*words[:skip], after]).strip())
    if len(rows) == 1:
        return Placed(rows[0], args)
    return AskWhere(tuple(communes.of(row.commune_id) for row in rows))


async def row_in(tx: Tx, person: Person, commune_id: int | None) -> Person | None:
    """The person's row in the commune a flow was started for (it goes on there), or None
    if they hold none there any more; themselves when the flow named no commune."""
    if commune_id is None or person.commune_id == commune_id:
        return person
    rows = await people.rows_of_account(tx, person.account)
    return next((row for row in rows if row.commune_id == commune_id), None)
