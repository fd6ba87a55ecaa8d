"""The commune as the database knows it: config synced at start, then looked up by id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.commune import CommuneConfig
from storage import repo

GROUP_KEY = "_telegram_alert_group"


@dataclass
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


async def sync_commune(s: AsyncSession, cfg: CommuneConfig, now_: datetime) -> Directory:
    """Write the commune file into the database (idempotent) and return the directory."""
    commune = await repo.upsert_commune(s, cfg.key, cfg.name, cfg.code_prefix)
    village_ids: dict[str, int] = {}
    for key, name in cfg.villages:
        village_ids[key] = (await repo.upsert_village(s, commune.id, key, name)).id
    for pc in cfg.people:
        person = await repo.person_by_key(s, commune.id, pc.key)
        fields = dict(role=pc.role, name=pc.name, phone=pc.phone,
                      village_id=village_ids.get(pc.village) if pc.village else None,
                      on_duty=pc.on_duty, tags=",".join(pc.tags),
                      preferred_channel=pc.prefers)
        if person is None:
            person = await repo.add_person(s, commune_id=commune.id, key=pc.key,
                                           language=pc.language, created_at=now_, **fields)
        else:
            for k, v in fields.items():
                setattr(person, k, v)
        # Every configured person has a phone in the web simulator, keyed by their config key.
        await repo.bind_identity(s, person.id, "web", pc.key)
        if pc.telegram_id:
            await repo.bind_identity(s, person.id, "telegram", pc.telegram_id)
        if pc.zalo_id:
            await repo.bind_identity(s, person.id, "zalo", pc.zalo_id)
    group_person_id = None
    if cfg.telegram_alert_group:
        group = await repo.person_by_key(s, commune.id, GROUP_KEY)
        if group is None:
            group = await repo.add_person(s, commune_id=commune.id, key=GROUP_KEY,
                                          role="group", name=cfg.name, language="vi",
                                          created_at=now_)
        await repo.bind_identity(s, group.id, "telegram", cfg.telegram_alert_group)
        group_person_id = group.id
    await s.flush()
    return Directory(cfg, commune.id, village_ids,
                     {village_ids[k]: name for k, name in cfg.villages}, group_person_id)

