"""What the process counts for its operators, served at /metrics (base layer).

One `Metrics` per app, each with a registry of its own (never prometheus_client's global
one): several apps in one Python (the tests) keep their counts apart. Services, workers and
handlers are handed the app's object, as they are handed the clock, and count after their
transaction commits (a rolled-back or retried turn counts nothing).

No label carries personal data: only channel names, message kinds, flow names, deadline
steps, escalation levels, urgencies, table names and delivery error codes (a status code
or a kind of failure, never the error's text, which can quote what a person wrote).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from bot.domain.delivery import DeliveryError

CONTENT_TYPE = CONTENT_TYPE_LATEST
# A timer fires on the next look after it falls due: seconds late, up to an hour (a process
# that was down for longer counts in +Inf).
LATENESS_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)
# A webhook answers once the event is stored: milliseconds, seconds at worst.
ANSWER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_STATUS = re.compile(r"^\d{3,5}$")


def error_code(error: DeliveryError) -> str:
    """A failed send's code for a label: the platform's status code when the reason starts
    with one ("429", "403 blocked", "zalo -216"), else the kind of failure."""
    for word in error.reason.split()[:2]:
        if _STATUS.match(word.lstrip("-")):
            return word
    if error.retry_after is not None:
        return "rate_limited"
    if error.unreachable:
        return "unreachable"
    return "permanent" if error.permanent else "outage"


class Metrics:
    """The process's counters, gauges and histograms (see the module)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.updates_received = Counter(
            "safechild_updates_received", "Inbound events handed to the conversations",
            ["channel"], registry=r)
        self.flow_steps = Counter(
            "safechild_flow_steps", "Conversation turns taken, by the flow they were in",
            ["flow"], registry=r)
        self.reports_opened = Counter(
            "safechild_reports_opened", "Reports that became cases", ["urgency"], registry=r)
        self.alerts_sent = Counter(
            "safechild_alerts_sent", "Case alerts delivered (first and escalated)",
            ["channel", "kind"], registry=r)
        self.deliveries_failed = Counter(
            "safechild_deliveries_failed", "Failed send attempts", ["channel", "code"],
            registry=r)
        self.deadlines_overdue = Counter(
            "safechild_deadlines_overdue", "Case deadlines that passed with nobody acting",
            ["step"], registry=r)
        self.escalations = Counter(
            "safechild_escalations", "Cases climbed one level", ["level"], registry=r)
        self.purged = Counter(
            "safechild_purged_rows", "Rows the pruning worker deleted", ["table"],
            registry=r)
        self.timer_lateness = Histogram(
            "safechild_timer_lateness_seconds", "From a timer's due time to its firing",
            buckets=LATENESS_BUCKETS, registry=r)
        self.webhook_seconds = Histogram(
            "safechild_webhook_answer_seconds", "Time to answer a channel's HTTP request",
            ["channel"], buckets=ANSWER_BUCKETS, registry=r)
        self.outbox_depth = Gauge(
            "safechild_outbox_depth", "Messages waiting to be sent (at scrape time)",
            ["channel", "kind"], registry=r)
        self.outbox_oldest = Gauge(
            "safechild_outbox_oldest_due_seconds",
            "Age of the oldest message waiting to be sent (at scrape time)",
            ["channel", "kind"], registry=r)

    def outbox_waiting(self, rows: Iterable[tuple[str, str, int, datetime]],
                       now: datetime) -> None:
        """The outbox as it is now: (channel, kind, messages waiting, oldest queued at).
        A channel and kind with nothing waiting any more drops out."""
        self.outbox_depth.clear()
        self.outbox_oldest.clear()
        for channel, kind, count, oldest in rows:
            self.outbox_depth.labels(channel, kind).set(count)
            self.outbox_oldest.labels(channel, kind).set(
                max(0.0, (now - oldest).total_seconds()))

    def render(self) -> bytes:
        return generate_latest(self.registry)
