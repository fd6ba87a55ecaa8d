"""The commune configuration (TOML) and the process settings taken from the environment."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time, timedelta
from pathlib import Path
from typing import Any

from bot.domain.cases import DEADLINE_STEPS, URGENCIES
from bot.domain.commune import CHANNELS, CommuneConfig, PersonConfig, Retention, RoutingRule
from bot.domain.commune_calendar import MAX_TITLE, CalendarEvent, parse_calendar
from bot.domain.delivery import DeliveryPolicy
from bot.domain.roles import CONFIGURED
from bot.domain.top_digest import DEFAULT_QUIET, MAX_PER_DAY, DigestPace
from bot.domain.work_hours import Duration

DEMO_CONFIG = Path(__file__).parent / "demo_commune.toml"
DEFAULT_CALENDAR_PATH = Path(__file__).parent / "default_calendar.toml"


class ConfigError(ValueError):
    pass


def load_commune(path: Path) -> CommuneConfig:
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    return parse_commune(raw)


def parse_commune(raw: Mapping[str, Any]) -> CommuneConfig:
    c = raw["commune"]
    villages = tuple((v["key"], v["name"]) for v in raw.get("villages", ()))
    village_keys = {k for k, _ in villages}
    people = []
    for p in raw.get("people", ()):
        if p["role"] not in CONFIGURED:
            raise ConfigError(f"person {p['key']}: unknown role {p['role']!r}")
        if p.get("village") and p["village"] not in village_keys:
            raise ConfigError(f"person {p['key']}: unknown village {p['village']!r}")
        if p.get("prefers") and p["prefers"] not in CHANNELS:
            raise ConfigError(f"person {p['key']}: prefers must be one of "
                              f"{', '.join(CHANNELS)}, not {p['prefers']!r}")
        people.append(PersonConfig(
            key=p["key"], role=p["role"], name=p.get("name", p["key"]), phone=p.get("phone"),
            village=p.get("village"), on_duty=bool(p.get("on_duty", False)),
            tags=tuple(p.get("tags", ())), language=p.get("language", "vi"),
            telegram_id=str(p["telegram_id"]) if p.get("telegram_id") else None,
            zalo_id=str(p["zalo_id"]) if p.get("zalo_id") else None,
            prefers=p.get("prefers") or None,
        ))
    routing = raw.get("routing", {})
    rules = tuple(RoutingRule(tuple(r.get("types", ["*"])), tuple(r.get("urgency", ["*"])),
                              tuple(r["notify"])) for r in routing.get("rules", ()))
    deadlines: dict[str, dict[str, Duration]] = {}
    for step in DEADLINE_STEPS:
        table = raw.get("deadlines", {}).get(step)
        if table is None:
            raise ConfigError(f"deadline table misses {step!r}")
        try:
            deadlines[step] = {u: Duration.parse(table[u]) for u in URGENCIES}
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    start, end = c.get("working_hours", raw.get("commune", {}).get("working_hours",
                                                                   ["07:30", "17:00"]))
    esc = raw.get("escalation", {})
    if not isinstance(esc, Mapping):
        raise ConfigError("escalation: expected a table ([escalation])")
    unknown = sorted(set(esc) - ESCALATION_FIELDS)
    if unknown:
        raise ConfigError(f"escalation: unknown field(s) {', '.join(unknown)}")
    levels = tuple(tuple(level) for level in esc.get("levels", ()))
    if not levels:
        raise ConfigError("escalation needs at least one level")
    return CommuneConfig(
        key=c["key"], name=c["name"], code_prefix=c["code_prefix"],
        officer_phone=c.get("officer_phone", ""),
        trusted_addresses=tuple(c.get("trusted_addresses", ())),
        working_hours=(time.fromisoformat(start), time.fromisoformat(end)),
        villages=villages, people=tuple(people), rules=rules,
        police_types=frozenset(routing.get("police_types", ())),
        tell_village_collaborator=bool(routing.get("tell_village_collaborator", True)),
        deadlines=deadlines, levels=levels,
        reminders_at=tuple(esc.get("reminders_at", (0.5, 0.9))),
        top_digest=_top_digest(esc),
        telegram_alert_group=_group_id(c.get("telegram_alert_group")),
        retention=_retention(raw.get("retention", {})),
        **_calendar(raw.get("calendar", {})),
        delivery=_delivery(raw.get("delivery", {})),
    )


ESCALATION_FIELDS = frozenset({"levels", "reminders_at", "top_reminders_per_day",
                               "quiet_hours"})


def _top_digest(esc: Mapping[str, Any]) -> DigestPace:
    """How often the top of the chain is reminded of the cases waiting on it (at most
    `top_reminders_per_day` digests a day per person), and the local hours it never is
    unless a case is an EMERGENCY (`quiet_hours = ["22:00", "06:00"]`)."""
    per_day = esc.get("top_reminders_per_day", 1)
    if isinstance(per_day, bool) or not isinstance(per_day, int) \
            or not 1 <= per_day <= MAX_PER_DAY:
        raise ConfigError(f"escalation: top_reminders_per_day must be a whole number from 1 "
                          f"to {MAX_PER_DAY}, not {per_day!r}")
    quiet = esc.get("quiet_hours", [t.strftime("%H:%M") for t in DEFAULT_QUIET])
    try:
        if not isinstance(quiet, list) or len(quiet) != 2 \
                or not all(isinstance(q, str) and len(q) == 5 for q in quiet):
            raise ValueError
        start, end = (time.fromisoformat(q) for q in quiet)
    except ValueError:
        raise ConfigError(f"escalation: quiet_hours must be two times like "
                          f"[\"22:00\", \"06:00\"], not {quiet!r}") from None
    if start == end:
        raise ConfigError("escalation: quiet_hours must start and end at different times")
    return DigestPace(per_day=per_day, quiet=(start, end))


def _delivery(raw: Any) -> DeliveryPolicy:
    """[delivery]: calendar durations ("3h", "15m") for riding out a failing channel."""
    if not isinstance(raw, Mapping):
        raise ConfigError("delivery: expected a table ([delivery])")
    fields = {f.name for f in dataclasses.fields(DeliveryPolicy)}
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise ConfigError(f"delivery: unknown field(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(fields))}")
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


def _default_calendar_tables() -> list[dict[str, Any]]:
    with DEFAULT_CALENDAR_PATH.open("rb") as fh:
        return list(tomllib.load(fh).get("event", []))


def _calendar(raw: Any) -> dict[str, Any]:
    """The commune's calendar: every default event unless `defaults = false`; each
    `[[calendar.event]]` overrides the default with its key field by field (also when the
    defaults are dropped, so a commune can pick some), or adds an event, which then needs a
    `title`: only default events have one in the catalogs."""
    if not isinstance(raw, Mapping):
        raise ConfigError("calendar: expected a table ([calendar])")
    unknown = sorted(set(raw) - {"defaults", "event"})
    if unknown:
        raise ConfigError(f"calendar: unknown field(s) {', '.join(unknown)}")
    use_defaults = raw.get("defaults", True)
    if not isinstance(use_defaults, bool):
        raise ConfigError("calendar: 'defaults' must be true or false")
    own = raw.get("event", [])
    if not isinstance(own, list):
        raise ConfigError("calendar: 'event' must be an array of tables ([[calendar.event]])")
    defaults = {t["key"]: t for t in _default_calendar_tables()}
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
        elif key not in defaults:
            raise ConfigError(f"calendar event {key!r}: a new event needs a 'title'")
        if key in seen:
            raise ConfigError(f"calendar event {key!r}: duplicate key")
        seen.add(key)
        # A default's key brings its fields, so a commune can move one date and keep the rest.
        tables[key] = {**defaults.get(key, {}), **fields}
    try:
        events = parse_calendar(list(tables.values()))
    except ValueError as exc:
        raise ConfigError(f"calendar {exc}") from None
    return {"calendar": tuple(events), "calendar_titles": titles}


def _retention(raw: Any) -> Retention:
    """`[retention]`: whole days, each at least 1; a missing field keeps its default."""
    if not isinstance(raw, Mapping):
        raise ConfigError("retention: expected a table ([retention])")
    fields = ("delivered_days", "files_days")
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"retention: unknown field(s) {', '.join(unknown)}; "
                          f"known: {', '.join(fields)}")
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

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        return cls(
            config_path=Path(env.get("SAFECHILD_CONFIG") or DEMO_CONFIG),
            database_url=database_url(env),
            host=env.get("SAFECHILD_HOST", "127.0.0.1"),
            port=int(env.get("SAFECHILD_PORT", "8080")),
            fake_clock_start=env.get("SAFECHILD_FAKE_CLOCK") or None,
            environ=env,
            simulator=_simulator(env),
        )


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
