"""Writing the commune file into the database at every start (bot/services/directory.py):
new people added, changed ones updated (keeping their id), addresses bound or moved. On
SQLite and PostgreSQL."""

from __future__ import annotations

import tomllib
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from bot.config import DEMO_CONFIG, load_province, parse_commune
from bot.services.directory import sync_commune, sync_province
from storage import people
from storage.db import Database
from tests.support.database import counting_statements, rows
from tests.support.province import commune_files, write_province

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def demo(**changes: object) -> dict[str, object]:
    raw = tomllib.loads(DEMO_CONFIG.read_text(encoding="utf-8"))
    for person in raw["people"]:
        if person["key"] in changes:
            person.update(changes[person["key"]])  # type: ignore[arg-type]
    return raw


async def test_a_second_start_changes_what_the_file_changed_and_nothing_else(
        db_url: str) -> None:
    database = await Database.open(db_url)
    try:
        async with database.transaction() as tx:
            first = await sync_commune(tx, parse_commune(demo()), NOW)
            officer = await people.person_by_key(tx, first.commune_id, "officer")
            everyone = await people.configured_people(tx, first.commune_id)
        assert officer is not None and len(everyone) == len(parse_commune(demo()).people)

        changed = demo(officer={"name": "Chị Lan (cán bộ)", "telegram_id": 777001})
        async with database.transaction() as tx:
            again = await sync_commune(tx, parse_commune(changed), NOW)
            renamed = await people.person_by_key(tx, again.commune_id, "officer")
            same = await people.configured_people(tx, again.commune_id)
            by_telegram = await people.identity(tx, "telegram", "777001")
            web = await people.identity(tx, "web", "officer")
        assert again.commune_id == first.commune_id
        assert renamed is not None and renamed.id == officer.id
        assert renamed.name == "Chị Lan (cán bộ)"
        assert [p.id for p in same] == [p.id for p in everyone]
        assert by_telegram is not None and by_telegram.person_id == officer.id
        assert web is not None and web.person_id == officer.id

        # The address moves to whoever the file gives it to now.
        moved = demo(officer={"telegram_id": 777002}, police={"telegram_id": 777001})
        async with database.transaction() as tx:
            third = await sync_commune(tx, parse_commune(moved), NOW)
            police = await people.person_by_key(tx, third.commune_id, "police")
            owner = await people.identity(tx, "telegram", "777001")
        assert police is not None and owner is not None and owner.person_id == police.id
    finally:
        await database.close()


async def test_villages_keep_their_ids_when_renamed_and_new_ones_are_added(
        db_url: str) -> None:
    database = await Database.open(db_url)
    try:
        raw = demo()
        async with database.transaction() as tx:
            first = await sync_commune(tx, parse_commune(raw), NOW)
        villages = raw["villages"]
        assert isinstance(villages, list)
        villages[0]["name"] = "Thôn Đông Mới"
        villages.append({"key": "giua", "name": "Thôn Giữa"})
        async with database.transaction() as tx:
            again = await sync_commune(tx, parse_commune(raw), NOW)
        key = villages[0]["key"]
        assert again.village_ids[key] == first.village_ids[key]
        assert again.village_names[again.village_ids[key]] == "Thôn Đông Mới"
        assert set(again.village_ids) == {*first.village_ids, "giua"}
        assert len(set(again.village_ids.values())) == len(again.village_ids)
        stored = {r.id: r.name for r in await rows(database, "villages")}
        assert stored[again.village_ids[key]] == "Thôn Đông Mới"
        assert stored[again.village_ids["giua"]] == "Thôn Giữa"
    finally:
        await database.close()


async def test_a_province_restart_with_unchanged_files_only_reads_a_few_statements(
        db_url: str, tmp_path: Path) -> None:
    """The files are written together, not one commune at a time: the statements of a
    province's sync do not grow with its communes, and a restart with nothing changed
    writes nothing (processes starting together would otherwise queue behind each
    other's row locks on PostgreSQL). A renamed village is still renamed."""
    small = load_province(write_province(tmp_path / "small", communes=2))
    large_file = write_province(tmp_path / "large", communes=20)
    large = load_province(large_file)
    database = await Database.open(db_url)
    try:
        counted: list[Counter[str]] = []
        for province in (small, large, large):
            with counting_statements(database) as statements:
                async with database.transaction() as tx:
                    first = await sync_province(tx, province, NOW)
            counted.append(statements)
        small_count, large_first, large_again = counted
        assert sum(large_first.values()) == sum(small_count.values()), counted
        assert not set(large_again) & {"INSERT", "UPDATE", "DELETE"}, large_again
        assert large_again["SELECT"] <= 6, large_again
        # A change is still written: one village renamed in the fifth file.
        folder = commune_files(tmp_path / "large")[4]
        folder.write_text(folder.read_text(encoding="utf-8").replace(
            'name = "Thôn 3"', 'name = "Thôn Ba"'), encoding="utf-8")
        async with database.transaction() as tx:
            again = await sync_province(tx, load_province(large_file), NOW)
        fifth = next(c for c in again if c.config.key == large.communes[4].key)
        before = next(c for c in first if c.config.key == large.communes[4].key)
        assert fifth.village_names[fifth.village_ids["v3"]] == "Thôn Ba"
        assert fifth.village_ids == before.village_ids
        assert [c.commune_id for c in again] == [c.commune_id for c in first]
    finally:
        await database.close()
