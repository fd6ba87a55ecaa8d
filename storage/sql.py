"""Small helpers the storage modules share (storage layer)."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Table
from sqlalchemy.dialects import postgresql, sqlite

from storage.db import Tx


def table(model: Any) -> Table:
    """The Core table of a model of storage/models.py (storage runs Core statements)."""
    return cast(Table, model.__table__)


def insert(tx: Tx, table: Table) -> Any:
    """INSERT with ON CONFLICT for the transaction's database (both dialects have it)."""
    return (postgresql.insert if tx.dialect == "postgresql" else sqlite.insert)(table)


def rowcount(result: Any) -> int:
    return int(cast("CursorResult[Any]", result).rowcount)
