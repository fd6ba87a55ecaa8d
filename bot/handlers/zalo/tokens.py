"""The Zalo OA's token pair: read from the database, refreshed before it expires, stored so
that a crash cannot lose the OA's authorisation (zalo channel).

Zalo's refresh token is single use and rotated on every refresh, so the order of work is:
1. claim the active row with a lease, in its own short transaction (one process spends the
   refresh token; the others keep using the access token, or wait for the new row);
2. call Zalo with no transaction open (`refresher`, the adapter's HTTP call);
3. one short transaction inserts the new pair and marks the old one "used".
What cannot be made safe: a process killed between Zalo's answer and that commit (or a
connection that drops after Zalo spent the token but before its answer arrives) leaves a
spent refresh token behind. The next claimer learns it from Zalo's refusal, the row is
marked "failed", and the admins are told on another channel to authorise the OA again.
A row left leased by a dead process whose call never reached Zalo is simply claimed again
once the lease runs out, and refreshed as if nothing had happened.

The rows are kept through `TokenRows` (storage/zalo_tokens.py implements it), each of its
methods one short transaction. Never log a token: log row ids, codes and kinds only.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bot.clock import Clock

log = logging.getLogger(__name__)
# Access tokens last 25 hours; refreshing an hour early leaves room for a slow or failed try.
REFRESH_MARGIN = timedelta(hours=1)
# Longer than the OAuth call's timeout, so a live refresher never loses its lease mid-call.
LEASE = timedelta(seconds=30)
# How long a process waits (real seconds) for another one's refresh when it has no usable
# access token of its own.
WAIT_TIMEOUT = 30.0
WAIT_STEP = 0.05
# After a refresh could not reach Zalo: try again after this, doubling up to RETRY_MAX.
RETRY_FIRST = timedelta(seconds=30)
RETRY_MAX = timedelta(minutes=10)
# A refused refresh token is tried again now and then (and at every start): a refusal
# caused by a wrong app secret, since corrected, or by a fault at Zalo is then undone.
LOST_RETRY = timedelta(hours=1)
# How often a pair the database refused is offered to it again.
UNSAVED_RETRY = timedelta(seconds=5)


@dataclass(frozen=True)
class TokenPair:
    """What Zalo's OAuth endpoint answers to a refresh."""

    access_token: str
    refresh_token: str
    expires_in: float  # seconds

    def __repr__(self) -> str:  # never print the tokens
        return f"TokenPair(expires_in={self.expires_in})"


@dataclass(frozen=True)
class AccessToken:
    """The access token to send with, and which stored pair it belongs to."""

    row_id: int
    token: str
    expires_at: datetime

    def __repr__(self) -> str:
        return f"AccessToken(row_id={self.row_id}, expires_at={self.expires_at.isoformat()})"


class RefreshRefused(Exception):
    """Zalo refused the refresh token (spent, expired, revoked, or a wrong app secret)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"refresh refused: {code} {reason}".strip())
        self.code = code
        self.reason = reason


class RefreshUnavailable(Exception):
    """The refresh did not get an answer (network, timeout, 5xx): try again later. Whether
    Zalo spent the refresh token is unknown; if it did, the next try is refused."""


class TokensLost(Exception):
    """No usable pair: Zalo refused the refresh token and nothing newer exists. Nothing can
    be sent on Zalo until an admin authorises the OA again."""

    def __init__(self, code: int | None) -> None:
        super().__init__(f"Zalo OA authorisation lost (code {code})")
        self.code = code


class TokensBusy(Exception):
    """Another process is refreshing and did not finish in time."""


Refresher = Callable[[str], Awaitable[TokenPair]]
# Tells the admins (on another channel) that the OA's authorisation is lost: (row id, Zalo's
# code) -> how many were told.
AlertAdmins = Callable[[int, int], Awaitable[int]]


class StoredPair(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def access_token(self) -> str: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def status(self) -> str: ...
    @property
    def lease_until(self) -> datetime | None: ...


class TokenRows(Protocol):
    """The OA's stored pairs; each method is one transaction (storage/zalo_tokens.py).
    Any exception means the database did not do it."""

    async def active(self) -> StoredPair | None: ...

    async def latest(self) -> StoredPair | None: ...

    async def seed(self, access_token: str, refresh_token: str, expires_at: datetime,
                   now: datetime) -> int | None: ...

    async def claim(self, row_id: int, owner: str, now: datetime, lease: timedelta,
                    statuses: Sequence[str] = ("active",)) -> str | None: ...

    async def release(self, row_id: int, owner: str) -> None: ...

    async def replace(self, old_id: int, access_token: str, refresh_token: str,
                      expires_at: datetime, now: datetime) -> StoredPair: ...

    async def refused(self, row_id: int, owner: str, now: datetime) -> StoredPair | None: ...


class ZaloTokens:
    """The token store of one OA, shared by every process through the database. It is also
    the background worker that refreshes the pair before it expires (`run_due`)."""

    name = "zalo-tokens"
    idle = 600.0

    def __init__(self, rows: TokenRows, clock: Clock, refresher: Refresher, *,
                 initial_refresh_token: str = "", initial_access_token: str = "",
                 alert_admins: AlertAdmins | None = None, owner: str | None = None,
                 margin: timedelta = REFRESH_MARGIN, lease: timedelta = LEASE,
                 wait_timeout: float = WAIT_TIMEOUT) -> None:
        self.rows = rows
        self.clock = clock
        self.refresher = refresher
        self.initial_refresh_token = initial_refresh_token
        self.initial_access_token = initial_access_token
        self.alert_admins = alert_admins
        self.owner = owner or f"zalo-{uuid.uuid4().hex[:8]}"
        self.margin = margin
        self.lease = lease
        self.wait_timeout = wait_timeout
        # Successful refreshes this process made (tests and logs count them).
        self.refreshes = 0
        self._current: AccessToken | None = None
        self._lock = asyncio.Lock()
        # A new pair Zalo gave us that the database would not take yet: kept here and
        # stored again at the next chance rather than lost.
        self._unsaved: tuple[int, TokenPair, datetime] | None = None
        self._retry_at: datetime | None = None
        self._retry_wait = RETRY_FIRST
        self._lost_tried_at: datetime | None = None
        self._warned_empty = False

    # ---- what the client calls ------------------------------------------------------------

    @property
    def refreshing(self) -> bool:
        """A refresh (or a look at the stored pair) is under way in this process."""
        return self._lock.locked()

    async def access_token(self) -> AccessToken:
        """A token to send with, refreshed first when it is due. Raises TokensLost when the
        OA's authorisation is gone, TokensBusy or RefreshUnavailable when no usable token
        can be had right now."""
        now = self.clock.now()
        current = self._current
        if self._unsaved is None and current is not None \
                and now < current.expires_at - self.margin:
            return current
        if current is not None and now < current.expires_at and self.refreshing:
            return current  # a refresh is under way here; the old token works meanwhile
        async with self._lock:
            await self._store_unsaved()
            now = self.clock.now()
            current = self._current
            # While a pair is unsaved, the stored row is older and its refresh token spent.
            if current is not None and (now < current.expires_at - self.margin
                                        or self._unsaved is not None):
                return current
            token = await self._load()
            if now < token.expires_at - self.margin:
                return token
            try:
                return await self._refresh(token, wait=now >= token.expires_at)
            except (RefreshUnavailable, TokensBusy):
                if now < token.expires_at:
                    return token  # still good for a while; the refresh is tried again later
                raise

    async def refresh(self, stale: AccessToken) -> AccessToken:
        """Zalo called `stale` invalid (-216): refresh now, unless another process (or
        another call here) already replaced it."""
        async with self._lock:
            await self._store_unsaved()
            current = self._current
            if current is not None and current.row_id != stale.row_id:
                return current
            if self._unsaved is not None and current is not None:
                # The stored row is older than our unsaved pair: its refresh token is spent.
                return current
            token = await self._load()
            if token.row_id != stale.row_id:
                return token
            return await self._refresh(token, wait=True)

    # ---- background: refresh before expiry, recover what can be recovered ----------------

    async def start(self) -> None:
        """At start: seed from the environment when the database has no pair (and refresh
        it into an access token), or try once more a refresh token that was refused before
        (see LOST_RETRY). May raise RefreshUnavailable or TokensBusy (tried again later)."""
        try:
            await self.access_token()
        except TokensLost:
            async with self._lock:
                await self._retry_lost()

    async def run_due(self, now: datetime) -> int:
        """Refresh the active pair if it is due (0: the scheduler must not loop on it)."""
        return await self.sweep()

    async def sweep(self) -> int:
        now = self.clock.now()
        if self._retry_at is not None and now < self._retry_at:
            return 0
        async with self._lock:
            await self._store_unsaved()
            if self._unsaved is not None:
                return 0  # the stored row is older than the pair in memory: leave it
            try:
                token = await self._load()
            except TokensLost:
                if self._lost_tried_at is None or now >= self._lost_tried_at + LOST_RETRY:
                    await self._retry_lost()
                return 0
            if now < token.expires_at - self.margin:
                return 0
            try:
                await self._refresh(token, wait=False)
            except RefreshUnavailable:
                self._retry_at = now + self._retry_wait
                self._retry_wait = min(self._retry_wait * 2, RETRY_MAX)
                log.warning("zalo token row %s: refresh unavailable; next try at %s",
                            token.row_id, self._retry_at.isoformat())
            except (TokensLost, TokensBusy):
                pass
            else:
                self._retry_at, self._retry_wait = None, RETRY_FIRST
        return 0

    async def next_due(self, now: datetime | None = None) -> datetime | None:
        if self._unsaved is not None:
            return self.clock.now() + UNSAVED_RETRY
        row = await self.rows.active()
        if row is None:
            return (self._lost_tried_at + LOST_RETRY) if self._lost_tried_at else None
        due = row.expires_at - self.margin
        return max(due, self._retry_at) if self._retry_at is not None else due

    # ---- the steps ------------------------------------------------------------------------

    def _remember(self, row: StoredPair) -> AccessToken:
        self._current = AccessToken(row.id, row.access_token, row.expires_at)
        return self._current

    async def _load(self) -> AccessToken:
        """The active pair, seeding it from the environment when there is none."""
        row = await self.rows.active()
        if row is not None:
            return self._remember(row)
        await self._seed()
        row = await self.rows.active()
        if row is not None:
            return self._remember(row)
        nothing_stored = await self.rows.latest() is None
        if nothing_stored and not self._warned_empty:
            self._warned_empty = True
            log.error("no Zalo token stored and no ZALO_REFRESH_TOKEN to seed one")
        self._current = None
        raise TokensLost(None)

    async def _seed(self) -> None:
        """Store the environment's refresh token as the active pair, once: a token stored
        before is in use or spent, and using it again would only be refused."""
        env = self.initial_refresh_token
        if not env:
            return
        now = self.clock.now()
        # The environment's access token (if any) has no known expiry: it is used only
        # until the refresh that follows at once.
        expires = now + self.margin if self.initial_access_token else now
        # None: a pair is active already, this refresh token was stored before, or another
        # process seeded at the same moment (its row is the one).
        row_id = await self.rows.seed(self.initial_access_token, env, expires, now)
        if row_id is not None:
            log.info("zalo token row %s seeded from the environment", row_id)

    async def _refresh(self, token: AccessToken, wait: bool) -> AccessToken:
        """Spend the pair's refresh token on a new pair, or (if another process holds the
        claim) wait for that process's new row when `wait`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_timeout
        while True:
            claim = f"{self.owner}:{uuid.uuid4().hex[:8]}"
            refresh_token = await self.rows.claim(token.row_id, claim, self.clock.now(),
                                                  self.lease)
            if refresh_token is not None:
                return await self._spend(token.row_id, claim, refresh_token)
            if not wait:
                raise TokensBusy
            successor = await self._wait_for_successor(token.row_id, deadline)
            if successor is not None:
                return successor
            # The other claim ran out without a new pair (its process died): claim again.

    async def _wait_for_successor(self, row_id: int, deadline: float) -> AccessToken | None:
        loop = asyncio.get_running_loop()
        while loop.time() < deadline:
            await asyncio.sleep(WAIT_STEP)
            active = await self.rows.active()
            if active is None:
                self._current = None
                raise TokensLost(None)
            if active.id != row_id:
                return self._remember(active)
            if active.lease_until is None or active.lease_until < self.clock.now():
                return None
        raise TokensBusy

    async def _spend(self, row_id: int, claim: str, refresh_token: str) -> AccessToken:
        try:
            pair = await self.refresher(refresh_token)
        except RefreshUnavailable:
            await self.rows.release(row_id, claim)
            raise
        except RefreshRefused as exc:
            return await self._refused(row_id, claim, exc)
        # From here until the commit below, the only copy of the new pair is in memory.
        now = self.clock.now()
        expires_at = now + timedelta(seconds=pair.expires_in)
        self.refreshes += 1
        try:
            # Shielded: a shutdown that cancels this call must not cancel the store.
            token = await asyncio.shield(self._store(row_id, pair, expires_at))
        except Exception:  # the database did not take it: kept here, offered again
            log.exception("zalo token row %s: new pair not stored yet; kept in memory", row_id)
            self._unsaved = (row_id, pair, expires_at)
            self._current = AccessToken(row_id, pair.access_token, expires_at)
            return self._current
        log.info("zalo token row %s refreshed into row %s", row_id, token.row_id)
        return token

    async def _store(self, old_id: int, pair: TokenPair, expires_at: datetime) -> AccessToken:
        active = await self.rows.replace(old_id, pair.access_token, pair.refresh_token,
                                         expires_at, self.clock.now())
        if active.access_token != pair.access_token:
            # Someone stored a pair meanwhile (only possible if Zalo honoured one refresh
            # token twice); theirs stays active, ours is kept as used for the record.
            log.warning("zalo token row %s: a newer pair was stored meanwhile", old_id)
        self._unsaved = None
        return self._remember(active)

    async def _store_unsaved(self) -> None:
        if self._unsaved is None:
            return
        row_id, pair, expires_at = self._unsaved
        try:
            await self._store(row_id, pair, expires_at)
        except Exception:
            log.warning("zalo token row %s: new pair still not stored", row_id)
        else:
            log.info("zalo token row %s: new pair stored after a database failure", row_id)

    async def _refused(self, row_id: int, claim: str, exc: RefreshRefused) -> AccessToken:
        """Zalo refused the refresh token. If another process replaced the pair meanwhile,
        that is not a failure; otherwise the pair is marked failed and the admins told."""
        now = self.clock.now()
        active = await self.rows.refused(row_id, claim, now)
        if active is not None:
            return self._remember(active)
        self._current = None
        self._lost_tried_at = now
        alerted = await self.alert_admins(row_id, exc.code) if self.alert_admins else 0
        log.error("zalo token row %s: refresh refused (code %s); %s admin(s) alerted",
                  row_id, exc.code, alerted)
        raise TokensLost(exc.code) from exc

    async def _retry_lost(self) -> None:
        """Try the last refused refresh token once more (see LOST_RETRY)."""
        self._lost_tried_at = self.clock.now()
        latest = await self.rows.latest()
        if latest is None or latest.status != "failed":
            return
        claim = f"{self.owner}:{uuid.uuid4().hex[:8]}"
        refresh_token = await self.rows.claim(latest.id, claim, self.clock.now(), self.lease,
                                              statuses=("failed",))
        if refresh_token is None:
            return
        try:
            await self._spend(latest.id, claim, refresh_token)
        except (TokensLost, RefreshUnavailable):
            return
        log.info("zalo token row %s: refused refresh token accepted on a new try", latest.id)
