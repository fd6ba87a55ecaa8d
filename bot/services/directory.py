"""The communes as the database knows them: each commune file synced at start, then its ids
looked up without a query (service layer). One deployment serves one commune or all the
communes of a province; every service finds the commune of the case or the person it works
on here, never assumes there is only one."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from bot.domain.commune import CommuneConfig
from bot.domain.roles import Role
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

    def village_key(self, village_id: int | None) -> str | None:
        for key, vid in self.village_ids.items():
            if vid == village_id:
                return key
        return None

    def village_name(self, village_id: int | None) -> str | None:
        return self.village_names.get(village_id) if village_id is not None else None


@dataclass(frozen=True)
class Communes:
    """Every commune this deployment serves, by its database id."""

    by_id: Mapping[int, Directory]

    @classmethod
    def of_one(cls, directory: Directory) -> Communes:
        return cls({directory.commune_id: directory})

    def __iter__(self) -> Iterator[Directory]:
        return iter(self.by_id.values())

    def __len__(self) -> int:
        return len(self.by_id)

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


async def sync_commune(tx: Tx, cfg: CommuneConfig, now: datetime) -> Directory:
    """Write the commune file into the database (idempotent) and return the directory."""
    commune_id = await people.upsert_commune(tx, cfg.key, cfg.name, cfg.code_prefix)
    village_ids: dict[str, int] = {}
    for key, name in cfg.villages:
        village_ids[key] = await people.upsert_village(tx, commune_id, key, name)
    for pc in cfg.people:
        person = await people.person_by_key(tx, commune_id, pc.key)
        village_id = village_ids.get(pc.village) if pc.village else None
        if person is None:
            person = await people.add_person(
                tx, commune_id=commune_id, key=pc.key, language=pc.language, created_at=now,
                role=pc.role, name=pc.name, phone=pc.phone, village_id=village_id,
                on_duty=pc.on_duty, tags=pc.tags, preferred_channel=pc.prefers)
        else:
            await people.update_configured(
                tx, person.id, role=pc.role, name=pc.name, phone=pc.phone,
                village_id=village_id, on_duty=pc.on_duty, tags=pc.tags,
                preferred_channel=pc.prefers)
        # Every configured person has a phone in the web simulator, keyed by their config key.
        await people.bind_identity(tx, person.id, "web", pc.key)
        if pc.telegram_id:
            await people.bind_identity(tx, person.id, "telegram", pc.telegram_id)
        if pc.zalo_id:
            await people.bind_identity(tx, person.id, "zalo", pc.zalo_id)
    group_person_id = None
    if cfg.telegram_alert_group:
        group = await people.person_by_key(tx, commune_id, GROUP_KEY)
        if group is None:
            group = await people.add_person(tx, commune_id=commune_id, key=GROUP_KEY,
                                            role=Role.GROUP, name=cfg.name, language="vi",
                                            created_at=now)
        await people.bind_identity(tx, group.id, "telegram", cfg.telegram_alert_group)
        group_person_id = group.id
    return Directory(cfg, commune_id, village_ids,
                     {village_ids[k]: name for k, name in cfg.villages}, group_person_id)
