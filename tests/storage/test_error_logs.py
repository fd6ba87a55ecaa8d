"""A database error's message can carry the values it refused (asyncpg quotes them, past
SQLAlchemy's hide_parameters): the process's log never shows it."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from bot import logs
from storage.db import Database

SECRET = "Bé Na bị bố đánh, gọi 0912345678"


async def test_a_refused_value_never_reaches_the_log(db_url: str) -> None:
    database = await Database.open(db_url)
    try:
        with pytest.raises(Exception) as caught:
            async with database.transaction() as tx:
                # A text where a number belongs: the driver refuses the value.
                await tx.conn.execute(text("UPDATE cases SET child_count = :n"
                                           if database.dialect == "postgresql" else
                                           "SELECT CAST(:n AS INTEGER) FROM nowhere"),
                                      {"n": SECRET})
    finally:
        await database.close()
    exc = caught.value
    record = logging.LogRecord("storage", logging.ERROR, __file__, 1, "row %s failed", (7,),
                               (type(exc), exc, exc.__traceback__))
    if db_url.startswith("postgresql"):
        # What the stock formatter writes: the value itself, hide_parameters or not.
        assert SECRET in logging.Formatter().format(record)
    out = logs.WithoutExceptionMessages().format(record)
    assert SECRET not in out and "0912345678" not in out
    assert "row 7 failed" in out and "(message withheld)" in out
