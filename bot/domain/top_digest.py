"""The top of the escalation chain (the chairman, the province contact) is reminded of the
cases still waiting on it in one digest at a set pace, not once per case per period (pure
domain: the rules; bot/services/top_digest.py sends, storage/top_digests.py keeps the due
times).

A person's digest waits at least `interval` after their last one, and never goes out in
the quiet hours (local time) unless a case in it is an EMERGENCY. The quiet hours may run
over midnight (22:00-06:00) or not (12:00-13:30).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from bot.domain.cases import Case
from bot.domain.local_time import LOCAL_TZ

DEFAULT_QUIET: tuple[time, time] = (time(22, 0), time(6, 0))
MAX_PER_DAY = 24


@dataclass(frozen=True)
class DigestPace:
    """How often the top of the chain hears of the cases waiting on it, and when never."""

    per_day: int = 1
    quiet: tuple[time, time] = DEFAULT_QUIET

    @property
    def interval(self) -> timedelta:
        return timedelta(days=1) / self.per_day

    def is_quiet(self, when: datetime) -> bool:
        start, end = self.quiet
        at = when.astimezone(LOCAL_TZ).time()
        if start <= end:
            return start <= at < end
        return at >= start or at < end

    def quiet_end(self, when: datetime) -> datetime:
        """When the quiet hours `when` falls in are over (`when` itself if it is not quiet)."""
        if not self.is_quiet(when):
            return when
        local = when.astimezone(LOCAL_TZ)
        end = datetime.combine(local.date(), self.quiet[1], LOCAL_TZ)
        return end if end > local else end + timedelta(days=1)

    def held_until(self, now: datetime, last_sent: datetime | None,
                   emergency: bool) -> datetime | None:
        """None when a digest may go now; otherwise when to look again: one interval after
        the last digest, or the end of the quiet hours for a digest without an emergency."""
        if last_sent is not None and now < last_sent + self.interval:
            return last_sent + self.interval
        if not emergency and self.is_quiet(now):
            return self.quiet_end(now)
        return None


@dataclass(frozen=True)
class DigestTimer:
    """A person's digest timer as the database holds it: when the next one falls due
    (None: nothing waits on them), when the last went out, and how many went (which names
    the next one, so it is queued once whoever sends it)."""

    person_id: int
    due_at: datetime | None
    last_sent_at: datetime | None
    seq: int


@dataclass(frozen=True)
class WaitingCase:
    """A case at the top of the chain that still waits for someone to act: `step` is the
    first of its deadlines that passed unmet."""

    case: Case
    step: str
