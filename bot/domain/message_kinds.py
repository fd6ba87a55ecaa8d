"""Every kind of message the bot queues, and how the outbox treats each: one table.

`priority`: when a channel's rate limit makes messages queue, lower goes first: what a
person in danger is waiting on (alerts, escalations, hand-overs, questions to a reporter),
then conversations, then bulk sends. `reroute`: when a channel says it cannot reach the
person (blocked, unfollowed, outside Zalo's window) the message goes at once to their other
channel; not conversation replies and their media (the person is writing on that very
channel), nor edits and progress counts of messages that stay where they are. `climbs`: with
no channel left, the case goes up the escalation chain at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Kind(StrEnum):
    REPLY = "reply"
    ALERT = "alert"
    ESCALATION = "escalation"
    REMINDER = "reminder"
    DIGEST = "digest"
    HANDOVER = "handover"
    QUESTION = "question"
    NOTICE = "notice"
    TEAM_NOTICE = "team_notice"
    REPORTER_NOTICE = "reporter_notice"
    CALENDAR = "calendar"
    BROADCAST = "broadcast"
    PROGRESS = "progress"
    MEDIA = "media"
    EDIT = "edit"
    ADMIN = "admin"


URGENT, CONVERSATION, BULK = 0, 1, 2


@dataclass(frozen=True)
class KindRule:
    priority: int
    reroute: bool
    climbs: bool = False


RULES: Final[dict[Kind, KindRule]] = {
    Kind.REPLY: KindRule(CONVERSATION, reroute=False),
    Kind.ALERT: KindRule(URGENT, reroute=True, climbs=True),
    Kind.ESCALATION: KindRule(URGENT, reroute=True, climbs=True),
    Kind.REMINDER: KindRule(CONVERSATION, reroute=True),
    # The top of the chain's daily list of the cases still waiting on it: a reminder of
    # cases it was alerted to already, on its other channel if need be; nothing is above
    # the top, so it never climbs.
    Kind.DIGEST: KindRule(CONVERSATION, reroute=True),
    Kind.HANDOVER: KindRule(URGENT, reroute=True),
    Kind.QUESTION: KindRule(URGENT, reroute=True),
    Kind.NOTICE: KindRule(CONVERSATION, reroute=True),
    Kind.TEAM_NOTICE: KindRule(CONVERSATION, reroute=True),
    Kind.REPORTER_NOTICE: KindRule(CONVERSATION, reroute=True),
    Kind.CALENDAR: KindRule(BULK, reroute=True),
    Kind.BROADCAST: KindRule(BULK, reroute=True),
    Kind.PROGRESS: KindRule(CONVERSATION, reroute=False),
    Kind.MEDIA: KindRule(CONVERSATION, reroute=False),
    Kind.EDIT: KindRule(CONVERSATION, reroute=False),
    Kind.ADMIN: KindRule(CONVERSATION, reroute=True),
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
