"""The floor plan, enforced: which layer may import which.

Layers, lowest first (a module may import its own layer and lower ones, never higher):
  domain     bot/domain     pure vocabulary and rules: no I/O at all
  flows      bot/flows      pure conversation state machines over the domain's words
  base       bot/clock.py, bot/config.py, bot/i18n.py: time, configuration, catalogs
  storage    storage/       the only code that knows SQL
  services   bot/services   use cases, one transaction each
  workers    bot/workers    background loops behind one protocol
  handlers   bot/handlers   the channel edge, one package per channel
  app        bot/app.py, bot/cli.py: assembly and the command line
Besides the order: domain and flows import no library that does I/O; only storage/ (and the
tests' own database helpers in tests/support/) imports sqlalchemy or storage.models; a
channel package under bot/handlers/ does not import storage at all.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LAYERS = ("domain", "flows", "base", "storage", "services", "workers", "handlers", "app")
IO_LIBRARIES = ("telegram", "aiohttp", "sqlalchemy", "alembic", "asyncpg", "aiosqlite",
                "httpx", "openpyxl", "matplotlib", "asyncio", "socket", "subprocess")
SQL = ("sqlalchemy", "storage.models")
# Imports that still break a rule; each entry goes when its module is rebuilt. Empty at the
# end of issue 11.
KNOWN: frozenset[tuple[str, str]] = frozenset({
    ('bench.engine', 'sqlalchemy'),
    ('bench.engine', 'sqlalchemy.engine'),
    ('bench.engine', 'storage.models'),
    ('bench.stats', 'sqlalchemy'),
    ('bench.stats', 'storage.models'),
    ('bench.telegram', 'tests.support.fake_telegram'),
    ('bench.zalo', 'tests.support.fake_zalo'),
    ('bench.zalo', 'tests.pg'),
    ('bench.zalo', 'tests.test_restart'),
    ('bot.app', 'sqlalchemy.ext.asyncio'),
    ('bot.app', 'storage.models'),
    ('bot.domain.alerts', 'storage.models'),
    ('bot.handlers.telegram', 'sqlalchemy.ext.asyncio'),
    ('bot.handlers.web', 'bot.app'),
    ('bot.handlers.web', 'sqlalchemy.ext.asyncio'),
    ('bot.handlers.web', 'storage.models'),
    ('bot.handlers.zalo', 'sqlalchemy.ext.asyncio'),
    ('bot.handlers.zalo_api', 'sqlalchemy.ext.asyncio'),
    ('bot.handlers.zalo_channel', 'bot.app'),
    ('bot.handlers.zalo_channel', 'sqlalchemy.ext.asyncio'),
    ('bot.services.broadcasts', 'sqlalchemy.ext.asyncio'),
    ('bot.services.broadcasts', 'storage.models'),
    ('bot.services.calendar_commands', 'sqlalchemy.ext.asyncio'),
    ('bot.services.calendar_commands', 'storage.models'),
    ('bot.services.cases', 'sqlalchemy.ext.asyncio'),
    ('bot.services.cases', 'storage.models'),
    ('bot.services.conversation', 'sqlalchemy.exc'),
    ('bot.services.conversation', 'sqlalchemy.ext.asyncio'),
    ('bot.services.conversation', 'storage.models'),
    ('bot.services.directory', 'sqlalchemy.ext.asyncio'),
    ('bot.services.escalation', 'sqlalchemy.ext.asyncio'),
    ('bot.services.escalation', 'storage.models'),
    ('bot.services.inbound_queue', 'sqlalchemy.ext.asyncio'),
    ('bot.services.invites', 'sqlalchemy'),
    ('bot.services.invites', 'sqlalchemy.ext.asyncio'),
    ('bot.services.invites', 'storage.models'),
    ('bot.services.outbox', 'sqlalchemy.ext.asyncio'),
    ('bot.services.outbox', 'storage.models'),
    ('bot.services.reminders', 'sqlalchemy.exc'),
    ('bot.services.reminders', 'sqlalchemy.ext.asyncio'),
    ('bot.services.reminders', 'storage.models'),
    ('bot.services.reports', 'sqlalchemy.ext.asyncio'),
    ('bot.services.reports', 'sqlalchemy.orm'),
    ('bot.services.reports', 'storage.models'),
    ('bot.services.zalo_tokens', 'sqlalchemy.exc'),
    ('bot.services.zalo_tokens', 'sqlalchemy.ext.asyncio'),
    ('bot.services.zalo_tokens', 'storage.models'),
    ('tests.conftest', 'tests'),
    ('tests.conftest', 'tests.support.fake_zalo'),
    ('tests.conftest', 'tests.pg'),
    ('tests.test_bad_input', 'sqlalchemy'),
    ('tests.test_bad_input', 'storage.models'),
    ('tests.test_bad_input', 'tests.conftest'),
    ('tests.test_bad_input', 'tests.test_story'),
    ('tests.test_broadcast', 'sqlalchemy'),
    ('tests.test_broadcast', 'sqlalchemy.ext.asyncio'),
    ('tests.test_broadcast', 'storage.models'),
    ('tests.test_broadcast', 'tests.conftest'),
    ('tests.test_broadcast', 'tests.support.fake_telegram'),
    ('tests.test_broadcast', 'tests.test_browser'),
    ('tests.test_browser', 'tests.conftest'),
    ('tests.test_calendar_admin', 'sqlalchemy'),
    ('tests.test_calendar_admin', 'storage.models'),
    ('tests.test_calendar_admin', 'tests.conftest'),
    ('tests.test_case_team', 'tests.conftest'),
    ('tests.test_case_team', 'tests.test_story'),
    ('tests.test_escalation', 'sqlalchemy'),
    ('tests.test_escalation', 'storage.models'),
    ('tests.test_escalation', 'tests.conftest'),
    ('tests.test_migrations', 'sqlalchemy.engine'),
    ('tests.test_migrations', 'storage.models'),
    ('tests.test_outbox', 'sqlalchemy'),
    ('tests.test_outbox', 'sqlalchemy.ext.asyncio'),
    ('tests.test_outbox', 'storage.models'),
    ('tests.test_outbox', 'tests.test_escalation'),
    ('tests.test_reminders', 'sqlalchemy'),
    ('tests.test_reminders', 'storage.models'),
    ('tests.test_reminders', 'tests.conftest'),
    ('tests.test_reports', 'sqlalchemy'),
    ('tests.test_reports', 'storage.models'),
    ('tests.test_reports', 'tests.conftest'),
    ('tests.test_reports_browser', 'tests.conftest'),
    ('tests.test_reports_browser', 'tests.test_browser'),
    ('tests.test_reports_browser', 'tests.test_reports'),
    ('tests.test_reports_telegram', 'tests.test_reports'),
    ('tests.test_reports_telegram', 'tests.test_telegram'),
    ('tests.test_restart', 'tests.conftest'),
    ('tests.test_restart', 'tests.test_escalation'),
    ('tests.test_routing', 'storage.models'),
    ('tests.test_simulator_switch', 'tests.conftest'),
    ('tests.test_simulator_switch', 'tests.support.fake_telegram'),
    ('tests.test_simulator_switch', 'tests.test_restart'),
    ('tests.test_simulator_switch', 'tests.test_telegram_restart'),
    ('tests.test_sqlite_turns', 'sqlalchemy'),
    ('tests.test_sqlite_turns', 'sqlalchemy.exc'),
    ('tests.test_sqlite_turns', 'sqlalchemy.ext.asyncio'),
    ('tests.test_story', 'sqlalchemy'),
    ('tests.test_story', 'storage.models'),
    ('tests.test_story', 'tests.conftest'),
    ('tests.test_telegram', 'sqlalchemy'),
    ('tests.test_telegram', 'storage.models'),
    ('tests.test_telegram', 'tests.support.fake_telegram'),
    ('tests.test_telegram_restart', 'tests.conftest'),
    ('tests.test_telegram_restart', 'tests.support.fake_telegram'),
    ('tests.test_telegram_restart', 'tests.test_escalation'),
    ('tests.test_telegram_restart', 'tests.test_restart'),
    ('tests.test_zalo_api', 'tests.support.fake_zalo'),
    ('tests.test_zalo_render', 'tests.test_catalogs'),
    ('tests.test_zalo_serve', 'tests.conftest'),
    ('tests.test_zalo_serve', 'tests.support.fake_telegram'),
    ('tests.test_zalo_serve', 'tests.support.fake_zalo'),
    ('tests.test_zalo_serve', 'tests.test_restart'),
    ('tests.test_zalo_story', 'sqlalchemy'),
    ('tests.test_zalo_story', 'storage.models'),
    ('tests.test_zalo_story', 'tests.support.fake_telegram'),
    ('tests.test_zalo_story', 'tests.support.fake_zalo'),
    ('tests.test_zalo_tokens', 'sqlalchemy'),
    ('tests.test_zalo_tokens', 'sqlalchemy.exc'),
    ('tests.test_zalo_tokens', 'sqlalchemy.ext.asyncio'),
    ('tests.test_zalo_tokens', 'storage.models'),
    ('tests.test_zalo_tokens', 'tests.conftest'),
    ('tests.test_zalo_tokens', 'tests.support.fake_telegram'),
    ('tests.test_zalo_tokens', 'tests.support.fake_zalo'),
    ('tests.test_zalo_tokens', 'tests.test_zalo_api'),
    ('tests.test_zalo_webhook', 'sqlalchemy'),
    ('tests.test_zalo_webhook', 'sqlalchemy.exc'),
    ('tests.test_zalo_webhook', 'storage.models'),
    ('tests.test_zalo_webhook', 'tests.support.fake_zalo'),
})


def layer_of(module: str) -> str | None:
    if module.startswith("bot.domain"):
        return "domain"
    if module.startswith("bot.flows"):
        return "flows"
    if module in ("bot", "bot.clock", "bot.config", "bot.i18n", "bot.locales"):
        return "base"
    if module == "storage" or module.startswith("storage."):
        return "storage"
    for name in ("services", "workers", "handlers"):
        if module.startswith(f"bot.{name}"):
            return name
    if module in ("bot.app", "bot.cli"):
        return "app"
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # `from bot.domain import alerts` imports the module bot.domain.alerts.
            found.update(f"{node.module}.{alias.name}" for alias in node.names
                         if (ROOT / Path(*node.module.split("."), alias.name)).exists()
                         or (ROOT / Path(*node.module.split("."), f"{alias.name}.py")).exists())
    return found


def sources(*tops: str) -> list[Path]:
    return sorted(p for top in tops for p in (ROOT / top).rglob("*.py")
                  if "migrations" not in p.parts)


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for path in sources("bot", "storage"):
        here = module_name(path)
        mine = layer_of(here)
        assert mine is not None, f"{here}: in no layer; add it to tests/test_layers.py"
        for imported in imports(path):
            theirs = layer_of(imported)
            if theirs is not None and LAYERS.index(theirs) > LAYERS.index(mine):
                found.add((here, imported))
            if mine in ("domain", "flows") and any(within(imported, lib)
                                                   for lib in IO_LIBRARIES):
                found.add((here, imported))
            if mine != "storage" and any(within(imported, lib) for lib in SQL):
                found.add((here, imported))
            if (here.startswith("bot.handlers.") and here.count(".") >= 2
                    and path.parent != ROOT / "bot" / "handlers" and theirs == "storage"):
                found.add((here, imported))
    for path in sources("tests", "bench"):
        here = module_name(path)
        if within(here, "tests.support"):
            continue
        for imported in imports(path):
            if any(within(imported, lib) for lib in SQL):
                found.add((here, imported))
            if within(imported, "tests") and not within(imported, "tests.support"):
                found.add((here, imported))
    return found


def test_no_import_breaks_the_floor_plan() -> None:
    new = violations() - KNOWN
    assert not new, "imports that break the layering rules:\n" + "\n".join(
        f"  {here} imports {imported}" for here, imported in sorted(new))


def test_the_list_of_known_breaks_only_shrinks() -> None:
    mended = KNOWN - violations()
    assert not mended, "no longer broken, remove from KNOWN:\n" + "\n".join(
        f"  {here} -> {imported}" for here, imported in sorted(mended))
