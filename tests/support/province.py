"""A province folder written for a test: a province file and one commune file per commune,
the communes taken from the official list of a real province (bot/official_units.py), each
fully staffed (30 people: officers, police, leaders, an admin, a citizen and two
collaborators in each of ten villages) so that `safechild check-config` finds nothing
missing. Names, numbers and the villages' coordinates are made up."""

from __future__ import annotations

import json
import math
import string
from collections.abc import Iterable
from pathlib import Path

from bot.domain.folding import without_marks
from bot.official_units import OfficialUnit, province, units_of

# Thanh Hóa: 166 communes and wards, enough for the largest province the issue speaks of.
THANH_HOA = 38
VILLAGES = 10
COLLABORATORS_PER_VILLAGE = 2
PEOPLE_PER_COMMUNE = 10 + VILLAGES * COLLABORATORS_PER_VILLAGE

# Thanh Hóa lies between about 19.3 and 20.6 N, 104.4 and 106.1 E. The `index`th commune of
# a folder sits in a cell of a 13 by 13 grid over it (cells 10 to 14 km apart: room for the
# 168 communes of the largest province), its villages on a ring of 1.3 km around the cell's
# middle, so the village nearest any of them is one of its own commune's.
SOUTH, NORTH, WEST, EAST = 19.3, 20.6, 104.4, 106.1
GRID = 13
RING = 0.012
# Hà Nội: some 50 km north of Thanh Hóa, far from every village of the folder.
FAR_AWAY = (21.0285, 105.8542)

_RULES_AND_DEADLINES = """
[[routing.rules]]
types = ["*"]
urgency = ["*"]
notify = ["officer@duty"]
[[routing.rules]]
types = ["violence", "sexual_abuse", "trafficking", "exploitation", "abandonment"]
urgency = ["*"]
notify = ["police@duty"]
[[routing.rules]]
types = ["*"]
urgency = ["EMERGENCY"]
notify = ["police@duty"]

[routing]
police_types = ["violence", "sexual_abuse", "trafficking", "exploitation", "abandonment"]
tell_village_collaborator = true

[deadlines.acknowledge]
EMERGENCY = "15m"
URGENT = "1h"
STANDARD = "2wh"
[deadlines.initial_assessment]
EMERGENCY = "12h"
URGENT = "12h"
STANDARD = "12h"
[deadlines.detailed_assessment]
EMERGENCY = "3wd"
URGENT = "3wd"
STANDARD = "3wd"
[deadlines.plan_drafted]
EMERGENCY = "5wd"
URGENT = "5wd"
STANDARD = "5wd"
[deadlines.plan_approved]
EMERGENCY = "2wd"
URGENT = "2wd"
STANDARD = "2wd"
[deadlines.review]
EMERGENCY = "30d"
URGENT = "30d"
STANDARD = "30d"

[escalation]
# The top of every commune's chain is the province's child-protection unit (province.toml).
levels = [
  ["officer@duty", "police@duty"],
  ["officer", "police#chief"],
  ["leader#vice_chairman"],
  ["leader#chairman", "leader#province"],
]

[closing]
chairman = "leader#chairman"
"""


def q(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text, ensure_ascii=False)


def prefixes(units: Iterable[OfficialUnit]) -> dict[int, str]:
    """A case-code prefix for each unit, unique and of 1 to 6 letters: the initials of its
    name without marks ("Vĩnh Thủy": VT), then more of its letters, then a letter more."""
    taken: set[str] = set()
    found: dict[int, str] = {}
    for unit in units:
        words = [w for w in without_marks(unit.short_name).upper().split() if w.isalpha()]
        letters = "".join(words) or "X"
        initials = "".join(w[0] for w in words) or "X"
        tries = [initials[:6], *((initials + letters)[:n] for n in range(3, 7))]
        tries += [initials[:5] + extra for extra in string.ascii_uppercase]
        tries += [a + b for a in string.ascii_uppercase for b in string.ascii_uppercase]
        prefix = next(t for t in tries if t.isalpha() and t not in taken)
        taken.add(prefix)
        found[unit.code] = prefix
    return found


def person(key: str, role: str, name: str, telegram_id: int, **fields: object) -> str:
    lines = ["[[people]]", f"key = {q(key)}", f"role = {q(role)}", f"name = {q(name)}",
             f"telegram_id = {telegram_id}"]
    for field, value in fields.items():
        lines.append(f"{field} = {json.dumps(value, ensure_ascii=False)}")
    return "\n".join(lines)


def village_point(index: int, village: int) -> tuple[float, float]:
    """Where village `village` (1 to VILLAGES) of the folder's `index`th commune is."""
    assert 0 <= index < GRID * GRID and 1 <= village <= VILLAGES
    row, column = divmod(index, GRID)
    latitude = SOUTH + (row + 0.5) * (NORTH - SOUTH) / GRID
    longitude = WEST + (column + 0.5) * (EAST - WEST) / GRID
    angle = 2 * math.pi * village / VILLAGES
    return (round(latitude + RING * math.sin(angle), 5),
            round(longitude + RING * math.cos(angle), 5))


def commune_toml(unit: OfficialUnit, index: int, prefix: str, *, police: bool = True,
                 name: str | None = None, code: int | None = None) -> str:
    """The commune file of `unit` (the `index`th commune of the folder), staffed in full;
    without `police` it has none; `name` and `code` replace the official ones."""
    base = 10_000_000 + index * 100
    written = unit.short_name if name is None else name
    head = [
        "[commune]",
        f"key = {q(f'c{unit.code}')}",
        f"name = {q(written)}",
        f"code = {unit.code if code is None else code}",
        f"code_prefix = {q(prefix)}",
        f"officer_phone = {q(f'0912 {index:03d} {unit.code % 1000:03d}')}",
        f"trusted_addresses = [{q(f'Trạm Y tế {unit.name}')}]",
    ]
    villages = [f"[[villages]]\nkey = \"v{v}\"\nname = {q(f'Thôn {v}')}\n"
                f"latitude = {village_point(index, v)[0]}\n"
                f"longitude = {village_point(index, v)[1]}"
                for v in range(1, VILLAGES + 1)]
    staff = [
        person("officer", "officer", "Cán bộ trực", base + 1, on_duty=True,
               phone="0912345678"),
        person("officer2", "officer", "Cán bộ 2", base + 2),
        person("officer3", "officer", "Cán bộ 3", base + 3),
        person("police", "police", "Công an trực", base + 4, on_duty=True),
        person("police_chief", "police", "Trưởng Công an", base + 5, tags=["chief"]),
        person("police2", "police", "Công an 2", base + 6),
        person("leader", "leader", "Phó Chủ tịch", base + 7, tags=["vice_chairman"]),
        person("chairman", "leader", "Chủ tịch", base + 8, tags=["chairman"]),
        person("admin", "admin", "Quản trị xã", base + 9),
        person("citizen", "citizen", "Người dân", base + 10),
    ]
    if not police:
        staff = [p for p in staff if 'role = "police"' not in p]
    collaborators = [
        person(f"ctv{v}_{n}", "collaborator", f"Cộng tác viên {v}.{n}",
               base + 10 + (v - 1) * COLLABORATORS_PER_VILLAGE + n, village=f"v{v}")
        for v in range(1, VILLAGES + 1) for n in range(1, COLLABORATORS_PER_VILLAGE + 1)]
    return "\n\n".join(["# Made up for a test.", "\n".join(head), *villages, *staff,
                        *collaborators, _RULES_AND_DEADLINES])


def province_toml(province_code: int) -> str:
    official = province(province_code)
    assert official is not None
    return "\n\n".join([
        "# Made up for a test.",
        f"[province]\nname = {q(official.short_name)}\ncode = {province_code}",
        person("cpu", "leader", "Phòng Bảo vệ trẻ em, Sở Y tế", 9_000_001,
               tags=["province", "child_protection_unit"]),
        person("swc", "leader", "Trung tâm Công tác xã hội tỉnh", 9_000_002,
               tags=["social_work_centre"]),
        person("province_admin", "admin", "Quản trị tỉnh", 9_000_003),
    ]) + "\n"


def write_province(root: Path, communes: int = 100,
                   province_code: int = THANH_HOA, calendar: bool = True) -> Path:
    """Write `root`/province.toml and `root`/communes/<code>.toml for the first `communes`
    official communes of the province (by code); returns the province file. Without
    `calendar` no file has reminders: a benchmark on the real clock would otherwise draw a
    hundred communes' statistics whenever the day is one of the default calendar's."""
    units = units_of(province_code)[:communes]
    assert len(units) == communes, f"the province has {len(units_of(province_code))} communes"
    folder = root / "communes"
    folder.mkdir(parents=True, exist_ok=True)
    codes = prefixes(units)
    for index, unit in enumerate(units):
        (folder / f"{unit.code:05d}.toml").write_text(
            commune_toml(unit, index, codes[unit.code]) + _calendar(calendar),
            encoding="utf-8")
    path = root / "province.toml"
    path.write_text(province_toml(province_code) + _calendar(calendar), encoding="utf-8")
    return path


def _calendar(on: bool) -> str:
    return "" if on else "\n[calendar]\ndefaults = false\n"


def commune_files(root: Path) -> list[Path]:
    return sorted((root / "communes").glob("*.toml"))
