"""Communes, villages, people and their channel identities (storage layer).

Functions take the caller's transaction and never commit; they return domain dataclasses.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update

from bot.domain.people import Identity, Person
from storage.db import Tx
from storage.models import Commune, Village
from storage.models import Identity as IdentityRow
from storage.models import Person as PersonRow
from storage.sql import insert, table

communes = table(Commune)
villages = table(Village)
people = table(PersonRow)
identities = table(IdentityRow)

PERSON_COLUMNS = tuple(people.c)
IDENTITY_COLUMNS = tuple(identities.c)


def to_person(m: Mapping[Any, Any]) -> Person:
    return Person(id=m["id"], commune_id=m["commune_id"], key=m["key"], role=m["role"],
                  name=m["name"] or "", phone=m["phone"], language=m["language"] or "vi",
                  village_id=m["village_id"], on_duty=bool(m["on_duty"]),
                  tags=tuple(t for t in (m["tags"] or "").split(",") if t),
                  preferred_channel=m["preferred_channel"], account_id=m["account_id"])


def to_identity(m: Mapping[Any, Any]) -> Identity:
    return Identity(id=m["id"], person_id=m["person_id"], channel=m["channel"],
                    external_id=m["external_id"], unreachable_at=m["unreachable_at"],
                    last_seen_at=m["last_seen_at"], heard_at=m["heard_at"],
                    sent_since_heard=m["sent_since_heard"] or 0)


# ---- communes and villages ----------------------------------------------------------------


async def sync_communes(tx: Tx, wanted: Sequence[tuple[str, str, str]]) -> dict[str, int]:
    """Communes (key, name, case code prefix) as the files say: read first, and written
    (one statement) only where one is new or changed, so that processes starting together
    on an unchanged province do not queue behind each other's row locks. Their ids by
    key."""
    if not wanted:
        return {}
    rows = await tx.conn.execute(select(communes.c.key, communes.c.id, communes.c.name,
                                        communes.c.code_prefix)
                                 .where(communes.c.key.in_([k for k, _, _ in wanted])))
    found = {key: (cid, name, prefix) for key, cid, name, prefix in rows}
    stale = [{"key": key, "name": name, "code_prefix": prefix} for key, name, prefix in wanted
             if found.get(key, (None, None, None))[1:] != (name, prefix)]
    ids = {key: cid for key, (cid, _, _) in found.items()}
    if stale:
        stmt = insert(tx, communes).values(stale)
        stmt = stmt.on_conflict_do_update(index_elements=["key"], set_={
            "name": stmt.excluded.name, "code_prefix": stmt.excluded.code_prefix})
        ids.update({key: cid for key, cid in await tx.conn.execute(
            stmt.returning(communes.c.key, communes.c.id))})
    return ids


async def sync_villages(tx: Tx, wanted: Mapping[int, Sequence[tuple[str, str]]]
                        ) -> dict[int, dict[str, int]]:
    """Each commune's villages (key, name) as its file says, read first and written only
    where one is new or renamed (as sync_communes); their ids by key, per commune."""
    found: dict[int, dict[str, int]] = {cid: {} for cid in wanted}
    if not found:
        return found
    names: dict[tuple[int, str], str] = {}
    rows = await tx.conn.execute(select(villages.c.commune_id, villages.c.key, villages.c.id,
                                        villages.c.name)
                                 .where(villages.c.commune_id.in_(list(found))))
    for commune_id, key, village_id, name in rows:
        found[commune_id][key] = village_id
        names[commune_id, key] = name
    stale = [{"commune_id": cid, "key": key, "name": name}
             for cid, named in wanted.items() for key, name in named
             if names.get((cid, key)) != name]
    if stale:
        stmt = insert(tx, villages).values(stale)
        stmt = stmt.on_conflict_do_update(index_elements=["commune_id", "key"],
                                          set_={"name": stmt.excluded.name})
        for commune_id, key, village_id in await tx.conn.execute(
                stmt.returning(villages.c.commune_id, villages.c.key, villages.c.id)):
            found[commune_id][key] = village_id
    return found


# ---- people ---------------------------------------------------------------------------------


async def person(tx: Tx, person_id: int) -> Person | None:
    row = (await tx.conn.execute(select(people).where(people.c.id == person_id))).first()
    return to_person(row._mapping) if row else None


async def people_by_id(tx: Tx, person_ids: Iterable[int]) -> dict[int, Person]:
    wanted = list(dict.fromkeys(person_ids))
    if not wanted:
        return {}
    rows = await tx.conn.execute(select(people).where(people.c.id.in_(wanted)))
    return {p.id: p for p in (to_person(r._mapping) for r in rows)}


async def person_by_key(tx: Tx, commune_id: int, key: str) -> Person | None:
    row = (await tx.conn.execute(select(people).where(people.c.commune_id == commune_id,
                                                      people.c.key == key))).first()
    return to_person(row._mapping) if row else None


async def configured_people(tx: Tx, commune_id: int) -> list[Person]:
    """The people the commune file names (walk-in citizens have no key)."""
    rows = await tx.conn.execute(select(people).where(people.c.commune_id == commune_id,
                                                      people.c.key.is_not(None))
                                 .order_by(people.c.id))
    return [to_person(r._mapping) for r in rows]


async def configured_people_of(tx: Tx, commune_ids: Collection[int]
                               ) -> dict[int, list[Person]]:
    """configured_people of several communes in one read."""
    found: dict[int, list[Person]] = {cid: [] for cid in commune_ids}
    if found:
        rows = await tx.conn.execute(select(people).where(
            people.c.commune_id.in_(list(found)), people.c.key.is_not(None))
            .order_by(people.c.id))
        for row in rows:
            found[row.commune_id].append(to_person(row._mapping))
    return found


async def working_people(tx: Tx, commune_ids: Collection[int], roles: Collection[str]
                         ) -> dict[int, list[Person]]:
    """Each commune's people named by its file, and everyone in `roles` there who joined
    by an invitation (no key): routing and escalation must reach them alike."""
    found: dict[int, list[Person]] = {commune_id: [] for commune_id in commune_ids}
    if found:
        rows = await tx.conn.execute(
            select(people).where(people.c.commune_id.in_(list(found)),
                                 or_(people.c.key.is_not(None),
                                     people.c.role.in_([str(r) for r in roles])))
            .order_by(people.c.id))
        for row in rows:
            found[row.commune_id].append(to_person(row._mapping))
    return found


def _with_roles(commune_id: int, roles: Collection[str]) -> tuple[Any, ...]:
    return people.c.commune_id == commune_id, people.c.role.in_([str(r) for r in roles])


async def people_with_roles(tx: Tx, commune_id: int, roles: Collection[str]) -> list[Person]:
    """Everyone of the commune in these roles, configured or invited (no config key)."""
    rows = await tx.conn.execute(select(people).where(*_with_roles(commune_id, roles))
                                 .order_by(people.c.id))
    return [to_person(r._mapping) for r in rows]


async def count_with_roles(tx: Tx, commune_id: int, roles: Collection[str]) -> int:
    return int(await tx.conn.scalar(select(func.count()).select_from(people)
                                    .where(*_with_roles(commune_id, roles))) or 0)


async def configured_admins(tx: Tx, commune_id: int | None) -> list[Person]:
    """The admins the commune file names (of one commune, or of all when None)."""
    query = select(people).where(people.c.role == "admin", people.c.key.is_not(None))
    if commune_id is not None:
        query = query.where(people.c.commune_id == commune_id)
    return [to_person(r._mapping)
            for r in await tx.conn.execute(query.order_by(people.c.id))]


async def add_person(tx: Tx, *, commune_id: int, key: str | None, role: str, name: str,
                     language: str, created_at: datetime, phone: str | None = None,
                     village_id: int | None = None, on_duty: bool = False,
                     tags: Sequence[str] = (), preferred_channel: str | None = None,
                     account_id: int | None = None) -> Person:
    row = (await tx.conn.execute(people.insert().values(
        commune_id=commune_id, key=key, role=str(role), name=name, phone=phone,
        language=language, village_id=village_id, on_duty=on_duty, tags=",".join(tags),
        created_at=created_at, preferred_channel=preferred_channel, account_id=account_id,
    ).returning(*PERSON_COLUMNS))).one()
    return to_person(row._mapping)


async def add_people(tx: Tx, rows: Sequence[Mapping[str, Any]]
                     ) -> dict[tuple[int, str], int]:
    """Configured people (of one commune or several) in one statement; their ids by
    (commune, key). Each row has add_person's fields."""
    if not rows:
        return {}
    values = [{**r, "role": str(r["role"]), "tags": ",".join(r.get("tags", ()))}
              for r in rows]
    result = await tx.conn.execute(
        people.insert().returning(people.c.id, people.c.commune_id, people.c.key), values)
    return {(int(cid), str(key)): int(pid) for pid, cid, key in result}


async def bind_identities(tx: Tx, rows: Sequence[tuple[int, str, str]]) -> None:
    """(person id, channel, address) rows as bind_identity binds one, in one statement."""
    if not rows:
        return
    stmt = insert(tx, identities)
    await tx.conn.execute(
        stmt.on_conflict_do_update(index_elements=["channel", "external_id"],
                                   set_={"person_id": stmt.excluded.person_id}),
        [{"person_id": p, "channel": c, "external_id": e} for p, c, e in rows])


_CONFIGURED = (update(people).where(people.c.id == bindparam("row")).values(
    role=bindparam("role"), name=bindparam("name"), phone=bindparam("phone"),
    village_id=bindparam("village_id"), on_duty=bindparam("on_duty"),
    tags=bindparam("tags"), preferred_channel=bindparam("preferred_channel")))


async def update_configured(tx: Tx, changed: Mapping[int, Mapping[str, Any]]) -> None:
    """Configured people as their commune files say now, by row id (role, name, phone,
    village_id, on_duty, tags, preferred_channel; their language stays theirs)."""
    if changed:
        await tx.conn.execute(_CONFIGURED, [
            {**fields, "row": row, "role": str(fields["role"]),
             "tags": ",".join(fields["tags"])} for row, fields in changed.items()])


async def set_accounts(tx: Tx, accounts: Mapping[int, int | None]) -> None:
    """Rows of people in several communes: each row's account (None: it is one)."""
    if accounts:
        await tx.conn.execute(
            update(people).where(people.c.id == bindparam("row"))
            .values(account_id=bindparam("account")),
            [{"row": row, "account": account} for row, account in accounts.items()])


async def rows_of_account(tx: Tx, account_id: int) -> list[Person]:
    """Every commune's row of one person: the account's own first."""
    rows = await tx.conn.execute(
        select(people).where((people.c.id == account_id) | (people.c.account_id == account_id))
        .order_by(people.c.id))
    return [to_person(r._mapping) for r in rows]


async def set_language(tx: Tx, person_id: int, language: str) -> None:
    """The person's language, on every commune's row of their account."""
    await tx.conn.execute(update(people).where((people.c.id == person_id)
                                               | (people.c.account_id == person_id))
                          .values(language=language))


async def set_commune(tx: Tx, person_id: int, commune_id: int) -> None:
    """The commune someone chose (a citizen of a province's bot); a village of another
    commune no longer applies."""
    await tx.conn.execute(update(people).where(people.c.id == person_id)
                          .values(commune_id=commune_id, village_id=None))


async def take_role(tx: Tx, person_id: int, commune_id: int, role: str,
                    village_id: int | None) -> None:
    """The role (and commune, and village) an invitation gives."""
    await tx.conn.execute(update(people).where(people.c.id == person_id)
                          .values(commune_id=commune_id, role=str(role), village_id=village_id))


# ---- identities -----------------------------------------------------------------------------


async def bind_identity(tx: Tx, person_id: int, channel: str, external_id: str) -> None:
    """This channel address is this person's (again, if it was someone else's)."""
    stmt = insert(tx, identities).values(person_id=person_id, channel=channel,
                                         external_id=external_id)
    await tx.conn.execute(stmt.on_conflict_do_update(index_elements=["channel", "external_id"],
                                                     set_={"person_id": person_id}))


async def identity(tx: Tx, channel: str, external_id: str) -> Identity | None:
    row = (await tx.conn.execute(select(identities).where(
        identities.c.channel == channel, identities.c.external_id == external_id))).first()
    return to_identity(row._mapping) if row else None


async def identities_of(tx: Tx, person_id: int) -> list[Identity]:
    """The addresses of the person's account (one commune's row of someone in several
    communes has none of its own)."""
    return (await identities_for(tx, [person_id]))[person_id]


_ROW = people.alias("row")
_ACCOUNT_ADDRESSES = (
    select(_ROW.c.id.label("wanted"), *IDENTITY_COLUMNS)
    .join(identities, identities.c.person_id == func.coalesce(_ROW.c.account_id, _ROW.c.id))
    .where(_ROW.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(identities.c.id))


async def identities_for(tx: Tx, person_ids: Sequence[int]) -> dict[int, list[Identity]]:
    """Each person's addresses: their account's, so an alert to any commune's row of one
    person reaches the chats they use."""
    found: dict[int, list[Identity]] = {pid: [] for pid in person_ids}
    if person_ids:
        rows = await tx.conn.execute(_ACCOUNT_ADDRESSES, {"ids": list(found)})
        for row in rows:
            found[row.wanted].append(to_identity(row._mapping))
    return found


async def mark_unreachable(tx: Tx, channel: str, external_id: str, now: datetime) -> None:
    await tx.conn.execute(update(identities).where(identities.c.channel == channel,
                                                   identities.c.external_id == external_id)
                          .values(unreachable_at=now))


_SEEN = (update(identities).where(identities.c.id == bindparam("ident"))
         .values(last_seen_at=bindparam("seen"), unreachable_at=None,
                 heard_at=bindparam("heard"), sent_since_heard=0))


async def note_seen(tx: Tx, ident: Identity, now: datetime, refresh_after: timedelta) -> None:
    """Writing to us makes that channel theirs again: reachable, its messaging window open
    anew, and (refreshed coarsely, so a chat does not rewrite the row on every message)
    the one they last used. The row is left alone when nothing changes: then nothing was
    sent since the window's start, which stays where it was (a little early: on the safe
    side)."""
    stale = ident.last_seen_at is None or now - ident.last_seen_at > refresh_after
    if stale or ident.unreachable_at is not None or ident.sent_since_heard \
            or ident.heard_at is None:
        await tx.conn.execute(_SEEN, {"ident": ident.id, "heard": now,
                                      "seen": now if stale else ident.last_seen_at})


async def heard_from(tx: Tx, channel: str, external_id: str, now: datetime) -> None:
    """The person wrote on this address without starting a conversation turn (a tap that
    only keeps the messaging window open): reachable, the window open anew."""
    await tx.conn.execute(update(identities).where(identities.c.channel == channel,
                                                   identities.c.external_id == external_id)
                          .values(unreachable_at=None, heard_at=now, sent_since_heard=0))


async def count_sent(tx: Tx, sent: Sequence[tuple[str, str, int]]) -> None:
    """Messages went out: (channel, address, how many) added to each address's count
    since the person last wrote."""
    if sent:
        await tx.conn.execute(
            update(identities).where(identities.c.channel == bindparam("ch"),
                                     identities.c.external_id == bindparam("addr"))
            .values(sent_since_heard=identities.c.sent_since_heard + bindparam("n")),
            [{"ch": c, "addr": a, "n": n} for c, a, n in sent])
