"""Stored files (storage layer): workbooks and charts the bot made, kept until delivered."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import select

from bot.domain.delivery import FileToSend
from storage.db import Tx
from storage.models import StoredFile
from storage.sql import table

files = table(StoredFile)


async def add_file(tx: Tx, name: str, mime: str, content: bytes, now: datetime) -> FileToSend:
    """Store a file with a fresh random token (the secret part of its download link)."""
    token = secrets.token_urlsafe(24)
    file_id = (await tx.conn.execute(files.insert().values(
        name=name, mime=mime, content=content, created_at=now, token=token)
        .returning(files.c.id))).scalar_one()
    return FileToSend(file_id, name, mime, content, token)


async def stored_file(tx: Tx, file_id: int) -> FileToSend | None:
    row = (await tx.conn.execute(select(files.c.id, files.c.name, files.c.mime,
                                        files.c.content, files.c.token)
                                 .where(files.c.id == file_id))).first()
    return FileToSend(row[0], row[1], row[2], row[3], row[4] or "") if row else None
