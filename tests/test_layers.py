"""The floor plan, enforced: which layer may import which.

Layers, lowest first (a module may import its own layer and lower ones, never higher):
  domain     bot/domain     pure vocabulary and rules: no I/O at all
  flows      bot/flows      pure conversation state machines over the domain's words
  base       bot/clock.py, bot/config.py, bot/i18n.py, bot/logs.py, bot/metrics.py,
             bot/official_units.py: time, configuration, catalogs, logging, the counters
             operators scrape, the official list of provinces and communes
  storage    storage/       the only code that knows SQL
  services   bot/services   use cases, one transaction each
  workers    bot/workers    background loops behind one protocol
  handlers   bot/handlers   the channel edge, one package per channel
  app        bot/app.py, bot/cli.py: assembly and the command line
Besides the order: domain and flows import no library that does I/O; only storage/ (and,
among the tests, the shared helpers in tests/support/ and the tests of storage itself in
tests/storage/) imports sqlalchemy or storage.models; a the channel edge (bot/handlers/, every
channel package and what they share) does not import storage at all; no test module imports
another test module.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LAYERS = ("domain", "flows", "base", "storage", "services", "workers", "handlers", "app")
IO_LIBRARIES = ("telegram", "aiohttp", "sqlalchemy", "alembic", "asyncpg", "aiosqlite",
                "httpx", "openpyxl", "matplotlib", "asyncio", "socket", "subprocess")
SQL = ("sqlalchemy", "storage.models")
# Imports that still break a rule; each entry goes when its module is rebuilt. Empty at the
# end of issue 11.
KNOWN: frozenset[tuple[str, str]] = frozenset()


def layer_of(module: str) -> str | None:
    if module.startswith("bot.domain"):
        return "domain"
    if module.startswith("bot.flows"):
        return "flows"
    if module in ("bot", "bot.clock", "bot.config", "bot.i18n", "bot.locales", "bot.logs",
                  "bot.metrics", "bot.official_units"):
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
            if mine == "handlers" and theirs == "storage":
                found.add((here, imported))
    for path in sources("tests", "bench"):
        here = module_name(path)
        if within(here, "tests.support") or within(here, "tests.storage"):
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


# Libraries only a report or a poster needs: every process would pay some 70 MB and half a
# second at start for them (issue 14, item 8: memory per process).
DRAWING = ("matplotlib", "openpyxl", "PIL", "numpy", "segno")


def test_a_process_starts_without_the_drawing_libraries() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, bot.cli; "
         f"print(' '.join(m for m in {DRAWING!r} if m in sys.modules))"],
        capture_output=True, text=True, check=True, timeout=60).stdout.split()
    assert loaded == []
