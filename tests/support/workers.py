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


def keep_sent_words(app: App) -> App:
    """The app's retention job leaves delivered messages their words (it empties them
    within the hour): for the tests that read a long story's messages back from the
    outbox (tests/test_retention.py tests the emptying)."""
    from bot.workers.pruning import PruningWorker

    worker_of(app, PruningWorker).empty_sent = False
    return app
