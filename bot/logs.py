"""What the process logs, and what it never logs (base layer).

An exception's message can carry what a person wrote or a row's values: asyncpg quotes the
value it refused, past SQLAlchemy's hide_parameters; a parser quotes the text it could not
read. So a logged traceback keeps its frames and each exception's class, never a message;
our own log lines name ids and kinds only.

SAFECHILD_LOG_FORMAT=json writes each record as one JSON object on a line: time (UTC, ISO
8601), level, logger, event (the message), the ids the call gave with `extra=`, and a
traceback kept as above.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
WITHHELD = "(message withheld)"


def without_messages(exc: BaseException) -> str:
    """A traceback of `exc` and the exceptions it came from, every message left out."""
    lines: list[str] = []
    seen: set[int] = set()
    chain: list[tuple[BaseException, str]] = []
    current: BaseException | None = exc
    link = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, "The above exception was the direct cause:"
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, "During handling of the above exception:"
        else:
            current = None
    for error, followed_by in reversed(chain):
        lines.append("Traceback (most recent call last):\n")
        lines.extend(traceback.format_tb(error.__traceback__))
        kind = type(error)
        lines.append(f"{kind.__module__}.{kind.__qualname__}: {WITHHELD}\n")
        if followed_by:
            lines.append(f"\n{followed_by}\n\n")
    return "".join(lines).rstrip("\n")


class WithoutExceptionMessages(logging.Formatter):
    """A formatter whose tracebacks carry no exception message (see the module)."""

    def format(self, record: logging.LogRecord) -> str:
        # logging caches a record's formatted traceback on the record: one made by another
        # formatter would carry the messages.
        cached, record.exc_text = record.exc_text, None
        try:
            return super().format(record)
        finally:
            record.exc_text = cached

    def formatException(self, ei: ExcInfo | tuple[None, None, None]) -> str:
        _, value, _ = ei
        if value is None:
            return ""
        return without_messages(value)


# What every LogRecord has: anything else on a record came with the call's `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}
_OWN = ("time", "level", "logger", "event", "exception", "stack")


class JsonLines(logging.Formatter):
    """One JSON object per record (see the module); tracebacks as WithoutExceptionMessages
    writes them."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "event": record.getMessage()}
        for key, value in vars(record).items():
            if key in _STANDARD or key in _OWN or key.startswith("_"):
                continue
            line[key] = value if value is None or isinstance(value, str | int | float | bool) \
                else str(value)
        if record.exc_info and record.exc_info[1] is not None:
            line["exception"] = without_messages(record.exc_info[1])
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False)


def configure(level: int = logging.INFO, form: str = "text") -> None:
    """The process's logging: to stderr, as text lines or JSON ones (`form`), tracebacks
    without messages, and quiet where a library would log a secret (httpx logs each
    request URL, and Telegram's carry the bot token)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines() if form == "json" else WithoutExceptionMessages(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
