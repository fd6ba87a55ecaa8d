"""A process that dies gives its work back within seconds: claims carry the process's
identity, its heartbeat says it is alive, and what a silent one held is free again at once
(issue 12, defect 3). Killed processes are played by apps whose tasks are cancelled and
whose database is dropped without the good-order stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.app import App, Setup, build_app
from bot.clock import FakeClock
from bot.config import DEMO_CONFIG, load_commune
from bot.domain.delivery import Delivery
from bot.domain.messages import Input
from bot.services.conversation import InboundEvent
from bot.workers.delivery import DeliveryWorker
from bot.workers.heartbeat import DEAD_AFTER, Heartbeat
from tests.support import START
from tests.support.channels import SenderPlugin
from tests.support.database import count, rows
from tests.support.workers import worker_of


class StuckChannel:
    """A channel whose sends hang until `unstick`, like a connection that died silently."""

    name = "web"

    def __init__(self) -> None:
        self.stuck = True
        self.entered = asyncio.Event()
        self.sent: list[int] = []
        self._open = asyncio.Event()

    def unstick(self) -> None:
        self.stuck = False
        self._open.set()

    async def deliver(self, delivery: Delivery) -> str | None:
        if self.stuck:
            self.entered.set()
            await self._open.wait()
            raise ConnectionError("the process was killed during this send")
        self.sent.append(delivery.outbox_id)
        return str(delivery.outbox_id)


@pytest.fixture
def wall() -> FakeClock:
    """The processes' real-time clock for heartbeats, moved by the test."""
    return FakeClock(START)


async def start_process(db_url: str, clock: FakeClock, wall: FakeClock, channel: StuckChannel,
                        name: str | None = None) -> App:
    return await build_app(Setup(db_url, load_commune(DEMO_CONFIG), clock, process_name=name,
                                 wall=wall), [SenderPlugin(channel)])


async def kill_while_sending(app: App, channel: StuckChannel) -> None:
    """Claim the queued messages, hang in the send, and die there, leases held."""
    sending = asyncio.create_task(worker_of(app, DeliveryWorker).deliver_due())
    await asyncio.wait_for(channel.entered.wait(), 5)
    sending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sending
    await app.database.close()


async def queue_replies(app: App, people: int) -> None:
    for n in range(people):
        await app.conversations.handle(InboundEvent(
            "web", f"citizen-{n}", Input("command", command="start"), key=f"start:{n}"))


@pytest.fixture
async def survivor(db_url: str, clock: FakeClock, wall: FakeClock) -> AsyncIterator[
        tuple[App, StuckChannel]]:
    channel = StuckChannel()
    channel.unstick()
    app = await start_process(db_url, clock, wall, channel)
    yield app, channel
    await app.close()


async def test_a_dead_process_claims_come_free_within_seconds_not_the_lease(
        db_url: str, clock: FakeClock, wall: FakeClock,
        survivor: tuple[App, StuckChannel]) -> None:
    other, delivered = survivor
    dying_channel = StuckChannel()
    dying = await start_process(db_url, clock, wall, dying_channel)
    await queue_replies(dying, 3)
    await kill_while_sending(dying, dying_channel)
    assert await count(other, "outbox", status="pending") == 3

    # The lease (a minute of the app's clock) has not run out, and the dead process's
    # last beat is still recent: its rows are not touched.
    assert await other.settle() == 0 and delivered.sent == []
    # Seconds of real time later it has missed its beats; the app's clock has not moved.
    wall.advance(DEAD_AFTER + timedelta(seconds=1))
    await other.settle()
    assert sorted(delivered.sent) == [r.id for r in await rows(other, "outbox")]
    assert await count(other, "outbox", status="sent") == 3
    assert await count(other, "processes") == 1


async def test_a_restart_takes_back_its_previous_incarnation_claims_at_once(
        db_url: str, clock: FakeClock, wall: FakeClock) -> None:
    channel = StuckChannel()
    first = await start_process(db_url, clock, wall, channel, name="host-1:8080")
    await queue_replies(first, 2)
    await kill_while_sending(first, channel)

    # Restarted on the same host and port at once: no beat was missed yet.
    again = StuckChannel()
    again.unstick()
    second = await start_process(db_url, clock, wall, again, name="host-1:8080")
    try:
        assert [r.lease_owner for r in await rows(second, "outbox")] == [None, None]
        await second.settle()
        assert await count(second, "outbox", status="sent") == 2
        assert len(again.sent) == 2
    finally:
        await second.close()


async def test_a_live_process_keeps_its_claims_and_a_good_stop_gives_them_back(
        db_url: str, clock: FakeClock, wall: FakeClock,
        survivor: tuple[App, StuckChannel]) -> None:
    other, delivered = survivor
    channel = StuckChannel()
    busy = await start_process(db_url, clock, wall, channel)
    await queue_replies(busy, 2)
    sending = asyncio.create_task(worker_of(busy, DeliveryWorker).deliver_due())
    await asyncio.wait_for(channel.entered.wait(), 5)
    # Minutes of real time pass, and the busy process keeps beating: nothing is taken.
    for _ in range(4):
        wall.advance(timedelta(seconds=3))
        await worker_of(busy, Heartbeat).run_due(clock.now())
        await other.settle()
    assert delivered.sent == []
    # Its send fails and it stops in good order: the rows are released, not lost.
    channel.unstick()
    await sending
    await busy.close()
    clock.advance(timedelta(minutes=5))
    await other.settle()
    assert await count(other, "outbox", status="sent") == 2


async def test_a_process_taken_for_dead_registers_again(
        db_url: str, clock: FakeClock, wall: FakeClock,
        survivor: tuple[App, StuckChannel]) -> None:
    other, _ = survivor
    channel = StuckChannel()
    frozen = await start_process(db_url, clock, wall, channel)
    try:
        wall.advance(DEAD_AFTER + timedelta(seconds=1))
        await other.settle()
        assert await count(other, "processes") == 1
        # It wakes from its freeze: it beats again, and is counted among the living.
        await worker_of(frozen, Heartbeat).run_due(clock.now())
        assert await count(other, "processes") == 2
    finally:
        await frozen.close()
