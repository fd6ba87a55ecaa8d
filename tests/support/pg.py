"""A throwaway PostgreSQL server on loopback for the PostgreSQL half of the suite."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

# The keys the PostgreSQL half of the suite seals private fields with (SAFECHILD_KEYS).
TEST_KEYS = "dGVzdC1rZXktb2YtdGhlLXBvc3RncmVzcWwtaGFsZiE="


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return found[-1] if found else shutil.which(name)


def available() -> bool:
    return _bin("initdb") is not None and _bin("pg_ctl") is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def use_test_keys() -> None:
    """For a bench's own process: seal with the suite's keys unless SAFECHILD_KEYS is set
    (the bench's bot processes inherit them)."""
    os.environ.setdefault("SAFECHILD_KEYS", TEST_KEYS)


class PostgresServer:
    """initdb into a temp dir, start on a free loopback port, stop and delete on close."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="safechild-pg-"))
        self.port = _free_port()
        self.user: str | None = None
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: run it as the package's own user.
            self.user = "postgres" if _has_user("postgres") else "nobody"
            shutil.chown(self.dir, self.user)
        self._run([_bin("initdb") or "initdb", "-D", str(self.dir / "data"), "-A", "trust",
                   "-U", "postgres", "-E", "UTF8", "--locale=C"])
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run([_bin("pg_ctl") or "pg_ctl", "-D", str(self.dir / "data"), "-o", options,
                   "-l", str(self.dir / "log"), "-w", "start"])
        self._wait()

    def _run(self, cmd: list[str]) -> None:
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def _wait(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("PostgreSQL did not start")

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy asyncpg URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self._run([_bin("psql") or "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                   "postgres", "-c", f"CREATE DATABASE {name}"])
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        try:
            self._run([_bin("pg_ctl") or "pg_ctl", "-D", str(self.dir / "data"), "-m",
                       "immediate", "stop"])
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
