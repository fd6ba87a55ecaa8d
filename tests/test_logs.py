"""What reaches the log: tracebacks with their frames and exception classes, never an
exception's message (it can carry what a person wrote, or a row's values)."""

from __future__ import annotations

import io
import logging
from datetime import datetime

from bot import logs
from bot.clock import FakeClock
from bot.workers.scheduler import Scheduler
from tests.support import START
from tests.support.waiting import eventually

SECRET = "Bé Na, 0912 345 678, bị bố đánh"


def test_a_traceback_keeps_its_frames_and_classes_but_no_message() -> None:
    try:
        try:
            raise KeyError(SECRET)
        except KeyError as inner:
            raise ValueError(f"could not read {SECRET!r}") from inner
    except ValueError as exc:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "worker %s failed",
                                   ("delivery",), (type(exc), exc, exc.__traceback__))
    plain = logging.Formatter().format(record)
    assert SECRET in plain  # what a stock formatter would have written
    out = logs.WithoutExceptionMessages().format(record)
    assert SECRET not in out and "Bé Na" not in out and "0912" not in out
    assert "worker delivery failed" in out
    assert "builtins.ValueError: (message withheld)" in out
    assert "builtins.KeyError: (message withheld)" in out
    assert "direct cause" in out
    assert "test_a_traceback_keeps_its_frames_and_classes_but_no_message" in out  # a frame


class Failing:
    name = "failing"
    idle = 60.0

    def __init__(self) -> None:
        self.runs = 0

    async def run_due(self, now: datetime) -> int:
        self.runs += 1
        raise RuntimeError(f"row 7 refused: {SECRET}")

    async def next_due(self, now: datetime) -> datetime | None:
        return None


async def test_the_process_logs_a_failing_worker_without_its_message() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure()
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    worker = Failing()
    scheduler = Scheduler(FakeClock(START), [worker])
    try:
        scheduler.start()
        await eventually(lambda: worker.runs > 0)
        await scheduler.stop()
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    written = stream.getvalue()
    assert "failing worker failed" in written
    assert "builtins.RuntimeError: (message withheld)" in written
    assert SECRET not in written and "0912" not in written
