"""The communes as the database knows them: each commune file synced at start, then its ids
looked up without a query (service layer). One deployment serves one commune or all the
communes of a province; every service finds the commune of the case or the person it works
on here, never assumes there is only one."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.domain import alerts
from bot.domain.cases import Case
from bot.domain.commune import CommuneConfig, PersonConfig
from bot.domain.commune_search import Place
from bot.domain.folding import without_marks
from bot.domain.messages import Text
from bot.domain.people import Person
from bot.domain.province import ProvinceConfig
from bot.domain.roles import INVITABLE, Role
from bot.domain.top_digest import DigestPace
from storage import people
from storage.db import Tx

GROUP_KEY = "_telegram_alert_group"


@dataclass(frozen=True)
class Directory:
    """Ids of the commune's villages and configured people, loaded once per process."""

    config: CommuneConfig
    commune_id: int
    village_ids: dict[str, int]
    village_names: dict[int, str]
    # The Telegram alert group as a pseudo-person, so its alerts go through the outbox.
    group_person_id: int | None = None
    # One of a province's communes: its places are named with it ("Thôn 1 (Hạc Thành)"),
    # since the province's people, and staff of several communes, see many communes' cases.
    in_province: bool = False

    def village_key(self, village_id: int | None) -> str | None:
        for key, vid in self.village_ids.items():
            if vid == village_id:
                return key
        return None

    def village_name(self, village_id: int | None) -> str | None:
        name = self.village_names.get(village_id) if village_id is not None else None
        if name and self.in_province:
            return f"{name} ({self.config.name})"
        return name


    def place(self, case: Case, other: Text | None = None) -> str | Text:
        """Where a case is, as alerts name it (a list names a place that is no village
        `other`): its village; in a province, a place that is no village (a shared
        location, words) with the commune's name, so someone of several communes always
        knows whose case it is."""
        village = self.village_name(case.village_id)
        if village:
            return village
        where = alerts.place_of(case, None) if other is None else other
        if self.in_province:
            return Text("alert.place.in_commune", {"place": where, "commune": self.config.name})
        return where


def _folded(name: str) -> str:
    return " ".join(without_marks(name).casefold().split())


def code_of(cfg: CommuneConfig) -> str:
    """A commune's code in links and buttons: its official code, else its file's key."""
    return str(cfg.official_code) if cfg.official_code is not None else cfg.key


@dataclass(frozen=True)
class Communes:
    """Every commune this deployment serves, by its database id."""

    by_id: Mapping[int, Directory]
    # Where someone new belongs until they choose a commune: the one commune, or the
    # province's own row (no commune: they are asked theirs).
    home_id: int = 0
    # The province's own row, home of its people (None: a single-commune deployment).
    province_id: int | None = None
    province_name: str = ""
    # The pace of the province's own people's digests (None: a single-commune deployment).
    province_digest: DigestPace | None = None

    @classmethod
    def of_one(cls, directory: Directory) -> Communes:
        return cls({directory.commune_id: directory}, home_id=directory.commune_id)

    async def everyone(self, tx: Tx, commune_id: int) -> list[Person]:
        """The commune's people, named by its file or invited into a working role, and the
        province's, who serve every commune (its routing and escalation may name them)."""
        return (await self.everyone_in(tx, [commune_id]))[commune_id]

    async def everyone_in(self, tx: Tx, commune_ids: Collection[int]
                          ) -> dict[int, list[Person]]:
        """`everyone` of each of these communes, in one statement."""
        wanted = set(commune_ids)
        if self.province_id is not None:
            wanted.add(self.province_id)
        found = await people.working_people(tx, wanted, INVITABLE)
        province = found.get(self.province_id, []) if self.province_id is not None else []
        return {c: found[c] + (province if c != self.province_id else [])
                for c in commune_ids}

    def __iter__(self) -> Iterator[Directory]:
        return iter(self.by_id.values())

    def __len__(self) -> int:
        return len(self.by_id)

    def places(self) -> list[Place]:
        """The communes as people name them, each by the code its poster's link carries
        (the official code; a single commune file without one, its key), with where their
        villages are, for those the file says it of."""
        return [Place(code_of(c.config), c.config.name,
                      tuple(c.config.village_points[key] for key, _ in c.config.villages
                            if key in c.config.village_points))
                for c in self]

    def named(self, words: str) -> tuple[Directory | None, str]:
        """The commune an admin's command names first (`/invite officer Vĩnh Thủy Thôn
        Tây`), by its name (marks and case aside) or its code, and the words after it.
        Exact, not the citizens' forgiving search: an invitation must not go astray."""
        said = words.split()
        for n in range(len(said), 0, -1):
            named = _folded(" ".join(said[:n]))
            for commune in self:
                if named in (_folded(commune.config.name), _folded(code_of(commune.config))):
                    return commune, " ".join(said[n:])
        return None, words

    def by_code(self, code: str) -> Directory | None:
        return next((c for c in self if code_of(c.config) == code), None)

    def get(self, commune_id: int | None) -> Directory | None:
        """The commune, if it is one of ours (a case or person of another is none of ours)."""
        return self.by_id.get(commune_id) if commune_id is not None else None

    def of(self, commune_id: int) -> Directory:
        """The commune of something this deployment made (a case, a configured person)."""
        found = self.by_id.get(commune_id)
        if found is None:
            raise LookupError(f"commune {commune_id} is not served here")
        return found

    @property
    def first(self) -> Directory:
        """The first commune configured: the home of someone who has not chosen one (in a
        single-commune deployment, the only one)."""
        return next(iter(self.by_id.values()))


@dataclass(frozen=True)
class _Files:
    """One file's part of a sync: a commune, or the province's own row (no villages)."""

    key: str
    name: str
    prefix: str
    villages: Sequence[tuple[str, str]]
    people: Sequence[PersonConfig]
    # Keeps simulator phones apart when several communes have an "officer".
    web_prefix: str


async def _sync(tx: Tx, files: Sequence[_Files], now: datetime
                ) -> list[tuple[int, dict[str, int], dict[str, Person]]]:
    """Write the files into the database (idempotent), all of them together: a few
    statements whatever their number (a province is a hundred files), and on a restart
    with nothing changed, reads only, so that processes starting together do not wait on
    each other's row locks. Per file, in order: its commune id, village ids and configured
    people as they were before."""
    ids = await people.sync_communes(tx, [(f.key, f.name, f.prefix) for f in files])
    commune_ids = [ids[f.key] for f in files]
    village_ids = await people.sync_villages(
        tx, {cid: f.villages for cid, f in zip(commune_ids, files, strict=True)})
    before = await people.configured_people_of(tx, commune_ids)
    existing = [{p.key: p for p in before[cid] if p.key is not None} for cid in commune_ids]
    await _sync_people(tx, list(zip(commune_ids, files, existing, strict=True)), village_ids, now)
    return [(cid, village_ids[cid], found)
            for cid, found in zip(commune_ids, existing, strict=True)]


async def _sync_group(tx: Tx, cfg: CommuneConfig, commune_id: int,
                      existing: Mapping[str, Person], now: datetime) -> int | None:
    """The commune's Telegram alert group as a pseudo-person, bound to the group's chat."""
    if not cfg.telegram_alert_group:
        return None
    group = existing.get(GROUP_KEY)
    if group is None:
        group = await people.add_person(tx, commune_id=commune_id, key=GROUP_KEY,
                                        role=Role.GROUP, name=cfg.name, language="vi",
                                        created_at=now)
    await people.bind_identity(tx, group.id, "telegram", cfg.telegram_alert_group)
    return group.id


def _files_of(cfg: CommuneConfig, web_prefix: str) -> _Files:
    return _Files(cfg.key, cfg.name, cfg.code_prefix, cfg.villages, cfg.people, web_prefix)


async def sync_commune(tx: Tx, cfg: CommuneConfig, now: datetime) -> Directory:
    """Write the commune file into the database (idempotent) and return the directory."""
    ((commune_id, village_ids, existing),) = await _sync(tx, [_files_of(cfg, "")], now)
    group = await _sync_group(tx, cfg, commune_id, existing, now)
    return Directory(cfg, commune_id, village_ids,
                     {village_ids[k]: name for k, name in cfg.villages}, group)


async def sync_province(tx: Tx, province: ProvinceConfig, now: datetime) -> Communes:
    """Write a province's files into the database: a row of its own (the home of its
    people, and of anyone who has not chosen a commune yet), then every commune. Someone
    whom several files name by the same Telegram or Zalo id is one account with a role in
    each: the first file to name them holds the account."""
    home = _Files(f"province-{province.code}", province.name, "", (), province.people,
                  "province.")
    synced = await _sync(tx, [home, *(_files_of(c, f"{c.key}.") for c in province.communes)],
                         now)
    home_id = synced[0][0]
    found = {}
    for cfg, (commune_id, village_ids, existing) in zip(province.communes, synced[1:],
                                                        strict=True):
        group = await _sync_group(tx, cfg, commune_id, existing, now)
        found[commune_id] = Directory(cfg, commune_id, village_ids,
                                      {village_ids[k]: name for k, name in cfg.villages},
                                      group, in_province=True)
    return Communes(found, home_id=home_id, province_id=home_id, province_name=province.name,
                    province_digest=province.digest)


def _chats(pc: PersonConfig) -> list[tuple[str, str]]:
    """The chat addresses a file gives someone (the same ones in two files: one person)."""
    found = [("telegram", pc.telegram_id)] if pc.telegram_id else []
    return found + ([("zalo", pc.zalo_id)] if pc.zalo_id else [])


async def _sync_people(tx: Tx, files: Sequence[tuple[int, _Files, Mapping[str, Person]]],
                       village_ids: Mapping[int, Mapping[str, int]], now: datetime) -> None:
    """The files' people as the database keeps them: the new ones added, the changed ones
    updated, each one's addresses bound; one statement of each kind for all the files,
    and none where nothing changed. Someone an earlier file named by one of their chat
    addresses becomes a role of that account: the row is theirs in this commune, the
    addresses stay the account's."""
    new: list[dict[str, object]] = []
    changed: dict[int, dict[str, object]] = {}
    for commune_id, file, existing in files:
        for pc in file.people:
            village_id = village_ids[commune_id].get(pc.village) if pc.village else None
            wanted: dict[str, object] = {
                "role": pc.role, "name": pc.name, "phone": pc.phone, "village_id": village_id,
                "on_duty": pc.on_duty, "tags": tuple(pc.tags), "preferred_channel": pc.prefers}
            person = existing.get(pc.key)
            if person is None:
                new.append({**wanted, "commune_id": commune_id, "key": pc.key,
                            "language": pc.language, "created_at": now})
            elif any(getattr(person, f) != v for f, v in wanted.items()):
                changed[person.id] = wanted
    await people.update_configured(tx, changed)
    ids = {(commune_id, key): p.id for commune_id, _, existing in files
           for key, p in existing.items()}
    ids.update(await people.add_people(tx, new))
    # Accounts are given in the files' order: the first file to name a chat holds it.
    claimed: dict[tuple[str, str], int] = {}
    accounts: dict[int, int | None] = {}
    wanted_addresses: list[tuple[int, str, str]] = []
    for commune_id, file, _ in files:
        for pc in file.people:
            person_id = ids[commune_id, pc.key]
            chats = _chats(pc)
            account = next((claimed[c] for c in chats if c in claimed), None)
            accounts[person_id] = account
            owner = person_id if account is None else account
            # Every configured person has a phone in the web simulator, keyed by their
            # key; someone of several communes keeps the one of the file that named them
            # first.
            mine = chats if account is not None else [
                ("web", f"{file.web_prefix}{pc.key}"), *chats]
            for chat in chats:
                claimed.setdefault(chat, owner)
            wanted_addresses += [(owner, channel, address) for channel, address in mine]
    before = {p.id: p.account_id for _, _, existing in files for p in existing.values()}
    await people.set_accounts(tx, {pid: a for pid, a in accounts.items()
                                   if before.get(pid) != a})
    bound = {(i.channel, i.external_id): i.person_id
             for found in (await people.identities_for(
                 tx, sorted({owner for owner, _, _ in wanted_addresses}))).values()
             for i in found}
    await people.bind_identities(tx, [(owner, channel, address)
                                      for owner, channel, address in wanted_addresses
                                      if bound.get((channel, address)) != owner])
