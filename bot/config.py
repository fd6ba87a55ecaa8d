"""The commune configuration (TOML) and the process settings taken from the environment."""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from bot.domain.cases import CASE_TYPES, DEADLINE_STEPS, URGENCIES
from bot.domain.commune import (
    CHANNELS,
    Closing,
    CommuneConfig,
    PersonConfig,
    Privacy,
    Retention,
    RoutingRule,
    SenderLimits,
)
from bot.domain.commune_calendar import MAX_TITLE, CalendarEvent, parse_calendar
from bot.domain.delivery import DeliveryPolicy
from bot.domain.names import nearest, unknown, unknown_fields
from bot.domain.province import ProvinceConfig
from bot.domain.roles import CONFIGURED, STAFF, Role
from bot.domain.top_digest import DEFAULT_QUIET, MAX_PER_DAY, DigestPace
from bot.domain.work_hours import Duration
from bot.i18n import available_locales
from bot.official_units import (
    OfficialUnit,
    nearest_provinces,
    nearest_units,
    province,
    province_named,
    unit,
    unit_named,
)

DEMO_CONFIG = Path(__file__).parent / "demo_commune.toml"
DEFAULT_CALENDAR_PATH = Path(__file__).parent / "default_calendar.toml"
# Which of those events a province's own calendar has, and what differs for it.
PROVINCE_CALENDAR_PATH = Path(__file__).parent / "default_province_calendar.toml"


class ConfigError(ValueError):
    pass


def load_commune(path: Path) -> CommuneConfig:
    """Read and check the commune file; every mistake is a one-line ConfigError naming the
    file (and the line and column of a TOML syntax error) or the table and field."""
    raw = _read(path)
    if "province" in raw:
        raise ConfigError(f"{path} is a province file ([province]), not a commune file")
    return parse_commune(raw)


def load_config(path: Path, what: str = "SAFECHILD_CONFIG") -> CommuneConfig | ProvinceConfig:
    """What SAFECHILD_CONFIG points at: a province file (it has a `[province]` table) with
    its commune files, or one commune file, read exactly as `load_commune` reads it. `what`
    names where the path came from in the error of a missing file."""
    raw = _read(path, what)
    if "province" in raw:
        return _province(raw, path)
    return parse_commune(raw)


def load_province(path: Path, what: str = "SAFECHILD_CONFIG") -> ProvinceConfig:
    """Read and check a province file and every commune file of its folder."""
    raw = _read(path, what)
    if "province" not in raw:
        raise ConfigError(f"{path}: not a province file: it has no [province] table")
    return _province(raw, path)


def _read(path: Path, what: str = "SAFECHILD_CONFIG") -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        hint = (": point it at the commune file (unset, the demo commune is used)"
                if what == "SAFECHILD_CONFIG" else "")
        raise ConfigError(f"{what}: no such file {path}{hint}") from None
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path} "
                          f"({(exc.strerror or type(exc).__name__).lower()})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_toml_error(path, exc)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: byte {exc.start + 1} is not UTF-8 text: save the file "
                          f"as UTF-8") from None


def _toml_error(path: Path, exc: tomllib.TOMLDecodeError) -> str:
    """"commune.toml, line 3, column 8: invalid value": tomllib (before Python 3.14) puts
    the place only in its message."""
    text = str(exc)
    place = re.search(r"\s*\(at line (\d+), column (\d+)\)$", text)
    if place is not None:
        what = text[:place.start()]
        where = f"line {place.group(1)}, column {place.group(2)}"
    else:
        what, _, rest = text.partition(" (at ")
        where = rest.rstrip(")") or "somewhere"
    return f"{path}, {where}: not valid TOML: {what[:1].lower()}{what[1:]}"


TOP_TABLES = ("commune", "villages", "people", "routing", "deadlines", "escalation",
              "delivery", "retention", "limits", "calendar", "closing", "privacy")
COMMUNE_FIELDS = ("key", "name", "code", "code_prefix", "officer_phone", "trusted_addresses",
                  "working_hours", "telegram_alert_group")
VILLAGE_FIELDS = ("key", "name", "latitude", "longitude")
PERSON_FIELDS = ("key", "role", "name", "phone", "village", "on_duty", "tags", "language",
                 "telegram_id", "zalo_id", "prefers")
ROUTING_FIELDS = ("rules", "police_types", "tell_village_collaborator")
RULE_FIELDS = ("types", "urgency", "notify")
ESCALATION_FIELDS = frozenset({"levels", "reminders_at", "top_reminders_per_day",
                               "quiet_hours"})
CLOSING_FIELDS = ("high_risk_needs_chairman", "chairman")


def parse_commune(raw: Mapping[str, Any], province_people: tuple[PersonConfig, ...] = (),
                  province_code: int | None = None) -> CommuneConfig:
    """Check every table and field of a commune file: an unknown field or a misspelt name
    (a role, a village, a routing target) is refused with the nearest valid one. A commune
    of a province (`province_code`) may also route to the province's own people, and its
    name and code must be those of one of the province's official communes."""
    _check_fields(raw, "the commune file", TOP_TABLES, shape="top level")
    c = _check_fields(raw.get("commune", {}), "commune", COMMUNE_FIELDS,
                      required=("key", "name", "code_prefix"))
    villages, village_points = _villages(raw.get("villages", []))
    people = _people(raw.get("people", []), [key for key, _ in villages])
    routing = _check_fields(raw.get("routing", {}), "routing", ROUTING_FIELDS)
    targets = _targets((*people, *province_people))
    rules = tuple(_rule(r, f"routing.rules #{i + 1}", targets)
                  for i, r in enumerate(_array(routing.get("rules", []), "routing.rules")))
    deadlines = _deadlines(raw.get("deadlines", {}))
    start, end = _times(c.get("working_hours", ["07:30", "17:00"]), "commune.working_hours",
                        "[\"07:30\", \"17:00\"]")
    esc = _check_fields(raw.get("escalation", {}), "escalation", ESCALATION_FIELDS)
    levels = _levels(esc.get("levels", []), targets)
    key, name = _text(c, "key", "commune"), _text(c, "name", "commune")
    return CommuneConfig(
        key=key, name=name,
        official_code=_official_code(c, name, province_code),
        village_points=village_points,
        code_prefix=_text(c, "code_prefix", "commune"),
        officer_phone=_text(c, "officer_phone", "commune", ""),
        trusted_addresses=_texts(c, "trusted_addresses", "commune"),
        working_hours=(start, end),
        villages=villages, people=people, rules=rules,
        police_types=frozenset(_names(routing, "police_types", "routing", "case type",
                                      CASE_TYPES)),
        tell_village_collaborator=_flag(routing, "tell_village_collaborator", "routing", True),
        deadlines=deadlines, levels=levels,
        reminders_at=_reminders_at(esc.get("reminders_at", [0.5, 0.9])),
        top_digest=_top_digest(esc),
        telegram_alert_group=_group_id(c.get("telegram_alert_group")),
        retention=_retention(raw.get("retention", {})),
        limits=_limits(raw.get("limits", {})),
        **_calendar(raw.get("calendar", {})),
        delivery=_delivery(raw.get("delivery", {})),
        closing=_closing(raw.get("closing", {}), targets),
        privacy=_privacy(raw.get("privacy", {})),
    )


def _privacy(raw: Any) -> Privacy:
    """[privacy]: `protect_content` (on unless false) sends alerts and case cards on
    Telegram so that they cannot be forwarded or saved."""
    table = _check_fields(raw, "privacy", ("protect_content",))
    return Privacy(protect_content=_flag(table, "protect_content", "privacy",
                                         Privacy.protect_content))


def _official_code(c: Mapping[str, Any], name: str, province_code: int | None) -> int | None:
    """`[commune] code`: the statistics office's code (19405, or "19405" as the office
    writes it). A commune of a province needs one, of the official unit of its name in that
    province; a single commune file may leave it out, and when it gives one it must be the
    code of that name."""
    raw = c.get("code")
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw)
    if raw is not None and (isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0):
        raise ConfigError(f"commune: 'code' must be the official code of the commune, a "
                          f"number like 19405, not {raw!r}")
    if province_code is not None:
        _check_official(name, raw, province_code)
        return raw
    if raw is None:
        return None
    official = unit(raw)
    if official is None:
        raise ConfigError(f"commune: code {raw} is no official commune's{_suggest(name)}")
    if not (unit_named(name, official.province_code) == official):
        raise ConfigError(f"commune: code {raw} is {official.name} "
                          f"({_province_name(official.province_code)}), not {name!r}: write "
                          f"name = {official.short_name!r} or the code of {name!r}"
                          f"{_suggest(name, with_code=True)}")
    return raw


def _province_name(code: int) -> str:
    found = province(code)
    return found.name if found is not None else str(code)


def _listed(units: Iterable[OfficialUnit], province_code: int | None = None) -> str:
    """"'Vĩnh Thủy' (19405), 'Vĩnh Linh' (19363)", naming the province of a unit outside
    `province_code`."""
    return ", ".join(
        f"{u.short_name!r} ({u.code}"
        + ("" if u.province_code == province_code else f", {_province_name(u.province_code)}")
        + ")" for u in units)


def _suggest(name: str, province_code: int | None = None, with_code: bool = False) -> str:
    """"; did you mean 'Vĩnh Thủy' (19405)?", the nearest official names, or nothing."""
    near = nearest_units(name, province_code)
    if not near:
        return ""
    if with_code:
        return f" (nearest official names: {_listed(near, province_code)})"
    return f"; did you mean {_listed(near, province_code)}?"


PROVINCE_TOP = ("province", "people", "calendar", "delivery", "retention", "limits",
                "digest")
# What one process does for all its communes: the province file says it, not a commune's.
PROCESS_WIDE = ("delivery", "retention", "limits")
PROVINCE_FIELDS = ("name", "code", "communes")
# A province's own people serve every commune: no village, nobody who only reports.
PROVINCE_PERSON_FIELDS = tuple(f for f in PERSON_FIELDS if f != "village")
PROVINCE_ROLES = tuple(str(role) for role in CONFIGURED if role in STAFF)
# A case code is typed back as letters, a year and a number (bot/domain/cases.CODE_RE).
PREFIX_RE = re.compile(r"[A-Za-z]{1,6}")


def _province(raw: Mapping[str, Any], path: Path) -> ProvinceConfig:
    """The province file and each `*.toml` of its commune folder, each commune checked
    against the official list of the province; a mistake names its file."""
    try:
        name, code, folder = _province_table(raw, path)
        people = _province_people(raw.get("people", []))
        calendar = _calendar(raw.get("calendar", {}), province=True)
        delivery = _delivery(raw.get("delivery", {}))
        retention = _retention(raw.get("retention", {}))
        limits = _limits(raw.get("limits", {}))
        digest = _top_digest(_check_fields(raw.get("digest", {}), "digest",
                                           ("per_day", "quiet_hours")),
                             where="digest", per_day_key="per_day")
    except ConfigError as exc:
        raise ConfigError(_in_file(path, exc)) from None
    files = sorted(folder.glob("*.toml")) if folder.is_dir() else []
    if not files:
        raise ConfigError(f"{path}: no commune files (*.toml) in {folder}: put one file per "
                          f"commune there, or set [province] communes to their folder")
    communes: list[CommuneConfig] = []
    seen: dict[str, dict[object, Path]] = {"key": {}, "code": {}, "prefix": {}}
    for file in files:
        try:
            read = _read(file, "commune file")
            for table in PROCESS_WIDE:
                if table in read and not _commune_own(table, read[table]):
                    also = (f" (only {', '.join(COMMUNE_RETENTION)} may stay in a "
                            f"commune file)" if table == "retention" else "")
                    raise ConfigError(f"[{table}] is the same for every commune of a "
                                      f"province: move it to {path.name}{also}")
            commune = parse_commune(read, people, code)
            if "closed_case_text_days" not in read.get("retention", {}):
                # The province file's period, for the communes that do not set their own.
                commune = replace(commune, retention=replace(
                    commune.retention,
                    closed_case_text_days=retention.closed_case_text_days))
            _check_prefix(commune.code_prefix)
        except ConfigError as exc:
            raise ConfigError(_in_file(file, exc)) from None
        for what, value in (("key", commune.key), ("code", commune.official_code),
                            ("prefix", commune.code_prefix.upper())):
            other = seen[what].setdefault(value, file)
            if other != file:
                label = {"key": "commune key", "code": "official code",
                         "prefix": "case-code prefix"}[what]
                raise ConfigError(f"{file}: {label} {value!r} is also {other.name}'s: each "
                                  f"commune of a province needs its own")
        communes.append(commune)
    return ProvinceConfig(name=name, code=code, people=people, communes=tuple(communes),
                          files=tuple(files), delivery=delivery, retention=retention,
                          limits=limits, digest=digest, **calendar)


def _commune_own(table: str, raw: Any) -> bool:
    """A commune file's [retention] that says only what each commune decides for itself."""
    return (table == "retention" and isinstance(raw, Mapping)
            and set(raw) <= set(COMMUNE_RETENTION))


def _in_file(path: Path, exc: ConfigError) -> str:
    """The error with its file in front (unless it names it already, as a TOML syntax
    error does)."""
    text = str(exc)
    return text if str(path) in text else f"{path}: {text}"


def _province_table(raw: Mapping[str, Any], path: Path) -> tuple[str, int, Path]:
    _check_fields(raw, "the province file", PROVINCE_TOP, shape="top level")
    p = _check_fields(raw["province"], "province", PROVINCE_FIELDS, required=("name",))
    name = _text(p, "name", "province")
    official = province_named(name)
    if official is None:
        near = nearest_provinces(name)
        raise ConfigError(f"province: {name!r} is no official province" + (
            f"; did you mean {', '.join(f'{q.short_name!r} (code {q.code})' for q in near)}?"
            if near else ""))
    code = p.get("code")
    if code is None:
        raise ConfigError(f"province: missing 'code', the official code of the province "
                          f"({official.short_name} is {official.code})")
    if isinstance(code, str) and code.strip().isdigit():
        code = int(code)
    if code != official.code or isinstance(code, bool):
        raise ConfigError(f"province: code {code!r} is not {official.short_name}'s: its "
                          f"official code is {official.code}")
    folder = p.get("communes", "communes")
    if not isinstance(folder, str) or not folder.strip():
        raise ConfigError("province: 'communes' must be a folder name in quotes, like "
                          "\"communes\"")
    return official.name, official.code, path.parent / folder


def _province_people(raw: Any) -> tuple[PersonConfig, ...]:
    for index, table in enumerate(_array(raw, "people")):
        if not isinstance(table, Mapping):
            raise ConfigError(f"people #{index + 1}: expected a table ([[people]])")
        where = f"person {table.get('key', f'#{index + 1}')}"
        _check_fields(table, where, PROVINCE_PERSON_FIELDS, required=("key", "role"))
        if table["role"] in CONFIGURED and table["role"] not in PROVINCE_ROLES:
            raise ConfigError(f"{where}: a province person is one of "
                              f"{', '.join(PROVINCE_ROLES)}, not {table['role']!r}: "
                              f"{table['role']}s belong in their commune's file")
    return _people(raw, [])


def _check_official(name: str, code: int | None, province_code: int) -> None:
    """The commune's name and code are those of one official unit of the province."""
    province_name = _province_name(province_code)
    by_code = unit(code) if code is not None else None
    if by_code is not None and by_code.province_code != province_code:
        raise ConfigError(f"commune: code {code} is {by_code.name} of "
                          f"{_province_name(by_code.province_code)}, not of {province_name}: "
                          f"this file belongs to another province")
    by_name = unit_named(name, province_code)
    if by_name is None:
        near = nearest_units(name, province_code)
        elsewhere = [u for u in nearest_units(name, None, limit=5)
                     if u.province_code != province_code and u.short_name == name]
        raise ConfigError(
            f"commune: {name!r} is no official commune of {province_name}"
            + (f"; did you mean {_listed(near, province_code)}?" if near else "")
            + (f" ({_listed(elsewhere)} is another province's)" if elsewhere else ""))
    if code is None:
        raise ConfigError(f"commune: missing 'code', the official code of the commune "
                          f"({by_name.name} is {by_name.code})")
    if by_code != by_name:
        raise ConfigError(f"commune: code {code} is not {by_name.name}'s: its official code "
                          f"is {by_name.code}")


def _check_prefix(prefix: str) -> None:
    if PREFIX_RE.fullmatch(prefix) is None:
        raise ConfigError(f"commune: code_prefix {prefix!r} must be 1 to 6 letters A-Z: "
                          f"reporters type their case code back (VT-2026-0042)")


def _check_fields(raw: Any, where: str, known: Iterable[str], required: Iterable[str] = (),
                  shape: str | None = None) -> Mapping[str, Any]:
    """`raw` as a table of only `known` fields, with every `required` one."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a table ({shape or f'[{where}]'})")
    known = tuple(known)
    wrong = [name for name in raw if name not in known]
    if wrong:
        raise ConfigError(f"{where}: {unknown_fields(wrong, known)}")
    for name in required:
        if name not in raw:
            raise ConfigError(f"{where}: missing {name!r}")
    return raw


def _array(raw: Any, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: expected an array of tables ([[{where}]])")
    return raw


def _text(table: Mapping[str, Any], name: str, where: str, default: str | None = None) -> str:
    """A text field. The value is never quoted back: it may be a name or a phone number."""
    value = table.get(name, default)
    if not isinstance(value, str) or (default is None and not value.strip()):
        raise ConfigError(f"{where}: {name!r} must be a text in quotes"
                          + ("" if default is not None else ", not empty"))
    return value


def _texts(table: Mapping[str, Any], name: str, where: str) -> tuple[str, ...]:
    value = table.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {name!r} must be a list of texts, like [\"a\", \"b\"]")
    return tuple(value)


def _names(table: Mapping[str, Any], name: str, where: str, what: str,
           valid: Iterable[str]) -> tuple[str, ...]:
    """A list of names each of which must be one of `valid`."""
    valid = tuple(valid)
    names = _texts(table, name, where)
    for value in names:
        if value not in valid:
            raise ConfigError(f"{where}: {name}: {unknown(what, value, valid)}")
    return names


def _flag(table: Mapping[str, Any], name: str, where: str, default: bool) -> bool:
    value = table.get(name, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: {name!r} must be true or false, not {value!r}")
    return value


def _times(raw: Any, where: str, example: str) -> tuple[time, time]:
    try:
        if not isinstance(raw, list) or len(raw) != 2 \
                or not all(isinstance(q, str) and len(q) == 5 for q in raw):
            raise ValueError
        start, end = (time.fromisoformat(q) for q in raw)
    except ValueError:
        raise ConfigError(f"{where}: two times like {example}, not {raw!r}") from None
    return start, end


def _villages(raw: Any) -> tuple[tuple[tuple[str, str], ...], dict[str, tuple[float, float]]]:
    """The villages (key, name) in the file's order, and where those that say it are."""
    villages: list[tuple[str, str]] = []
    points: dict[str, tuple[float, float]] = {}
    for index, table in enumerate(_array(raw, "villages")):
        where = f"villages #{index + 1}"
        table = _check_fields(table, where, VILLAGE_FIELDS, required=("key", "name"),
                              shape="[[villages]]")
        key = _text(table, "key", where)
        if key in (k for k, _ in villages):
            raise ConfigError(f"village {key}: duplicate key")
        villages.append((key, _text(table, "name", f"village {key}")))
        point = _village_point(table, f"village {key}")
        if point is not None:
            points[key] = point
    return tuple(villages), points


def _village_point(table: Mapping[str, Any], where: str) -> tuple[float, float] | None:
    """A village's `latitude` and `longitude` (degrees, as a map app shows them: 19.8,
    105.78), both or neither."""
    given = [name for name in ("latitude", "longitude") if name in table]
    if not given:
        return None
    if len(given) == 1:
        other = "longitude" if given[0] == "latitude" else "latitude"
        raise ConfigError(f"{where}: {given[0]!r} without {other!r}: give both (like "
                          f"latitude = 19.8 and longitude = 105.78), or neither")
    latitude, longitude = table["latitude"], table["longitude"]
    for name, value, limit, like in (("latitude", latitude, 90, "19.8"),
                                     ("longitude", longitude, 180, "105.78")):
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not -limit <= value <= limit:  # NaN is never in range
            swapped = (_degrees(latitude, 180) and _degrees(longitude, 90)
                       and not _degrees(latitude, 90))
            raise ConfigError(f"{where}: {name!r} must be a number of degrees from -{limit} "
                              f"to {limit} (like {like}), not {value!r}"
                              + (": are latitude and longitude swapped?" if swapped else ""))
    return float(latitude), float(longitude)


def _degrees(value: Any, limit: float) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) \
        and -limit <= value <= limit


def _people(raw: Any, village_keys: list[str]) -> tuple[PersonConfig, ...]:
    people: list[PersonConfig] = []
    seen: set[str] = set()
    chats: dict[tuple[str, str], str] = {}
    locales = available_locales()
    for index, table in enumerate(_array(raw, "people")):
        if not isinstance(table, Mapping):
            raise ConfigError(f"people #{index + 1}: expected a table ([[people]])")
        key = _text(table, "key", f"people #{index + 1}")
        where = f"person {key}"
        p = _check_fields(table, where, PERSON_FIELDS, required=("role",))
        if key in seen:
            raise ConfigError(f"{where}: duplicate key")
        seen.add(key)
        if p["role"] not in CONFIGURED:
            raise ConfigError(f"{where}: {unknown('role', p['role'], map(str, CONFIGURED))}")
        if p.get("village") and p["village"] not in village_keys:
            raise ConfigError(f"{where}: {unknown('village', p['village'], village_keys)}")
        if p.get("prefers") and p["prefers"] not in CHANNELS:
            guess = nearest(p["prefers"], CHANNELS) if isinstance(p["prefers"], str) else None
            raise ConfigError(f"{where}: prefers must be one of {', '.join(CHANNELS)}, not "
                              f"{p['prefers']!r}" + (f"; did you mean {guess!r}?" if guess
                                                     else ""))
        language = p.get("language", "vi")
        if language not in locales:
            raise ConfigError(f"{where}: {unknown('language', language, locales)}")
        for channel in ("telegram_id", "zalo_id"):
            if isinstance(p.get(channel), bool) or not isinstance(p.get(channel, ""),
                                                                 int | str):
                raise ConfigError(f"{where}: {channel!r} must be a number or a text")
        people.append(PersonConfig(
            key=key, role=p["role"], name=_text(p, "name", where, key),
            phone=_text(p, "phone", where, "") or None,
            village=p.get("village") or None,
            on_duty=_flag(p, "on_duty", where, False),
            tags=_texts(p, "tags", where), language=language,
            telegram_id=str(p["telegram_id"]) if p.get("telegram_id") else None,
            zalo_id=str(p["zalo_id"]) if p.get("zalo_id") else None,
            prefers=p.get("prefers") or None,
        ))
        person = people[-1]
        for channel, address in (("telegram_id", person.telegram_id),
                                 ("zalo_id", person.zalo_id)):
            if address is not None and (channel, address) in chats:
                # One person, one row per commune: two rows here would be two roles of one
                # chat in one commune, and nobody could tell which one an answer is from.
                raise ConfigError(f"{where}: {channel} {address} is also person "
                                  f"{chats[channel, address]}'s; list each person once")
            if address is not None:
                chats[channel, address] = key
    return tuple(people)


def _targets(people: Iterable[PersonConfig]) -> tuple[str, ...]:
    """Every routing target the people make valid: `role` and `role@duty` for each role a
    case can be routed to, `role#tag` (and `role#tag@duty`) for each tag a person of that
    role carries (see bot/domain/routing.py)."""
    roles = [str(role) for role in CONFIGURED if role in STAFF]
    tagged = sorted({(p.role, tag) for p in people if p.role in roles for tag in p.tags})
    return (*(t for role in roles for t in (role, f"{role}@duty")),
            *(t for role, tag in tagged for t in (f"{role}#{tag}", f"{role}#{tag}@duty")))


def _recipients(raw: Any, where: str, targets: tuple[str, ...]) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(t, str) for t in raw):
        raise ConfigError(f"{where}: a list of recipients, like [\"officer@duty\"], not "
                          f"{raw!r}")
    for target in raw:
        if target not in targets:
            raise ConfigError(f"{where}: {unknown('recipient', target, targets)}")
    return tuple(raw)


def _rule(raw: Any, where: str, targets: tuple[str, ...]) -> RoutingRule:
    rule = _check_fields(raw, where, RULE_FIELDS, required=("notify",),
                         shape="[[routing.rules]]")
    types = _names(rule, "types", where, "case type", ("*", *CASE_TYPES)) \
        if "types" in rule else ("*",)
    urgency = _names(rule, "urgency", where, "urgency", ("*", *URGENCIES)) \
        if "urgency" in rule else ("*",)
    return RoutingRule(types, urgency, _recipients(rule["notify"], f"{where} notify", targets))


def _levels(raw: Any, targets: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError("escalation needs at least one level")
    return tuple(_recipients(level, f"escalation level {index + 1}", targets)
                 for index, level in enumerate(raw))


def _reminders_at(raw: Any) -> tuple[float, ...]:
    if not isinstance(raw, list) or not all(
            isinstance(r, int | float) and not isinstance(r, bool) and 0 < r < 1 for r in raw):
        raise ConfigError(f"escalation: reminders_at must be parts of the deadline between 0 "
                          f"and 1, like [0.5, 0.9], not {raw!r}")
    return tuple(float(r) for r in raw)


def _deadlines(raw: Any) -> dict[str, dict[str, Duration]]:
    table = _check_fields(raw, "deadlines", DEADLINE_STEPS)
    deadlines: dict[str, dict[str, Duration]] = {}
    for step in DEADLINE_STEPS:
        if step not in table:
            raise ConfigError(f"deadline table misses {step!r}")
        where = f"deadlines.{step}"
        durations = _check_fields(table[step], where, URGENCIES, required=URGENCIES)
        deadlines[step] = {}
        for urgency in URGENCIES:
            value = durations[urgency]
            try:
                if not isinstance(value, str):
                    raise ValueError
                deadlines[step][urgency] = Duration.parse(value)
            except ValueError:
                raise ConfigError(f"{where}.{urgency}: a duration like \"15m\", \"12h\", "
                                  f"\"30d\", \"2wh\" or \"3wd\", not {value!r}") from None
    return deadlines


def _top_digest(esc: Mapping[str, Any], where: str = "escalation",
                per_day_key: str = "top_reminders_per_day") -> DigestPace:
    """How often the top of the chain is reminded of the cases waiting on it (at most
    `top_reminders_per_day` digests a day per person), and the local hours it never is
    unless a case is an EMERGENCY (`quiet_hours = ["22:00", "06:00"]`). A province file's
    `[digest]` (`per_day`, `quiet_hours`) says the same for the province's own people."""
    per_day = esc.get(per_day_key, 1)
    if isinstance(per_day, bool) or not isinstance(per_day, int) \
            or not 1 <= per_day <= MAX_PER_DAY:
        raise ConfigError(f"{where}: {per_day_key} must be a whole number from 1 "
                          f"to {MAX_PER_DAY}, not {per_day!r}")
    quiet = esc.get("quiet_hours", [t.strftime("%H:%M") for t in DEFAULT_QUIET])
    try:
        if not isinstance(quiet, list) or len(quiet) != 2 \
                or not all(isinstance(q, str) and len(q) == 5 for q in quiet):
            raise ValueError
        start, end = (time.fromisoformat(q) for q in quiet)
    except ValueError:
        raise ConfigError(f"{where}: quiet_hours must be two times like "
                          f"[\"22:00\", \"06:00\"], not {quiet!r}") from None
    if start == end:
        raise ConfigError(f"{where}: quiet_hours must start and end at different times")
    return DigestPace(per_day=per_day, quiet=(start, end))


def _closing(raw: Any, targets: tuple[str, ...]) -> Closing:
    """[closing]: whether closing a high-risk case before its plan is approved needs the
    chairman, and who the chairman is (a routing selector). Without the table it does: the
    chairman approves the plan by law, and a commune that never wrote the table should not
    find such a case closed on one person's word; it opts out with `false`. When it is on,
    someone must be the chairman, or no request could ever be answered."""
    table = _check_fields(raw, "closing", CLOSING_FIELDS)
    needed = _flag(table, "high_risk_needs_chairman", "closing", Closing.high_risk_needs_chairman)
    chairman = table.get("chairman", Closing.chairman)
    if not isinstance(chairman, str):
        raise ConfigError(f"closing: 'chairman' must be a text like \"leader#chairman\", not "
                          f"{chairman!r}")
    if needed and chairman not in targets:
        if "chairman" in table:
            raise ConfigError(f"closing: chairman: {unknown('recipient', chairman, targets)}")
        raise ConfigError(f"closing: nobody is {chairman!r} to approve closing a high-risk "
                          f"case: give the chairman tags = [\"chairman\"], name them with "
                          f"chairman = \"role#tag\", or set high_risk_needs_chairman = false")
    return Closing(high_risk_needs_chairman=needed, chairman=chairman)


def _delivery(raw: Any) -> DeliveryPolicy:
    """[delivery]: calendar durations ("3h", "15m") for riding out a failing channel."""
    if not isinstance(raw, Mapping):
        raise ConfigError("delivery: expected a table ([delivery])")
    _check_fields(raw, "delivery", (f.name for f in dataclasses.fields(DeliveryPolicy)))
    values: dict[str, timedelta] = {}
    for name, value in raw.items():
        try:
            duration = Duration.parse(value) if isinstance(value, str) else None
        except ValueError:
            duration = None
        if duration is None or duration.unit != "m" or duration.amount <= 0:
            raise ConfigError(f"delivery.{name}: a length of time like \"3h\" or \"15m\", "
                              f"not {value!r}")
        values[name] = timedelta(minutes=duration.amount)
    return DeliveryPolicy(**values)


def load_calendar(path: Path) -> list[CalendarEvent]:
    """Read a calendar file made of [[event]] tables."""
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    tables = raw.get("event", [])
    if not isinstance(tables, list):
        raise ValueError(f"{path.name}: 'event' must be an array of tables ([[event]])")
    return parse_calendar(tables)


def load_default_calendar() -> list[CalendarEvent]:
    return load_calendar(DEFAULT_CALENDAR_PATH)


def _calendar_tables(path: Path) -> list[dict[str, Any]]:
    # A copy: the file is read once per process, not once per commune of a province.
    return copy.deepcopy(_parsed_calendar(path))


@functools.cache
def _parsed_calendar(path: Path) -> list[dict[str, Any]]:
    with path.open("rb") as fh:
        return list(tomllib.load(fh).get("event", []))


def _default_calendar_tables() -> list[dict[str, Any]]:
    return _calendar_tables(DEFAULT_CALENDAR_PATH)


def _province_calendar_tables() -> list[dict[str, Any]]:
    """A province's default events: those default_province_calendar.toml names, each the
    commune default of its key with the province's changes."""
    communes = {t["key"]: t for t in _default_calendar_tables()}
    return [{**communes[t["key"]], **t} for t in _calendar_tables(PROVINCE_CALENDAR_PATH)]


def _calendar(raw: Any, province: bool = False) -> dict[str, Any]:
    """The commune's calendar: every default event unless `defaults = false`; each
    `[[calendar.event]]` overrides the default with its key field by field (also when the
    defaults are dropped, so a commune can pick some), or adds an event, which then needs a
    `title`: only default events have one in the catalogs. A province's own calendar
    (`province`) starts from the province's defaults, may bring in any commune default by
    its key, and reminds nobody a province does not have (collaborators)."""
    if not isinstance(raw, Mapping):
        raise ConfigError("calendar: expected a table ([calendar])")
    _check_fields(raw, "calendar", ("defaults", "event"))
    use_defaults = raw.get("defaults", True)
    if not isinstance(use_defaults, bool):
        raise ConfigError("calendar: 'defaults' must be true or false")
    own = raw.get("event", [])
    if not isinstance(own, list):
        raise ConfigError("calendar: 'event' must be an array of tables ([[calendar.event]])")
    # The events a key alone brings in (their titles are in the catalogs), and those on
    # unless dropped.
    known = {t["key"]: t for t in _default_calendar_tables()}
    defaults = known
    if province:
        defaults = {t["key"]: t for t in _province_calendar_tables()}
        known = {**known, **defaults}
    tables: dict[str, dict[str, Any]] = dict(defaults) if use_defaults else {}
    titles: dict[str, str] = {}
    seen: set[str] = set()
    for index, table in enumerate(own):
        if not isinstance(table, Mapping) or not isinstance(table.get("key"), str):
            raise ConfigError(f"calendar event #{index + 1}: needs a string 'key'")
        key = table["key"]
        fields = {k: v for k, v in table.items() if k != "title"}
        title = table.get("title")
        if title is not None:
            if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE:
                raise ConfigError(f"calendar event {key!r}: 'title' must be a text of 1.."
                                  f"{MAX_TITLE} characters")
            titles[key] = title.strip()
        elif key not in known:
            raise ConfigError(f"calendar event {key!r}: a new event needs a 'title'")
        if key in seen:
            raise ConfigError(f"calendar event {key!r}: duplicate key")
        seen.add(key)
        # A default's key brings its fields, so a commune can move one date and keep the rest.
        tables[key] = {**known.get(key, {}), **fields}
    try:
        events = parse_calendar(list(tables.values()))
    except ValueError as exc:
        raise ConfigError(f"calendar {exc}") from None
    if province:
        for event in events:
            if Role.COLLABORATOR in event.roles:
                raise ConfigError(
                    f"calendar event {event.key!r}: a province has no collaborators: give "
                    f"it roles among {', '.join(PROVINCE_ROLES)}, e.g. roles = "
                    f"[\"officer\", \"leader\"]")
    return {"calendar": tuple(events), "calendar_titles": titles}


def _limits(raw: Any) -> SenderLimits:
    """`[limits]`: whole numbers, each at least 1; a missing field keeps its default."""
    if not isinstance(raw, Mapping):
        raise ConfigError("limits: expected a table ([limits])")
    fields = tuple(f.name for f in dataclasses.fields(SenderLimits))
    _check_fields(raw, "limits", fields)
    for name in fields:
        if name in raw and (not isinstance(raw[name], int) or isinstance(raw[name], bool)
                            or raw[name] < 1):
            raise ConfigError(f"limits: {name!r} must be a whole number, at least 1, not "
                              f"{raw[name]!r}")
    return SenderLimits(**{name: raw[name] for name in fields if name in raw})


RETENTION_FIELDS = ("delivered_days", "files_days", "closed_case_text_days", "simulator_days")
# What a commune file of a province may still say in its own [retention].
COMMUNE_RETENTION = ("closed_case_text_days",)


def _retention(raw: Any) -> Retention:
    """`[retention]`: whole days, each at least 1; a missing field keeps its default."""
    if not isinstance(raw, Mapping):
        raise ConfigError("retention: expected a table ([retention])")
    fields = RETENTION_FIELDS
    _check_fields(raw, "retention", fields)
    for name in fields:
        value = raw.get(name, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"retention: {name!r} must be a whole number of days, at least "
                              f"1, not {value!r}")
    return Retention(**{name: raw[name] for name in fields if name in raw})


def _group_id(raw: Any) -> str | None:
    if raw in (None, "", 0):
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"telegram_alert_group: not a chat id: {raw!r}") from exc
    if value >= 0:
        # Group and supergroup chat ids are negative; a positive one is a private chat.
        raise ConfigError("telegram_alert_group: a group chat id is negative")
    return str(value)


@dataclass(frozen=True)
class Settings:
    """Process settings from the environment (passed in, so tests need no monkeypatching)."""

    config_path: Path
    database_url: str
    host: str
    port: int
    fake_clock_start: str | None
    environ: Mapping[str, str]
    # The web simulator lets whoever reaches the port act as any configured person; with a
    # real channel it would hand strangers officers' alerts (and draw those alerts to it).
    simulator: bool = True
    # Operations: how long a message may wait before /readyz fails, the bearer token of
    # /metrics (None: open), and the log lines' format ("text" or "json").
    ready_outbox_within: timedelta = timedelta(minutes=5)
    metrics_token: str | None = None
    log_format: str = "text"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        return cls(
            config_path=Path(env.get("SAFECHILD_CONFIG") or DEMO_CONFIG),
            database_url=database_url(env),
            host=env.get("SAFECHILD_HOST", "127.0.0.1"),
            port=_port(env.get("SAFECHILD_PORT", "8080")),
            fake_clock_start=_fake_clock(env.get("SAFECHILD_FAKE_CLOCK") or None),
            environ=env,
            simulator=_simulator(env),
            ready_outbox_within=timedelta(seconds=env_number(
                env, "SAFECHILD_READY_OUTBOX_SECONDS", 300.0)),
            metrics_token=_metrics_token(env.get("SAFECHILD_METRICS_TOKEN", "")),
            log_format=log_format(env),
        )


LOG_FORMATS = ("text", "json")


def log_format(environ: Mapping[str, str]) -> str:
    """SAFECHILD_LOG_FORMAT: "text" (the default) or "json" (one object per line)."""
    raw = environ.get("SAFECHILD_LOG_FORMAT", "").strip()
    value = raw.lower() or "text"
    if value not in LOG_FORMATS:
        raise ConfigError(f"SAFECHILD_LOG_FORMAT: text or json, not {raw!r}")
    return value


def _metrics_token(raw: str) -> str | None:
    token = raw.strip()
    if not token:
        return None
    if len(token) < 16 or any(c.isspace() for c in token):
        raise ConfigError("SAFECHILD_METRICS_TOKEN: at least 16 characters and no spaces "
                          "(e.g. the output of `openssl rand -hex 24`)")
    return token


def _port(raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise ConfigError(f"SAFECHILD_PORT: a port number from 1 to 65535, not {raw!r}")
    return port


def _fake_clock(raw: str | None) -> str | None:
    if raw is not None:
        try:
            datetime.fromisoformat(raw)
        except ValueError:
            raise ConfigError(f"SAFECHILD_FAKE_CLOCK: a date and time like "
                              f"2026-03-02T08:00:00+07:00, not {raw!r}") from None
    return raw


def env_number(environ: Mapping[str, str], name: str, default: float) -> float:
    """A positive number from the environment (`default` when unset or empty)."""
    raw = environ.get(name, "")
    if not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise ConfigError(f"{name}: a number above 0, not {raw!r}")
    return value


def env_whole(environ: Mapping[str, str], name: str, default: int) -> int:
    """A whole number of at least 1 from the environment (`default` when unset)."""
    raw = environ.get(name, "")
    if not raw.strip():
        return default
    if not raw.strip().isdigit() or int(raw) < 1:
        raise ConfigError(f"{name}: a whole number of at least 1, not {raw!r}")
    return int(raw)


DEFAULT_SQLITE = "var/safechild.db"


def database_url(environ: Mapping[str, str]) -> str:
    """DATABASE_URL for PostgreSQL (the common spellings, turned to the async driver), else
    the SQLite file SAFECHILD_DB."""
    url = environ.get("DATABASE_URL", "")
    if url.startswith("postgres://") or url.startswith("postgresql://"):
        url = "postgresql+asyncpg://" + url.split("://", 1)[1]
    if not url:
        url = f"sqlite+aiosqlite:///{Path(environ.get('SAFECHILD_DB', DEFAULT_SQLITE))}"
    return url


def _simulator(env: Mapping[str, str]) -> bool:
    """On when no real channel is configured, unless SAFECHILD_SIMULATOR says otherwise."""
    raw = env.get("SAFECHILD_SIMULATOR", "").strip().lower()
    real = bool(env.get("TELEGRAM_BOT_TOKEN") or env.get("ZALO_APP_ID"))
    if not raw:
        return not real
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw not in ("0", "false", "no", "off"):
        raise ConfigError(f"SAFECHILD_SIMULATOR: 1 or 0, not {raw!r}")
    if not real:
        raise ConfigError("SAFECHILD_SIMULATOR=0 leaves no channel: set TELEGRAM_BOT_TOKEN "
                          "or ZALO_APP_ID")
    return False
