"""Vietnam's official administrative units since 1 July 2025: 34 provinces and their ~3,300
communes, wards and special zones, with the codes of the General Statistics Office (base
layer: the only module that knows the `vietnam-provinces` package, whose data travels
inside its wheel, so nothing is fetched at run time).

Names are compared as people type them: without marks and case ("vinh thuy" finds
"Vĩnh Thủy"), with or without the kind in front ("Xã Vĩnh Thủy", "Vĩnh Thủy").
"""

from __future__ import annotations

import difflib
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Final

from vietnam_provinces import Province as _Province
from vietnam_provinces import VietNamDivisionType as _Kind
from vietnam_provinces import Ward as _Ward
from vietnam_provinces import __data_version__, __version__

from bot.domain.folding import without_marks

# The package's release and the date its data was taken from the statistics office.
SOURCE: Final[str] = f"vietnam-provinces {__version__} (data of {__data_version__})"

COMMUNE, WARD, SPECIAL_ZONE = "commune", "ward", "special_zone"
_KINDS: Final[dict[_Kind, tuple[str, str]]] = {
    _Kind.XA: (COMMUNE, "Xã "),
    _Kind.PHUONG: (WARD, "Phường "),
    _Kind.DAC_KHU: (SPECIAL_ZONE, "Đặc khu "),
}
# What may stand before a province's own name ("Thành phố Hà Nội", "Tỉnh Quảng Trị").
_PROVINCE_PREFIXES: Final[tuple[str, ...]] = ("Thành phố ", "Tỉnh ")
# difflib's default, as bot/domain/names.py uses it: "vinh thuyy" finds "Vĩnh Thủy".
CUTOFF: Final[float] = 0.6


@dataclass(frozen=True)
class OfficialProvince:
    code: int
    # As the statistics office writes it: "Quảng Trị", "Thành phố Hà Nội".
    name: str

    @property
    def short_name(self) -> str:
        """"Hà Nội" for "Thành phố Hà Nội"."""
        return _strip(self.name, _PROVINCE_PREFIXES)


@dataclass(frozen=True)
class OfficialUnit:
    """A commune (xã), ward (phường) or special zone (đặc khu): one unit of the commune
    level, which is the level SafeChild calls a commune."""

    code: int
    # As the statistics office writes it: "Xã Vĩnh Thủy".
    name: str
    # Without its kind: "Vĩnh Thủy" (unique within a province).
    short_name: str
    kind: str
    province_code: int


def _strip(name: str, prefixes: tuple[str, ...]) -> str:
    for prefix in prefixes:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


@cache
def _provinces() -> dict[int, OfficialProvince]:
    return {int(p.code): OfficialProvince(int(p.code), p.name)
            for p in sorted(_Province.iter_all(), key=lambda p: int(p.code))}


@cache
def _units() -> dict[int, OfficialUnit]:
    units: dict[int, OfficialUnit] = {}
    for ward in sorted(_Ward.iter_all(), key=lambda w: int(w.code)):
        kind, prefix = _KINDS[ward.division_type]
        units[int(ward.code)] = OfficialUnit(int(ward.code), ward.name,
                                             _strip(ward.name, (prefix,)), kind,
                                             int(ward.province_code))
    return units


@cache
def _by_province() -> dict[int, tuple[OfficialUnit, ...]]:
    grouped: dict[int, list[OfficialUnit]] = {code: [] for code in _provinces()}
    for unit in _units().values():
        grouped[unit.province_code].append(unit)
    return {code: tuple(units) for code, units in grouped.items()}


def provinces() -> tuple[OfficialProvince, ...]:
    """The 34 provinces, by code."""
    return tuple(_provinces().values())


def province(code: int) -> OfficialProvince | None:
    return _provinces().get(code)


def units_of(province_code: int) -> tuple[OfficialUnit, ...]:
    """The communes, wards and special zones of a province, by code (none for a code that
    is not a province's)."""
    return _by_province().get(province_code, ())


def unit(code: int) -> OfficialUnit | None:
    return _units().get(code)


def _key(name: str) -> str:
    """How two spellings of a name compare: marks, case, repeated spaces dropped."""
    return " ".join(without_marks(unicodedata.normalize("NFC", name)).split())


def _unit_keys(candidate: OfficialUnit) -> tuple[str, str]:
    return _key(candidate.short_name), _key(candidate.name)


def same_name(written: str, official: str) -> bool:
    """`written` is `official` exactly (as Unicode composes it, spaces trimmed)."""
    return " ".join(unicodedata.normalize("NFC", written).split()) == official


def unit_named(name: str, province_code: int) -> OfficialUnit | None:
    """The unit of the province whose official name this is exactly, with or without its
    kind ("Vĩnh Thủy" or "Xã Vĩnh Thủy"); None for any other spelling."""
    for candidate in units_of(province_code):
        if same_name(name, candidate.short_name) or same_name(name, candidate.name):
            return candidate
    return None


def nearest_units(name: str, province_code: int | None = None,
                  limit: int = 3) -> tuple[OfficialUnit, ...]:
    """The units (of one province, or of the whole country) whose names are nearest to
    `name` typed without marks, case or kind, or misspelt: those that fold to the same
    letters first, then the closest, at most `limit`."""
    pool = units_of(province_code) if province_code is not None else tuple(_units().values())
    wanted = _key(name)
    same = [u for u in pool if wanted in _unit_keys(u)]
    if same:
        return tuple(same[:limit])
    by_key: dict[str, list[OfficialUnit]] = {}
    for candidate in pool:
        for key in _unit_keys(candidate):
            by_key.setdefault(key, []).append(candidate)
    found: list[OfficialUnit] = []
    for key in difflib.get_close_matches(wanted, list(by_key), n=limit * 2, cutoff=CUTOFF):
        found.extend(u for u in by_key[key] if u not in found)
    return tuple(found[:limit])


def province_named(name: str) -> OfficialProvince | None:
    """The province whose official name this is exactly, with or without "Thành phố" or
    "Tỉnh" in front."""
    written = _strip(" ".join(unicodedata.normalize("NFC", name).split()), _PROVINCE_PREFIXES)
    return next((p for p in provinces() if written == p.short_name), None)


def nearest_provinces(name: str, limit: int = 3) -> tuple[OfficialProvince, ...]:
    """The provinces whose names are nearest to `name` (marks, case and prefix aside)."""
    wanted = _strip(_key(name), ("thanh pho ", "tinh "))
    by_key = {_key(p.short_name): p for p in provinces()}
    if wanted in by_key:
        return (by_key[wanted],)
    return tuple(by_key[k] for k in difflib.get_close_matches(wanted, list(by_key), n=limit,
                                                              cutoff=CUTOFF))
