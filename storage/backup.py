"""A consistent copy of the SQLite database while the bot runs (storage layer), through
SQLite's online backup API: the copy is the database as one read transaction saw it, so it
never holds half of a transaction, and in WAL mode the bot's writers go on meanwhile.
PostgreSQL has its own tools (pg_dump, base backups): see the README."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from storage.crypto import key_file_of
from storage.db import private_file


class BackupError(Exception):
    """The copy could not be made; the message says why in a few words."""


@dataclass(frozen=True)
class Backup:
    path: Path
    pages: int
    cases: int
    # The key file of the sealed fields, copied beside the backup (None: the keys are in
    # SAFECHILD_KEYS, to be kept by whoever keeps the environment).
    key: Path | None = None


def backup_sqlite(source: Path, target: Path) -> Backup:
    """Copy the database at `source` to `target` (replaced whole, or left as it was if the
    copy fails), readable by its owner only, as one file (no -wal beside it), checked with
    SQLite's quick_check before it takes the target's name."""
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    if target.resolve() == source.resolve():
        raise BackupError("the backup file must not be the database itself")
    if target.is_dir():
        raise BackupError(f"{target} is a folder: name the backup file")
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        private_file(partial)
        # mode=rw: never create an empty database where the path is wrong.
        with contextlib.closing(sqlite3.connect(f"file:{source}?mode=rw", uri=True,
                                                timeout=30)) as src, \
                contextlib.closing(sqlite3.connect(partial)) as dst:
            # One step (pages=-1): a copy made in steps starts over whenever the bot writes
            # in between, which a busy bot does all the time.
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA journal_mode=DELETE")
            checked = dst.execute("PRAGMA quick_check").fetchone()[0]
            if checked != "ok":
                raise BackupError(f"the copy failed SQLite's check ({checked})")
            pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
            cases = int(dst.execute("SELECT count(*) FROM cases").fetchone()[0])
        os.replace(partial, target)
        key = _copy_key(source, target)
    except sqlite3.Error as exc:
        raise BackupError(" ".join(str(exc).split())[:200] or type(exc).__name__) from exc
    except OSError as exc:
        raise BackupError((exc.strerror or type(exc).__name__).lower()) from exc
    finally:
        partial.unlink(missing_ok=True)
    return Backup(target, pages, cases, key)


def _copy_key(source: Path, target: Path) -> Path | None:
    """The database's own key file (storage/crypto.py), beside the copy: a backup whose
    sealed fields cannot be opened restores nothing."""
    key = key_file_of(str(source))
    if not key.is_file():
        return None
    copied = key_file_of(str(target))
    partial = copied.with_name(f".{copied.name}.partial")
    private_file(partial)
    shutil.copyfile(key, partial)
    os.replace(partial, copied)
    return copied
