"""Stored files (storage layer): workbooks and charts the bot made, kept until delivered
and for a few days after (their download links work that long)."""

from __future__ import annotations

import secrets
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select

from bot.domain.delivery import FileToSend
from storage.db import Tx
from storage.models import StoredFile
from storage.sql import delete_batch, table

files = table(StoredFile)


async def add_file(tx: Tx, name: str, mime: str, content: bytes, now: datetime, *,
                   commune_id: int | None = None) -> FileToSend:
    """Store a file with a fresh random token (the secret part of its download link);
    `commune_id`: whose statistics it holds (its downloads are audited there)."""
    token = secrets.token_urlsafe(24)
    file_id = (await tx.conn.execute(files.insert().values(
        name=name, mime=mime, content=content, created_at=now, token=token,
        commune_id=commune_id)
        .returning(files.c.id))).scalar_one()
    return FileToSend(file_id, name, mime, content, token)


async def stored_file(tx: Tx, file_id: int) -> FileToSend | None:
    row = (await tx.conn.execute(select(files.c.id, files.c.name, files.c.mime,
                                        files.c.content, files.c.token)
                                 .where(files.c.id == file_id))).first()
    return FileToSend(row[0], row[1], row[2], row[3], row[4] or "") if row else None


async def commune_of(tx: Tx, file_id: int) -> int | None:
    return (await tx.conn.execute(select(files.c.commune_id)
                                  .where(files.c.id == file_id))).scalar()


async def communes_of(tx: Tx, file_ids: Collection[int]) -> dict[int, int | None]:
    """Whose statistics each file holds (files gone already are left out)."""
    rows = await tx.conn.execute(select(files.c.id, files.c.commune_id)
                                 .where(files.c.id.in_(list(file_ids))))
    return {r[0]: r[1] for r in rows}


async def prune(tx: Tx, before: datetime, keep: Collection[int], limit: int) -> int:
    """Delete up to `limit` files made before `before`, except those in `keep` (a message
    still waiting to carry them: storage.outbox.files_waiting); how many. The newest file
    goes too: should SQLite give its id to a new file, a link to the old one still fails,
    for it carries the old file's random token."""
    return await delete_batch(tx, files, files.c.created_at, before, limit,
                              where=files.c.id.not_in(list(keep)) if keep else None,
                              keep_newest=False)
