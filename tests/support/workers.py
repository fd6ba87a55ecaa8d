"""The app's background workers, by their class, for the tests that run one by hand."""

from __future__ import annotations

from typing import TypeVar

from bot.app import App

W = TypeVar("W")


def worker_of(app: App, kind: type[W]) -> W:
    """The app's worker of this class (DeliveryWorker, TimerWorker, CalendarWorker...)."""
    for worker in app.scheduler.workers:
        if isinstance(worker, kind):
            return worker
    raise LookupError(f"the app runs no {kind.__name__}")
