"""Every kind of message the bot queues, and how the outbox treats each: one table.

`priority`: when a channel's rate limit makes messages queue, lower goes first: what a
person in danger is waiting on (alerts, escalations, hand-overs, questions to a reporter),
then conversations, then bulk sends. `reroute`: when a channel says it cannot reach the
person (blocked, unfollowed, outside Zalo's window) the message goes at once to their other
channel; not conversation replies and their media (the person is writing on that very
channel), nor edits and progress counts of messages that stay where they are. `climbs`: with
no channel left, the case goes up the escalation chain at once. `persistent`: what a case
waits on (alerts, escalations, hand-overs, questions to a reporter) is never given up while
its case is open, however long its channel fails. `expires`: how long any other kind is
worth sending late; past it the message is dropped (a conversation reply: the person is
told once that we had trouble, and where they were). None: the delivery policy's reply
lifetime (bot/domain/delivery.DeliveryPolicy), configurable per commune.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Final


class Kind(StrEnum):
    REPLY = "reply"
    ALERT = "alert"
    ADDITIONS = "additions"
    ESCALATION = "escalation"
    REMINDER = "reminder"
    DIGEST = "digest"
    HANDOVER = "handover"
    QUESTION = "question"
    APPROVAL = "approval"
    NOTICE = "notice"
    TEAM_NOTICE = "team_notice"
    REPORTER_NOTICE = "reporter_notice"
    CALENDAR = "calendar"
    BROADCAST = "broadcast"
    PROGRESS = "progress"
    MEDIA = "media"
    EDIT = "edit"
    ADMIN = "admin"
    SORRY = "sorry"


URGENT, CONVERSATION, BULK = 0, 1, 2


DAY = timedelta(hours=24)


@dataclass(frozen=True)
class KindRule:
    priority: int
    reroute: bool
    climbs: bool = False
    persistent: bool = False
    expires: timedelta | None = None
    # Delivering it shows the person a case's details: audited as a read when it goes out.
    shows_case: bool = False


RULES: Final[dict[Kind, KindRule]] = {
    Kind.REPLY: KindRule(CONVERSATION, reroute=False),
    Kind.ALERT: KindRule(URGENT, reroute=True, climbs=True, persistent=True, shows_case=True),
    Kind.ESCALATION: KindRule(URGENT, reroute=True, climbs=True, persistent=True,
                              shows_case=True),
    # What an emergency's reporter told after the alert: as urgent, but the alert before it
    # is what climbs.
    Kind.ADDITIONS: KindRule(URGENT, reroute=True, persistent=True, shows_case=True),
    Kind.REMINDER: KindRule(CONVERSATION, reroute=True, expires=timedelta(hours=12)),
    # The top of the chain's daily list of the cases still waiting on it: a reminder of
    # cases it was alerted to already, on its other channel if need be; nothing is above
    # the top, so it never climbs. Tomorrow's list replaces one that could not be sent.
    Kind.DIGEST: KindRule(CONVERSATION, reroute=True, expires=timedelta(hours=12)),
    Kind.HANDOVER: KindRule(URGENT, reroute=True, persistent=True, shows_case=True),
    Kind.QUESTION: KindRule(URGENT, reroute=True, persistent=True),
    # A request to the chairman to approve closing a case: the case waits on the answer,
    # but nobody is in danger for want of it.
    Kind.APPROVAL: KindRule(CONVERSATION, reroute=True, persistent=True),
    Kind.NOTICE: KindRule(CONVERSATION, reroute=True, expires=DAY),
    Kind.TEAM_NOTICE: KindRule(CONVERSATION, reroute=True, expires=DAY),
    Kind.REPORTER_NOTICE: KindRule(CONVERSATION, reroute=True, expires=DAY),
    Kind.CALENDAR: KindRule(BULK, reroute=True, expires=DAY),
    Kind.BROADCAST: KindRule(BULK, reroute=True, expires=DAY),
    Kind.PROGRESS: KindRule(CONVERSATION, reroute=False),
    # A report's photos and voice notes following its alert.
    Kind.MEDIA: KindRule(CONVERSATION, reroute=False, expires=DAY, shows_case=True),
    Kind.EDIT: KindRule(CONVERSATION, reroute=False),
    Kind.ADMIN: KindRule(CONVERSATION, reroute=True, expires=DAY),
    Kind.SORRY: KindRule(CONVERSATION, reroute=False, expires=DAY),
}


def rule_of(kind: str) -> KindRule:
    """A kind's rule; one this table does not know (a row written by a newer version) is
    treated as a conversation message that stays on its channel."""
    try:
        return RULES[Kind(kind)]
    except ValueError:
        return RULES[Kind.REPLY]


def kinds_with_priority(priority: int) -> tuple[str, ...]:
    return tuple(kind.value for kind, rule in RULES.items() if rule.priority == priority)
