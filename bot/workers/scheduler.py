"""The one place that decides when background work wakes (workers layer).

Each worker gets a loop: run what is due, ask when the next thing falls due, sleep until
then, a wake-up, or the worker's idle time, whichever comes first. The due times live in the
database, so a lost or doubled wake-up changes nothing and a process that dies leaves the
work to the others. Waits are measured on the injected clock; with a FakeClock every move
of the clock wakes every worker. `run_until_idle` runs every worker in a fixed order until
none has anything to do (the simulator's clock and the tests use it).

It also keeps when each worker last looked (`late`, for /readyz): a loop wakes at least
every `idle` seconds whatever it has to do, so a worker waiting for its next due time still
looks, and one that has not looked for a few times that is stuck, dead or failing. Looks
are timed on the wall clock: a fake clock jumps hours, liveness must not.

Not APScheduler: it would add a second clock (its own wall clock, through which a moved
fake clock had to be forced by hand) and its shutdown cancels a running job in the middle
of its transaction (which once left SQLite's write lock taken); waking at the earliest of a
few due times needs no more than this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime

from bot.clock import Clock, FakeClock, SystemClock
from bot.workers.worker import Finishing, Worker

log = logging.getLogger(__name__)
# Work leased by another process is due but not ours: never spin on it.
MIN_WAIT = 0.2
# Workers finish the sweep they are in before the process stops (cancelled in the middle
# of a query, a connection could keep SQLite's write lock); one stuck past this is cancelled.
CLOSE_GRACE = 5.0
# run_until_idle gives up after this many rounds: a worker that never runs out of work is
# a bug, not a reason to hang.
MAX_ROUNDS = 1000
# A worker is late when it has not looked for this many times its idle time, and never
# sooner than LATE_FLOOR seconds (a slow sweep of a short-idle worker is not a stuck one),
# unless it says otherwise (a `late_after` attribute, in seconds).
LATE_TIMES = 3
LATE_FLOOR = 60.0


def late_after(worker: Worker) -> float:
    """Seconds without a look after which the worker counts as late."""
    explicit = getattr(worker, "late_after", None)
    if isinstance(explicit, int | float) and explicit > 0:
        return float(explicit)
    return max(LATE_FLOOR, LATE_TIMES * worker.idle)


class Wakeups:
    """A wake-up per worker name, made before the workers: whoever queues work wakes the
    worker by name without holding it."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def event(self, name: str) -> asyncio.Event:
        return self._events.setdefault(name, asyncio.Event())

    def wake(self, *names: str) -> None:
        """Look now (the named workers, or all): something was queued or changed."""
        for name in names or tuple(self._events):
            self.event(name).set()


class Scheduler:
    def __init__(self, clock: Clock, workers: Sequence[Worker],
                 wakeups: Wakeups | None = None, wall: Clock | None = None) -> None:
        self.clock = clock
        self.wall = wall or SystemClock()
        self.workers = list(workers)
        names = [w.name for w in self.workers]
        if len(set(names)) != len(names):
            raise ValueError(f"two workers share a name: {names}")
        self.wakeups = wakeups or Wakeups()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # When each worker last finished a look (a run or an ask), on the wall clock; the
        # process's start counts as one.
        started = self.wall.now()
        self.looked: dict[str, datetime] = {w.name: started for w in self.workers}

    def late(self) -> dict[str, float]:
        """The workers that have not looked within their expected interval, with the
        seconds since their last look."""
        now = self.wall.now()
        found: dict[str, float] = {}
        for worker in self.workers:
            since = (now - self.looked[worker.name]).total_seconds()
            if since > late_after(worker):
                found[worker.name] = since
        return found

    def _looked(self, worker: Worker) -> None:
        self.looked[worker.name] = self.wall.now()

    def wake(self, *names: str) -> None:
        self.wakeups.wake(*names)

    def worker(self, name: str) -> Worker:
        for worker in self.workers:
            if worker.name == name:
                return worker
        raise KeyError(name)

    def start(self) -> None:
        for worker in self.workers:
            self._tasks.append(asyncio.create_task(self._loop(worker),
                                                   name=f"worker-{worker.name}"))
        if isinstance(self.clock, FakeClock):
            self._tasks.append(asyncio.create_task(self._follow(self.clock)))

    async def stop(self) -> None:
        self._stop.set()
        self.wake()
        if isinstance(self.clock, FakeClock):
            self.clock.moved.set()  # the clock follower's wait, so it sees the stop too
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=CLOSE_GRACE)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for worker in self.workers:
            if isinstance(worker, Finishing):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(worker.finish(), timeout=CLOSE_GRACE)

    async def run_until_idle(self, names: Sequence[str] = (),
                             now: datetime | None = None) -> int:
        """Run the named workers (none: every worker), in order, until a whole round does
        nothing; the work done. `now` holds the clock for the run (default: it reads the
        clock at each step)."""
        chosen = [w for w in self.workers if not names or w.name in names]
        done = 0
        for _ in range(MAX_ROUNDS):
            round_done = 0
            for worker in chosen:
                while (n := await worker.run_due(now or self.clock.now())):
                    round_done += n
                self._looked(worker)
            for worker in chosen:
                if isinstance(worker, Finishing):
                    round_done += await worker.finish()
            if not round_done:
                return done
            done += round_done
        raise RuntimeError("background work never ran out")

    async def _loop(self, worker: Worker) -> None:
        wake = self.wakeups.event(worker.name)
        while not self._stop.is_set():
            # Cleared before running, so a wake-up that arrives meanwhile is not lost.
            wake.clear()
            due = None
            try:
                # A look recorded after each run: a long catch-up is busy, not stuck.
                while not self._stop.is_set():
                    done = await worker.run_due(self.clock.now())
                    self._looked(worker)
                    if not done:
                        break
                due = await worker.next_due(self.clock.now())
                self._looked(worker)
            except Exception:  # a database hiccup must not stop the work for good
                log.exception("%s worker failed", worker.name)
            wait = worker.idle
            if due is not None:
                wait = max(MIN_WAIT, min(worker.idle, (due - self.clock.now()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=wait)

    async def _follow(self, clock: FakeClock) -> None:
        while not self._stop.is_set():
            await clock.moved.wait()
            clock.moved.clear()
            self.wake()
