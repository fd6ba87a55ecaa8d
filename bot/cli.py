"""The `safechild` command: `safechild serve` runs the bot (web simulator by default);
`safechild check-config [PATH]` says what a province folder or a commune file leaves
uncovered; `safechild backup FILE` copies the SQLite database while the bot runs;
`safechild audit verify` recomputes the audit trail's hash chains.

A mistake that keeps the bot from starting (the commune file, a setting, the port, the
database) is one line on stderr saying what to fix, and exit status 2; `--debug` also
prints its traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn, TextIO

from aiohttp import web

from bot import logs, official_units
from bot.app import Setup, build_app
from bot.config import DEMO_CONFIG, ConfigError, Settings, database_url, load_config
from bot.domain.commune import CommuneConfig, PersonConfig
from bot.domain.coverage import gaps
from bot.domain.province import ProvinceConfig
from bot.handlers.plugin import ChannelPlugin
from bot.handlers.simulator import SimulatorPlugin
from bot.handlers.telegram import TelegramPlugin, TelegramSettings
from bot.handlers.zalo import ZaloPlugin
from bot.handlers.zalo.api import ZaloSettings
from bot.handlers.zalo.webhook import WebhookSettings
from storage import audit, rotation
from storage.backup import BackupError, backup_sqlite
from storage.crypto import KeyProblem, new_key
from storage.db import Database, DatabaseUnreachable

log = logging.getLogger("safechild")


def channels_of(settings: Settings) -> list[ChannelPlugin]:
    """The channels the environment configures, the simulator when it is on."""
    channels: list[ChannelPlugin] = []
    if settings.simulator:
        channels.append(SimulatorPlugin())
    telegram = TelegramSettings.from_env(settings.environ)
    if telegram is not None:
        channels.append(TelegramPlugin(telegram))
    zalo = ZaloSettings.from_env(settings.environ)
    if zalo is not None:
        channels.append(ZaloPlugin(zalo, WebhookSettings.from_env(settings.environ),
                                   public_url=settings.environ.get("SAFECHILD_PUBLIC_URL", "")))
    return channels


class StartupError(Exception):
    """The bot cannot start, for a reason the operator can fix (the message says how)."""


def listen_error(settings: Settings, exc: OSError) -> StartupError:
    where = f"{settings.host}:{settings.port}"
    if exc.errno == errno.EADDRINUSE:
        return StartupError(f"SAFECHILD_PORT: {where} is already in use (is another safechild "
                            f"running?): stop it or set SAFECHILD_PORT to a free port")
    if exc.errno == errno.EACCES:
        return StartupError(f"SAFECHILD_PORT: no permission to listen on {where}: choose a "
                            f"port above 1023")
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return StartupError(f"SAFECHILD_HOST: cannot listen on {settings.host!r}: use an "
                            f"address of this machine, such as 127.0.0.1 or 0.0.0.0")
    reason = (exc.strerror or type(exc).__name__).lower()
    return StartupError(f"SAFECHILD_HOST, SAFECHILD_PORT: cannot listen on {where} "
                        f"({reason})")


def database_error(settings: Settings, exc: DatabaseUnreachable) -> StartupError:
    return database_problem(settings.environ, exc)


def database_problem(environ: Mapping[str, str], exc: DatabaseUnreachable) -> StartupError:
    if environ.get("DATABASE_URL"):
        if exc.sqlite:
            return StartupError(f"DATABASE_URL: cannot open the SQLite database {exc.where} "
                                f"({exc.reason}): check the path in DATABASE_URL")
        return StartupError(f"DATABASE_URL: cannot reach the database at {exc.where} "
                            f"({exc.reason}): check the host, port, user and password in "
                            f"DATABASE_URL and that the database server is running")
    return StartupError(f"SAFECHILD_DB: cannot open the SQLite database {exc.where} "
                        f"({exc.reason}): set SAFECHILD_DB to a file in a folder the bot "
                        f"can write to")


async def check_port(settings: Settings) -> None:
    """Fail before touching the database when the port is taken (bound as aiohttp binds)."""
    loop = asyncio.get_running_loop()
    try:
        server = await loop.create_server(asyncio.Protocol, settings.host, settings.port)
    except OSError as exc:
        raise listen_error(settings, exc) from exc
    server.close()
    await server.wait_closed()


async def serve(settings: Settings, setup: Setup, channels: list[ChannelPlugin]) -> None:
    await check_port(settings)
    try:
        app = await build_app(setup, channels)
    except DatabaseUnreachable as exc:
        raise database_error(settings, exc) from exc
    except KeyProblem as exc:
        raise StartupError(str(exc)) from exc
    await app.start()
    runner = web.AppRunner(app.server, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    try:
        await site.start()
    except OSError as exc:
        # Taken since check_port looked.
        await runner.cleanup()
        await app.close()
        raise listen_error(settings, exc) from exc
    await app.listening()
    if settings.simulator:
        log.info("web simulator on http://%s:%s", settings.host, settings.port)
        print(f"SafeChild web simulator: http://{settings.host}:{settings.port}", flush=True)
    else:
        log.info("listening on http://%s:%s (no simulator)", settings.host, settings.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    await app.close()


def report_gaps(config: CommuneConfig | ProvinceConfig, source: Path, out: TextIO) -> int:
    """Print, per commune, what its configuration leaves uncovered; 1 when anything is,
    else 0. Operator output: keys, roles, villages and official names, never a person's
    name or phone number."""
    if isinstance(config, ProvinceConfig):
        communes = list(zip(config.communes, config.files or [source] * len(config.communes),
                            strict=True))
        also: tuple[PersonConfig, ...] = config.people
        print(f"province {config.name} ({config.code}): {len(communes)} communes, "
              f"{len(config.people)} province people; official list: "
              f"{official_units.SOURCE}", file=out)
    else:
        communes, also = [(config, source)], ()
    missing = 0
    for commune, file in communes:
        official = (official_units.unit(commune.official_code)
                    if commune.official_code is not None else None)
        title = (f"{official.name} ({official.code})" if official is not None
                 else commune.name)
        found = gaps(commune, also)
        missing += bool(found)
        print(f"{file.name}: {title}, {len(commune.people)} people: "
              + (f"{len(found)} missing" if found else "nothing missing"), file=out)
        for gap in found:
            print(f"  - {gap.text}", file=out)
    if missing:
        print(f"something is missing in {missing} of {len(communes)} "
              f"commune{'s' if len(communes) > 1 else ''}", file=out)
        return 1
    print(f"nothing missing in {len(communes)} commune{'s' if len(communes) > 1 else ''}",
          file=out)
    return 0


def check_config(path: Path | None, environ: dict[str, str] | None = None,
                 out: TextIO = sys.stdout) -> int:
    """`safechild check-config [PATH]`: PATH, else SAFECHILD_CONFIG, else the demo commune.
    An invalid file raises ConfigError (one line)."""
    env = dict(os.environ if environ is None else environ)
    if path is None:
        what = "SAFECHILD_CONFIG"
        path = Path(env.get("SAFECHILD_CONFIG") or DEMO_CONFIG)
    else:
        what = "check-config"
    return report_gaps(load_config(path, what), path, out)


def backup(target: Path, environ: dict[str, str] | None = None,
           out: TextIO = sys.stdout) -> None:
    """`safechild backup FILE`: a consistent copy of the SQLite database (SAFECHILD_DB)
    while the bot runs. A PostgreSQL database is refused: pg_dump backs it up. Raises
    BackupError (one line)."""
    url = database_url(dict(os.environ if environ is None else environ))
    if not url.startswith("sqlite"):
        raise BackupError("DATABASE_URL is a PostgreSQL database: back it up with pg_dump "
                          "(pg_dump -Fc, restored with pg_restore; see the README's "
                          "Backups), not with safechild backup")
    source = Path(url.split(":///", 1)[1])
    made = backup_sqlite(source, target)
    print(f"backed up {source} to {made.path}: {made.cases} cases, {made.pages} pages"
          + (f"; its key to {made.key} (keep the two together)" if made.key else ""),
          file=out)


async def rotate_keys(settings: Settings, batch: int, out: TextIO = sys.stdout) -> int:
    """`safechild rotate-keys`: re-seal every private field not under the first key of
    SAFECHILD_KEYS, in small transactions (safe while the bot runs, once every running
    process was restarted with the new key first). Prints counts by table; 0 when no row
    is left under another key."""
    try:
        database = await Database.open(settings.database_url,
                                       settings.environ.get("SAFECHILD_KEYS", ""))
    except DatabaseUnreachable as exc:
        raise database_error(settings, exc) from exc
    except KeyProblem as exc:
        raise StartupError(str(exc)) from exc
    try:
        done = await rotation.rotate(database, batch)
        left = await rotation.stale(database)
    except KeyProblem as exc:
        raise StartupError(str(exc)) from exc
    finally:
        await database.close()
    for table, n in done.items():
        print(f"{table}: {n} rows sealed with the first key", file=out)
    waiting = sum(left.values())
    print(f"rotate-keys: {sum(done.values())} rows re-sealed; {waiting} left under another "
          f"key" + (" (a process still writes with an old first key?)" if waiting else ""),
          file=out)
    return 1 if waiting else 0


async def verify_audit(environ: Mapping[str, str], out: TextIO) -> int:
    """Recompute every commune's audit chain: 0 and OK with the counts when all match, 1
    naming the first row that does not (its id and commune)."""
    try:
        database = await Database.open(database_url(environ))
    except DatabaseUnreachable as exc:
        raise database_problem(environ, exc) from exc
    try:
        async with database.read() as tx:
            found = await audit.verify(tx)
    finally:
        await database.close()
    rows, communes = sum(found.rows.values()), len(found.rows)
    if found.broken is None:
        print(f"audit: OK, {rows} rows in {communes} "
              f"{'commune' if communes == 1 else 'communes'}", file=out)
        for commune_id, count in sorted(found.rows.items()):
            print(f"  commune {commune_id}: {count} rows", file=out)
        return 0
    b = found.broken
    print(f"audit: row {b.row_id} of commune {b.commune_id} does not match its chain "
          f"({b.reason}): it or a row before it was changed, removed or added", file=out)
    return 1


def refuse(parser: argparse.ArgumentParser, exc: Exception, debug: bool) -> NoReturn:
    """Exit with status 2 and one line saying what to fix (after the traceback, if asked)."""
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    line = " ".join(str(exc).split())
    parser.exit(2, f"safechild: {line}\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="safechild")
    sub = parser.add_subparsers(dest="command", required=True)
    serving = sub.add_parser("serve",
                             help="run the bot (web simulator when no channel token is set)")
    serving.add_argument("--debug", action="store_true",
                         help="show the traceback of a start-up error, not only its line")
    checking = sub.add_parser(
        "check-config", help="check a province file (with its communes/ folder) or a "
        "commune file and print, per commune, what is missing; exit 0 when nothing is, "
        "1 when something is, 2 when a file is invalid")
    checking.add_argument("path", nargs="?", type=Path, default=None,
                          help="the province or commune file (default: SAFECHILD_CONFIG, "
                          "else the demo commune)")
    checking.add_argument("--debug", action="store_true",
                          help="show the traceback of an invalid file, not only its line")
    backing = sub.add_parser(
        "backup", help="write a consistent copy of the SQLite database (SAFECHILD_DB) to "
        "FILE while the bot runs; for PostgreSQL use pg_dump")
    backing.add_argument("file", type=Path, help="the backup file (replaced if it exists)")
    backing.add_argument("--debug", action="store_true",
                         help="show the traceback of a failed backup, not only its line")
    rotating = sub.add_parser(
        "rotate-keys", help="re-seal the private fields with the first key of "
        "SAFECHILD_KEYS (put the new key first, restart the bot, run this, then drop the "
        "old key); safe while the bot runs")
    rotating.add_argument("--batch", type=int, default=rotation.BATCH,
                          help="rows per transaction (default %(default)s)")
    rotating.add_argument("--debug", action="store_true",
                          help="show the traceback of an error, not only its line")
    sub.add_parser("new-key", help="print a new random key for SAFECHILD_KEYS")
    auditing = sub.add_parser("audit", help="check the audit trail")
    audit_sub = auditing.add_subparsers(dest="audit_command", required=True)
    verifying = audit_sub.add_parser(
        "verify", help="recompute every commune's hash chain; exit 0 when it matches, 1 "
        "naming the first row that does not, 2 when the database cannot be opened")
    verifying.add_argument("--debug", action="store_true",
                           help="show the traceback of an error, not only its line")
    args = parser.parse_args(argv)
    logs.configure()
    if args.command == "backup":
        try:
            backup(args.file)
        except BackupError as exc:
            refuse(parser, exc, args.debug)
        sys.exit(0)
    if args.command == "new-key":
        print(new_key())
        sys.exit(0)
    if args.command == "rotate-keys":
        try:
            settings = Settings.from_env()
            sys.exit(asyncio.run(rotate_keys(settings, max(1, args.batch))))
        except (ConfigError, ValueError, StartupError) as exc:
            refuse(parser, exc, args.debug)
    if args.command == "audit":
        try:
            status = asyncio.run(verify_audit(os.environ, sys.stdout))
        except StartupError as exc:
            refuse(parser, exc, args.debug)
        sys.exit(status)
    if args.command == "check-config":
        try:
            status = check_config(args.path)
        except ConfigError as exc:
            refuse(parser, exc, args.debug)
        sys.exit(status)
    if args.command == "serve":
        try:
            settings = Settings.from_env()
            logs.configure(form=settings.log_format)
            channels = channels_of(settings)
            # The commune file is read here, so a mistake in it is one line, not a traceback.
            setup = Setup.from_settings(settings)
        except (ConfigError, ValueError) as exc:
            refuse(parser, exc, args.debug)
        try:
            asyncio.run(serve(settings, setup, channels))
        except StartupError as exc:
            refuse(parser, exc, args.debug)


if __name__ == "__main__":
    main()
