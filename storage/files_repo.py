"""Stored files (storage layer): workbooks and charts the bot made, kept until delivered."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import StoredFile


async def add_file(s: AsyncSession, name: str, mime: str, content: bytes,
                   now: datetime) -> StoredFile:
    """Store a file with a fresh random token (the secret part of its download link)."""
    row = StoredFile(name=name, mime=mime, content=content, created_at=now,
                     token=secrets.token_urlsafe(24))
    s.add(row)
    await s.flush()
    return row


async def stored_file(s: AsyncSession, file_id: int) -> StoredFile | None:
    return await s.get(StoredFile, file_id)
