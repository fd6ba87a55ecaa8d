"""Issue 14, items 1 and 7 (configuration): a province file with one commune file per
commune, each commune checked against the official 2025 list of the province (a misspelt
name or another province's commune refused at start with the nearest official name), case
code prefixes unique in the province, the single commune file read exactly as before, and
`safechild check-config` printing per commune what is missing.

Province folders are written by tests/support/province.py from the official list of Thanh
Hóa; `check-config` runs as the real `python -m bot.cli` where its exit status matters."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from bot import official_units
from bot.cli import check_config
from bot.config import (
    DEMO_CONFIG,
    ConfigError,
    load_commune,
    load_config,
    load_province,
    parse_commune,
)
from bot.domain.coverage import NO_POLICE, TARGET_MATCHES_NOBODY, gaps
from bot.domain.folding import without_marks
from bot.domain.province import ProvinceConfig
from tests.support.province import (
    PEOPLE_PER_COMMUNE,
    THANH_HOA,
    commune_files,
    commune_toml,
    prefixes,
    village_point,
    write_province,
)

QUANG_TRI = 44
VINH_THUY = 19405


def check_config_process(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", "check-config", str(path)],
                          capture_output=True, text=True, timeout=120, check=False)


def one_line(refused: subprocess.CompletedProcess[str]) -> str:
    """What a refused check said: exactly one line, with status 2 and no traceback."""
    assert refused.returncode == 2, (refused.stdout, refused.stderr)
    assert "Traceback" not in refused.stderr
    lines = refused.stderr.splitlines()
    assert len(lines) == 1, refused.stderr
    assert lines[0].startswith("safechild: ")
    return lines[0]


def refused(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_province(path)
    text = str(caught.value)
    assert "\n" not in text
    return text


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


# The official list -----------------------------------------------------------------------

def test_the_official_list_has_the_34_provinces_and_their_communes() -> None:
    provinces = official_units.provinces()
    assert len(provinces) == 34
    units = [u for p in provinces for u in official_units.units_of(p.code)]
    assert 3_300 <= len(units) <= 3_400
    assert {u.kind for u in units} == {"commune", "ward", "special_zone"}
    assert official_units.province(QUANG_TRI) == official_units.OfficialProvince(
        QUANG_TRI, "Quảng Trị")
    # The demo commune's name is a real one: Xã Vĩnh Thủy of Quảng Trị.
    vinh_thuy = official_units.unit(VINH_THUY)
    assert vinh_thuy == official_units.OfficialUnit(VINH_THUY, "Xã Vĩnh Thủy", "Vĩnh Thủy",
                                                    "commune", QUANG_TRI)
    assert official_units.unit(99_999_999) is None
    assert official_units.units_of(3) == ()


def test_names_are_found_without_marks_case_or_kind_and_when_misspelt() -> None:
    for typed in ("vinh thuy", "VĨNH THỦY", "xa vinh thuy", "Vinh Thuyy", "  vinh   thuy "):
        assert official_units.nearest_units(typed, QUANG_TRI)[0].code == VINH_THUY, typed
    assert official_units.unit_named("Xã Vĩnh Thủy", QUANG_TRI) == official_units.unit(
        VINH_THUY)
    assert official_units.unit_named("Vĩnh Thủy", QUANG_TRI) is not None
    # Only the official spelling is the name; "Thuỷ" (the newer tone place) is near it.
    assert official_units.unit_named("Vĩnh Thuỷ", QUANG_TRI) is None
    assert official_units.nearest_units("Vĩnh Thuỷ", QUANG_TRI)[0].code == VINH_THUY
    assert official_units.nearest_units("zzzz qqq", QUANG_TRI) == ()
    assert official_units.province_named("Hà Nội") == official_units.province_named(
        "Thành phố Hà Nội")
    assert [p.code for p in official_units.nearest_provinces("tinh quang tri")] == [QUANG_TRI]


# A province of 100 communes --------------------------------------------------------------

def test_a_province_of_100_communes_loads_and_check_config_finds_nothing_missing(
        tmp_path: Path) -> None:
    path = write_province(tmp_path, communes=100)
    started = time.perf_counter()
    province = load_province(path)
    took = time.perf_counter() - started
    assert isinstance(province, ProvinceConfig)
    assert (province.name, province.code) == ("Thanh Hóa", THANH_HOA)
    assert len(province.communes) == 100 and len(province.files) == 100
    assert all(len(c.people) == PEOPLE_PER_COMMUNE for c in province.communes)
    assert sum(len(c.people) for c in province.communes) == 3_000
    assert [p.key for p in province.people] == ["cpu", "swc", "province_admin"]
    official = official_units.units_of(THANH_HOA)[:100]
    assert [c.official_code for c in province.communes] == [u.code for u in official]
    assert [c.name for c in province.communes] == [u.short_name for u in official]
    assert len({c.code_prefix for c in province.communes}) == 100
    assert province.commune_by_code(official[7].code) == province.communes[7]
    assert province.commune(province.communes[3].key) == province.communes[3]
    assert province.commune_by_prefix(province.communes[5].code_prefix.lower()) \
        == province.communes[5]
    assert load_config(path) == province
    assert all(gaps(c, province.people) == () for c in province.communes)
    # The figure for the note (no timed assertion: bench/province.py measures).
    print(f"load_province, 100 communes, 3,000 people: {took:.3f} s")

    checked = check_config_process(path)
    assert checked.returncode == 0, (checked.stdout, checked.stderr)
    lines = checked.stdout.splitlines()
    assert lines[0].startswith("province Thanh Hóa (38): 100 communes, 3 province people")
    assert lines[-1] == "nothing missing in 100 communes"
    assert sum(line.endswith("nothing missing") for line in lines) == 100
    assert checked.stderr == ""


def test_the_top_of_a_communes_chain_may_be_a_province_person(tmp_path: Path) -> None:
    """`leader#province` is the province file's child-protection unit: valid through the
    province, refused in the commune file alone (nobody there carries the tag)."""
    path = write_province(tmp_path, communes=2)
    assert load_province(path).communes[0].levels[-1] == ("leader#chairman", "leader#province")
    with pytest.raises(ConfigError, match="escalation level 4: unknown recipient "
                                          "'leader#province'"):
        load_commune(commune_files(tmp_path)[0])


# Refused at start ------------------------------------------------------------------------

def test_a_misspelt_commune_is_refused_with_the_nearest_official_name(tmp_path: Path) -> None:
    path = write_province(tmp_path, communes=10)
    file = commune_files(tmp_path)[4]
    unit = official_units.unit(int(file.stem))
    assert unit is not None
    typo = unit.short_name[:-1]  # "Mường Lát" -> "Mường Lá"
    edit(file, f'name = "{unit.short_name}"', f'name = "{typo}"')
    line = one_line(check_config_process(path))
    assert line.startswith(f"safechild: {file}: commune: {typo!r} is no official commune "
                           f"of Thanh Hóa; did you mean {unit.short_name!r} ({unit.code}")
    assert refused(path) in line


def test_a_name_without_marks_is_refused_with_the_official_spelling(tmp_path: Path) -> None:
    path = write_province(tmp_path, communes=3)
    file = commune_files(tmp_path)[1]
    unit = official_units.unit(int(file.stem))
    assert unit is not None
    plain = without_marks(unit.short_name)
    assert plain != unit.short_name
    edit(file, f'name = "{unit.short_name}"', f'name = "{plain}"')
    assert refused(path) == (f"{file}: commune: {plain!r} is no official commune of Thanh "
                             f"Hóa; did you mean {unit.short_name!r} ({unit.code})?")


def test_a_commune_of_another_province_is_refused(tmp_path: Path) -> None:
    path = write_province(tmp_path, communes=5)
    file = commune_files(tmp_path)[0]
    vinh_thuy = official_units.unit(VINH_THUY)
    assert vinh_thuy is not None
    (tmp_path / "communes" / "vinh-thuy.toml").write_text(
        commune_toml(vinh_thuy, 50, "VTQ"), encoding="utf-8")
    assert refused(path) == (f"{tmp_path / 'communes' / 'vinh-thuy.toml'}: commune: code "
                             f"{VINH_THUY} is Xã Vĩnh Thủy of Quảng Trị, not of Thanh Hóa: "
                             f"this file belongs to another province")
    # The name alone, with a code of this province: the other province is named too.
    (tmp_path / "communes" / "vinh-thuy.toml").unlink()
    edit(file, 'name = "', 'name = "Vĩnh Thủy" #')
    text = refused(path)
    assert "'Vĩnh Thủy' is no official commune of Thanh Hóa" in text
    assert "('Vĩnh Thủy' (19405, Quảng Trị) is another province's)" in text


def test_a_code_that_is_not_the_names_is_refused(tmp_path: Path) -> None:
    path = write_province(tmp_path, communes=3)
    first, second = commune_files(tmp_path)[:2]
    edit(first, f"code = {int(first.stem)}\n", f"code = {int(second.stem)}\n")
    unit = official_units.unit(int(first.stem))
    assert unit is not None
    assert refused(path) == (f"{first}: commune: code {int(second.stem)} is not {unit.name}'s: "
                             f"its official code is {unit.code}")
    edit(first, f"code = {int(second.stem)}\n", "")
    assert refused(path) == (f"{first}: commune: missing 'code', the official code of the "
                             f"commune ({unit.name} is {unit.code})")


def test_case_code_prefixes_are_unique_in_the_province(tmp_path: Path) -> None:
    path = write_province(tmp_path, communes=4)
    first, _, third = commune_files(tmp_path)[:3]
    prefix = load_commune_prefix(first)
    other = load_commune_prefix(third)
    # Case codes are typed back in any case: "ab" is "AB".
    edit(third, f'code_prefix = "{other}"', f'code_prefix = "{prefix.lower()}"')
    assert refused(path) == (f"{third}: case-code prefix {prefix!r} is also {first.name}'s: "
                             f"each commune of a province needs its own")
    edit(third, f'code_prefix = "{prefix.lower()}"', 'code_prefix = "VT2"')
    assert refused(path).startswith(f"{third}: commune: code_prefix 'VT2' must be 1 to 6 "
                                    f"letters A-Z")


def load_commune_prefix(file: Path) -> str:
    return str(tomllib.loads(file.read_text(encoding="utf-8"))["commune"]["code_prefix"])


def test_two_files_of_one_commune_are_refused(tmp_path: Path) -> None:
    path = write_province(tmp_path, communes=2)
    first = commune_files(tmp_path)[0]
    copy = tmp_path / "communes" / "zz-copy.toml"
    copy.write_text(first.read_text(encoding="utf-8").replace('code_prefix = "', 'code_prefix'
                                                              ' = "Z', 1), encoding="utf-8")
    assert refused(path).startswith(f"{copy}: commune key ")
    edit(copy, 'key = "', 'key = "other-')
    assert refused(path) == (f"{copy}: official code {int(first.stem)} is also "
                             f"{first.name}'s: each commune of a province needs its own")


@pytest.mark.parametrize(("old", "new", "expected"), [
    ('name = "Thanh Hóa"', 'name = "Thanh Hoa"',
     "province: 'Thanh Hoa' is no official province; did you mean 'Thanh Hóa' (code 38)?"),
    ("code = 38", "code = 44", "province: code 44 is not Thanh Hóa's: its official code is 38"),
    ("code = 38\n", "\n", "province: missing 'code', the official code of the province "
                         "(Thanh Hóa is 38)"),
    ('role = "admin"', 'role = "collaborator"',
     "person province_admin: a province person is one of officer, police, leader, admin, "
     "not 'collaborator': collaborators belong in their commune's file"),
    ('key = "swc"', 'village = "v1"\nkey = "swc"',
     "person swc: unknown field(s) village"),
    ("[province]", "[provinc]\n[province]", "the province file: unknown field(s) provinc; "
                                           "did you mean province?"),
])
def test_a_wrong_province_file_is_refused_in_one_line(tmp_path: Path, old: str, new: str,
                                                      expected: str) -> None:
    path = write_province(tmp_path, communes=1)
    edit(path, old, new)
    assert refused(path).startswith(f"{path}: {expected}")


def test_a_province_without_commune_files_is_refused(tmp_path: Path) -> None:
    path = write_province(tmp_path, communes=1)
    for file in commune_files(tmp_path):
        file.unlink()
    assert refused(path) == (f"{path}: no commune files (*.toml) in {tmp_path / 'communes'}: "
                             f"put one file per commune there, or set [province] communes to "
                             f"their folder")


def test_a_toml_mistake_in_a_commune_file_names_it_once(tmp_path: Path) -> None:
    path = write_province(tmp_path, communes=2)
    file = commune_files(tmp_path)[1]
    edit(file, "[commune]", "[commune")
    text = refused(path)
    assert text.startswith(f"{file}, line ") and text.count(str(file)) == 1


# Where villages are ------------------------------------------------------------------------

def test_villages_may_say_where_they_are(tmp_path: Path) -> None:
    """`latitude` and `longitude` on a village (degrees, whole or not): a citizen who shares
    their location finds their commune by them. Villages without them stay as they were."""
    raw = tomllib.loads(DEMO_CONFIG.read_text(encoding="utf-8"))
    demo = parse_commune(raw)
    assert demo.village_points == {}
    raw["villages"][0] |= {"latitude": 19.8, "longitude": 105.78}
    raw["villages"][2] |= {"latitude": 20, "longitude": 106}
    placed = parse_commune(raw)
    assert placed.village_points == {"dong": (19.8, 105.78), "nam": (20.0, 106.0)}
    assert dataclasses.replace(placed, village_points={}) == demo
    # The generated province: every village of every commune placed, no two alike.
    province = load_province(write_province(tmp_path, communes=3))
    assert [c.village_points["v2"] for c in province.communes] == [
        village_point(n, 2) for n in range(3)]
    points = [p for c in province.communes for p in c.village_points.values()]
    assert len(points) == len(set(points)) == 30
    assert all(19.3 <= lat <= 20.6 and 104.4 <= lon <= 106.1 for lat, lon in points)


@pytest.mark.parametrize(("new", "expected"), [
    ("latitude = {lat}\n", "'latitude' without 'longitude': give both (like latitude = 19.8 "
                           "and longitude = 105.78), or neither"),
    ("longitude = {lon}\n", "'longitude' without 'latitude': give both (like latitude = 19.8 "
                            "and longitude = 105.78), or neither"),
    ("latitude = 200\nlongitude = {lon}\n",
     "'latitude' must be a number of degrees from -90 to 90 (like 19.8), not 200"),
    ("latitude = {lat}\nlongitude = -181\n",
     "'longitude' must be a number of degrees from -180 to 180 (like 105.78), not -181"),
    ("latitude = {lon}\nlongitude = {lat}\n",
     "'latitude' must be a number of degrees from -90 to 90 (like 19.8), not {lon}: are "
     "latitude and longitude swapped?"),
    ('latitude = "{lat}"\nlongitude = {lon}\n',
     "'latitude' must be a number of degrees from -90 to 90 (like 19.8), not '{lat}'"),
    ("latitude = nan\nlongitude = {lon}\n",
     "'latitude' must be a number of degrees from -90 to 90 (like 19.8), not nan"),
    ("latitude = {lat}\nlongitude = true\n",
     "'longitude' must be a number of degrees from -180 to 180 (like 105.78), not True"),
])
def test_a_village_placed_wrong_is_refused_in_one_line(tmp_path: Path, new: str,
                                                       expected: str) -> None:
    path = write_province(tmp_path, communes=2)
    file = commune_files(tmp_path)[1]
    lat, lon = village_point(1, 2)
    edit(file, f"latitude = {lat}\nlongitude = {lon}\n", new.format(lat=lat, lon=lon))
    assert refused(path) == f"{file}: village v2: {expected.format(lat=lat, lon=lon)}"


# The single commune file -----------------------------------------------------------------

def test_the_demo_commune_file_loads_as_before() -> None:
    demo = load_commune(DEMO_CONFIG)
    assert load_config(DEMO_CONFIG) == demo
    assert parse_commune(tomllib.loads(DEMO_CONFIG.read_text(encoding="utf-8"))) == demo
    assert demo.official_code is None
    assert (demo.key, demo.name, demo.code_prefix) == ("vinh-thuy", "Vĩnh Thủy", "VT")


def test_a_single_commune_file_may_give_its_official_code(tmp_path: Path) -> None:
    raw = tomllib.loads(DEMO_CONFIG.read_text(encoding="utf-8"))
    demo = parse_commune(raw)
    raw["commune"]["code"] = VINH_THUY
    assert parse_commune(raw) == dataclasses.replace(demo, official_code=VINH_THUY)
    raw["commune"]["code"] = "19405"
    assert parse_commune(raw).official_code == VINH_THUY
    raw["commune"]["code"] = 19363
    with pytest.raises(ConfigError, match="commune: code 19363 is Xã Vĩnh Linh \\(Quảng Trị\\), "
                                          "not 'Vĩnh Thủy'"):
        parse_commune(raw)
    raw["commune"]["code"] = 1
    with pytest.raises(ConfigError, match="commune: code 1 is no official commune's; did you "
                                          "mean 'Vĩnh Thủy' \\(19405, Quảng Trị\\)"):
        parse_commune(raw)
    raw["commune"]["code"] = "x1"
    with pytest.raises(ConfigError, match="'code' must be the official code of the commune"):
        parse_commune(raw)


def test_load_commune_refuses_a_province_file(tmp_path: Path) -> None:
    path = write_province(tmp_path, communes=1)
    with pytest.raises(ConfigError, match="is a province file \\(\\[province\\]\\), not a "
                                          "commune file"):
        load_commune(path)
    with pytest.raises(ConfigError, match="not a province file"):
        load_province(DEMO_CONFIG)


# check-config ----------------------------------------------------------------------------

def test_check_config_reports_a_commune_without_police(tmp_path: Path) -> None:
    unit = official_units.unit(VINH_THUY)
    assert unit is not None
    file = tmp_path / "vinh-thuy.toml"
    # Alone, the commune file's chain cannot end at the province person: end it at the
    # chairman.
    text = commune_toml(unit, 0, "VT", police=False).replace(
        '["leader#chairman", "leader#province"]', '["leader#chairman"]')
    file.write_text(text.replace('["officer", "police#chief"]', '["officer"]'),
                    encoding="utf-8")
    commune = load_commune(file)
    assert [g.kind for g in gaps(commune)] == [NO_POLICE, TARGET_MATCHES_NOBODY]
    checked = check_config_process(file)
    assert checked.returncode == 1, (checked.stdout, checked.stderr)
    assert checked.stdout.splitlines() == [
        "vinh-thuy.toml: Xã Vĩnh Thủy (19405), 27 people: 2 missing",
        "  - no police: nobody receives the police cases",
        "  - nobody is police@duty (routing rule 2, routing rule 3, escalation level 1)",
        "something is missing in 1 of 1 commune",
    ]


def test_check_config_reports_what_is_missing_per_commune_of_a_province(
        tmp_path: Path) -> None:
    path = write_province(tmp_path, communes=3)
    first, second, _ = commune_files(tmp_path)
    edit(first, "on_duty = true", "on_duty = false")
    edit(second, 'village = "v3"', 'village = "v4"')
    edit(second, 'village = "v3"', 'village = "v4"')
    out = io.StringIO()
    assert check_config(path, out=out) == 1
    lines = out.getvalue().splitlines()
    first_unit, second_unit = (official_units.unit(int(f.stem)) for f in (first, second))
    assert first_unit is not None and second_unit is not None
    assert lines[1:] == [
        f"{first.name}: {first_unit.name} ({first_unit.code}), 30 people: 2 missing",
        "  - no officer on duty (on_duty = true): new cases go to all 3 officers",
        "  - nobody is officer@duty (routing rule 1, escalation level 1)",
        f"{second.name}: {second_unit.name} ({second_unit.code}), 30 people: 1 missing",
        "  - village v3 (Thôn 3) has no collaborator",
        lines[6],
        "something is missing in 2 of 3 communes",
    ]
    assert lines[6].endswith("30 people: nothing missing")


def test_check_config_without_a_path_checks_safechild_config(tmp_path: Path) -> None:
    path = write_province(tmp_path, communes=2)
    out = io.StringIO()
    assert check_config(None, {"SAFECHILD_CONFIG": str(path)}, out=out) == 0
    assert out.getvalue().splitlines()[-1] == "nothing missing in 2 communes"
    with pytest.raises(ConfigError, match="SAFECHILD_CONFIG: no such file"):
        check_config(None, {"SAFECHILD_CONFIG": str(tmp_path / "none.toml")}, out=out)
    # The demo commune: three of its four villages have no collaborator.
    out = io.StringIO()
    assert check_config(None, {}, out=out) == 1
    assert out.getvalue().splitlines()[-1] == "something is missing in 1 of 1 commune"


def test_check_config_names_a_missing_path(tmp_path: Path) -> None:
    line = one_line(check_config_process(tmp_path / "nowhere.toml"))
    assert line == f"safechild: check-config: no such file {tmp_path / 'nowhere.toml'}"


def test_generated_prefixes_are_unique_letters_for_the_largest_province() -> None:
    for code in (THANH_HOA, 79):
        units = official_units.units_of(code)
        found = prefixes(units)
        assert len(set(found.values())) == len(units)
        assert all(p.isalpha() and p.isascii() and 1 <= len(p) <= 6 for p in found.values())


@pytest.mark.parametrize(("table", "field"), [("delivery", ""),
                                              ("retention", "delivered_days = 3"),
                                              ("limits", "reports_per_hour = 9")])
def test_process_wide_settings_in_a_commune_file_are_refused(tmp_path: Path,
                                                            table: str, field: str) -> None:
    """One process serves every commune: a commune's own [delivery], [limits] or (but for
    the closed cases' period) [retention] would be ignored, so it is refused, pointing at
    the province file."""
    path = write_province(tmp_path, communes=2)
    second = commune_files(tmp_path)[1]
    second.write_text(second.read_text(encoding="utf-8") + f"\n[{table}]\n{field}\n",
                      encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_province(path)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(str(second)) and f"[{table}]" in message
    assert path.name in message


def test_the_province_file_sets_delivery_and_retention(tmp_path: Path) -> None:
    path = write_province(tmp_path, communes=1)
    path.write_text(path.read_text(encoding="utf-8")
                    + '\n[retention]\nfiles_days = 2\n\n[delivery]\nreroute_after = "5m"\n',
                    encoding="utf-8")
    province = load_province(path)
    assert province.retention.files_days == 2
    assert province.delivery.reroute_after.total_seconds() == 300


@pytest.mark.parametrize(("digest", "named"), [
    ("per_day = 0", "digest: per_day"), ("quiet = 1", "digest:"),
    ('quiet_hours = ["22:00"]', "digest: quiet_hours")])
def test_a_wrong_province_digest_is_refused_in_one_line(tmp_path: Path, digest: str,
                                                        named: str) -> None:
    path = write_province(tmp_path, communes=1)
    path.write_text(path.read_text(encoding="utf-8") + f"\n[digest]\n{digest}\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_province(path)
    assert "\n" not in str(refused.value) and named in str(refused.value)
