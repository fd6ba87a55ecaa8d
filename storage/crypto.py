"""Encryption of the database's private fields (storage layer): descriptions, children's
names, reporters' contacts, notes, media references, drafts and queued messages.

AES-256-GCM with a key id in front of each value, not Fernet: one AESGCM object per key
is reused for every field (Fernet derives and checks an HMAC and pads for CBC on each
call), a value grows by 37 characters instead of Fernet's 76 or more, and the key id lets
`rotate-keys` find the rows still under an old key with a LIKE on the prefix, without
decrypting every row to find out. A sealed value reads `sc1.<kid>.<base64url(nonce |
ciphertext | tag)>`; `kid` is the first 6 characters of the key's SHA-256, so adding a key
needs no numbering. Keys are 32 random bytes, written as base64url (`new_key`).

A value without the prefix is read as it is: rows written before encryption (migration
0019 widens the columns and leaves the rows; `rotate-keys` seals them)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)
PREFIX = "sc1."
KEYS_SETTING = "SAFECHILD_KEYS"
_NONCE = 12


class KeyProblem(Exception):
    """The keys cannot be used: the message is one line naming the setting (or the key
    file) and what to do, never a key."""


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def _key_id(key: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(key).digest()).decode("ascii")[:6]


def parse_keys(raw: str, what: str = KEYS_SETTING) -> list[bytes]:
    """Comma-separated base64url keys of 32 bytes, the first for new writes."""
    keys: list[bytes] = []
    for n, part in enumerate((p.strip() for p in raw.split(",")), start=1):
        if not part:
            continue
        try:
            key = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != 32:
            raise KeyProblem(f"{what}: key {n} is not 32 bytes in base64url; make one with "
                             f"`safechild new-key`")
        keys.append(key)
    if not keys:
        raise KeyProblem(f"{what}: no key given; make one with `safechild new-key`")
    return keys


class FieldCipher:
    """Seals and opens field values; new values under the first key, any key opens."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise KeyProblem(f"{KEYS_SETTING}: no key given")
        self._by_id = {_key_id(k): AESGCM(k) for k in reversed(keys)}
        self.current_id = _key_id(keys[0])
        self._current = self._by_id[self.current_id]
        # What every value sealed with the first key starts with.
        self.current_prefix = f"{PREFIX}{self.current_id}."

    def seal(self, plain: str) -> str:
        nonce = os.urandom(_NONCE)
        body = self._current.encrypt(nonce, plain.encode("utf-8"), None)
        return self.current_prefix + base64.urlsafe_b64encode(nonce + body).decode("ascii")

    def open(self, stored: str) -> str:
        """The plain text of a stored value (a value never sealed comes back as it is)."""
        if not stored.startswith(PREFIX):
            return stored
        kid, _, body = stored[len(PREFIX):].partition(".")
        aead = self._by_id.get(kid)
        if aead is None:
            raise KeyProblem(f"{KEYS_SETTING}: a row is sealed with key {kid}, which is not "
                             f"configured; add it back until `safechild rotate-keys` has run")
        raw = base64.urlsafe_b64decode(body)
        return aead.decrypt(raw[:_NONCE], raw[_NONCE:], None).decode("utf-8")


def cipher_for(url_database: str | None, sqlite: bool, raw_keys: str | None) -> FieldCipher:
    """The cipher of a database: `raw_keys` (SAFECHILD_KEYS) when set; otherwise, for an
    SQLite file, the key in the file beside it (made on first start, 0600); an SQLite
    database in memory gets a key of its own; PostgreSQL without keys is refused."""
    if raw_keys and raw_keys.strip():
        return FieldCipher(parse_keys(raw_keys))
    if not sqlite:
        raise KeyProblem(f"{KEYS_SETTING}: not set; a PostgreSQL database needs its keys in "
                         f"the environment (make one with `safechild new-key`)")
    if not url_database or url_database == ":memory:":
        return FieldCipher([base64.urlsafe_b64decode(new_key())])
    return FieldCipher(parse_keys(_key_file(key_file_of(url_database)),
                                  what=str(key_file_of(url_database))))


def key_file_of(database: str) -> Path:
    return Path(database + ".key")


def _key_file(path: Path) -> str:
    """The key file's content, made first if there is none (0600). Written whole under
    another name and linked into place, so two processes starting together on a new
    database agree on one key, and neither reads a file still empty."""
    if not path.exists():
        draft = path.with_name(f"{path.name}.{os.getpid()}.new")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(new_key() + "\n")
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another process made it first: its key it is
        else:
            log.warning("no %s set: generated a database key into %s (keep it with the "
                        "database's backups; without it the private fields cannot be read)",
                        KEYS_SETTING, path)
        finally:
            draft.unlink(missing_ok=True)
    return path.read_text(encoding="ascii").strip()
