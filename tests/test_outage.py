"""A channel that fails for hours (issue 12, defects 1 and 2): what a case waits on is never
given up while the case is open, goes to the person's other channel and climbs the chain;
the administrators are told once; the first send that works again makes everything waiting
due at once; replies too old to matter give way to one "sorry, here is where you were"."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from bot import i18n
from bot.app import App, Setup, build_app
from bot.clock import FakeClock
from bot.config import ConfigError, parse_commune
from bot.domain.delivery import Delivery, DeliveryError
from bot.domain.messages import Input
from bot.services.conversation import InboundEvent
from storage import cases
from tests.support.channels import SenderPlugin
from tests.support.database import change, count, read, rows
from tests.support.messages import shows
from tests.support.stories import EMERGENCY_REPORT
from tests.support.telegram import IDS, OFFICER, POLICE, demo_commune_with


class Channel:
    """A channel edge that is up or down (every send fails as a 5xx would)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.down = False
        self.tries = 0
        self.received: dict[str, list[Delivery]] = defaultdict(list)

    async def deliver(self, delivery: Delivery) -> str | None:
        self.tries += 1
        if self.down:
            raise DeliveryError("502 Bad Gateway")
        self.received[delivery.address].append(delivery)
        return f"{self.name}-{delivery.outbox_id}"

    def texts(self, address: str) -> list[str]:
        return [t.id for d in self.received[address] for t in d.reply.texts]


@dataclass
class World:
    app: App
    clock: FakeClock
    telegram: Channel
    web: Channel

    async def wait(self, total: timedelta, step: timedelta = timedelta(seconds=30)) -> None:
        """Time passes; the workers do what falls due meanwhile."""
        passed = timedelta()
        while passed < total:
            self.clock.advance(step)
            passed += step
            await self.app.settle()

    async def report(self, sender: str, channel: str = "web") -> None:
        for n, (kind, value) in enumerate(EMERGENCY_REPORT):
            inp = Input("text", text=value) if kind == "text" else Input("choice", choice=value)
            await self.app.conversations.handle(
                InboundEvent(channel, sender, inp, key=f"{channel}:{sender}:{n}"))


@pytest.fixture
async def world(db_url: str, clock: FakeClock) -> AsyncIterator[World]:
    """The demo commune's staff on Telegram (their first channel) and the web; citizens
    report on the web."""
    telegram, web = Channel("telegram"), Channel("web")
    app = await build_app(Setup(db_url, parse_commune(demo_commune_with(IDS)), clock),
                          [SenderPlugin(telegram), SenderPlugin(web)])
    yield World(app, clock, telegram, web)
    await app.close()


def alerts_of(channel: Channel, address: str, code: str) -> list[Delivery]:
    return [d for d in channel.received[address] if d.kind in ("alert", "escalation")
            and any(t.params.get("code") == code for t in d.reply.texts)]


async def test_an_alert_is_never_given_up_while_its_case_is_open(
        db_url: str, clock: FakeClock) -> None:
    """Hours of failures used to end in 'failed for good' after 12 tries (23 minutes).
    Here Telegram is the only channel: nowhere else to go."""
    telegram = Channel("telegram")
    app = await build_app(Setup(db_url, parse_commune(demo_commune_with(IDS)), clock),
                          [SenderPlugin(telegram)])
    world = World(app, clock, telegram, Channel("web"))
    try:
        telegram.down = True
        await world.report("5001", channel="telegram")
        await world.wait(timedelta(hours=2), step=timedelta(minutes=1))
        alerts = await rows(app, "outbox", kind="alert")
        assert len(alerts) == 2 and {r.status for r in alerts} == {"pending"}
        assert await count(app, "outbox", status="failed") == 0
        assert min(r.attempts for r in alerts) > 12
        # Two hours on, the channel is back: each alert arrives, once.
        telegram.down = False
        await world.wait(timedelta(seconds=6), step=timedelta(seconds=3))
        for user in (OFFICER, POLICE):
            assert [d.kind for d in alerts_of(telegram, str(user), "VT-2026-0001")
                    ].count("alert") == 1
        delivered = [d.outbox_id for chat in telegram.received.values() for d in chat]
        assert len(delivered) == len(set(delivered))
        assert {r.status for r in await rows(app, "outbox", kind="alert")} == {"sent"}
    finally:
        await app.close()


async def test_a_failing_alert_goes_to_the_other_channel_and_the_case_climbs(
        world: World) -> None:
    world.telegram.down = True
    await world.report("citizen")
    case = await read(world.app, cases.case_by_code, "VT-2026-0001")
    assert case is not None and case.escalation_level == 1
    # A few seconds of failures are a hiccup: nothing moves yet.
    await world.wait(timedelta(seconds=60), step=timedelta(seconds=10))
    assert alerts_of(world.web, "officer", case.code) == []
    # Minutes of them: the officer gets it on the web, and the case goes up at once.
    await world.wait(timedelta(minutes=2), step=timedelta(seconds=10))
    assert [d.kind for d in alerts_of(world.web, "officer", case.code)] == ["alert"]
    case = await read(world.app, cases.case_by_code, "VT-2026-0001")
    assert case is not None and case.escalation_level >= 2
    # Level 2 is alerted on Telegram first, and a little later on the web too.
    await world.wait(timedelta(minutes=3), step=timedelta(seconds=10))
    assert alerts_of(world.web, "police_chief", case.code)

    # Telegram comes back: what already arrived on the web does not come again there.
    world.telegram.down = False
    await world.wait(timedelta(seconds=10), step=timedelta(seconds=5))
    assert alerts_of(world.telegram, str(OFFICER), case.code) == []
    for address in ("officer", "police"):
        assert [d.kind for d in alerts_of(world.web, address, case.code)].count("alert") == 1


async def test_the_first_send_that_works_makes_every_waiting_row_due_at_once(
        world: World) -> None:
    """After half an hour down, rows sat in pauses of up to five minutes; now the first
    send that goes through (an early try every few seconds) releases them all."""
    world.telegram.down = True
    for n in range(5):
        await world.app.conversations.handle(InboundEvent(
            "telegram", str(9000 + n), Input("command", command="start"), key=f"s{n}"))
    await world.wait(timedelta(minutes=30), step=timedelta(minutes=1))
    waiting = [r for r in await rows(world.app, "outbox", status="pending")]
    assert len(waiting) == 5
    assert max(r.next_attempt_at for r in waiting) > world.clock.now() + timedelta(minutes=1)

    world.telegram.down = False
    await world.wait(timedelta(seconds=3), step=timedelta(seconds=3))
    assert await count(world.app, "outbox", status="pending") == 0
    assert sorted(world.telegram.received) == [str(9000 + n) for n in range(5)]


async def test_the_administrators_are_told_once_on_a_channel_that_works(
        world: World) -> None:
    world.telegram.down = True
    await world.report("citizen")
    await world.wait(timedelta(minutes=10), step=timedelta(minutes=1))
    assert "delivery.channel_down" not in world.web.texts("admin")
    await world.wait(timedelta(hours=1), step=timedelta(minutes=1))
    assert world.web.texts("admin").count("delivery.channel_down") == 1
    assert "delivery.channel_back" not in world.web.texts("admin")

    # Everything waiting has arrived on the web meanwhile: the next message on Telegram is
    # what shows it works again.
    world.telegram.down = False
    await world.app.conversations.handle(InboundEvent(
        "telegram", "9000", Input("command", command="start"), key="back"))
    await world.wait(timedelta(seconds=10), step=timedelta(seconds=5))
    assert world.web.texts("admin").count("delivery.channel_back") == 1
    # A second failure later is a new one: told again, once.
    world.telegram.down = True
    await world.app.conversations.handle(InboundEvent(
        "telegram", "9001", Input("command", command="start"), key="later"))
    await world.wait(timedelta(minutes=30), step=timedelta(minutes=1))
    assert world.web.texts("admin").count("delivery.channel_down") == 2


async def test_stale_replies_give_way_to_one_sorry_that_asks_again(world: World) -> None:
    """A reporter on Telegram walks into a report while Telegram cannot answer; four hours
    later it works again: not a pile of stale answers, one sorry with the hotline and the
    question they were at, with its buttons."""
    world.telegram.down = True
    for n, (kind, value) in enumerate(EMERGENCY_REPORT[:2]):
        inp = Input("text", text=value) if kind == "text" else Input("choice", choice=value)
        await world.app.conversations.handle(InboundEvent("telegram", "9100", inp,
                                                          key=f"r{n}"))
    await world.wait(timedelta(hours=4), step=timedelta(minutes=5))
    world.telegram.down = False
    await world.wait(timedelta(seconds=10), step=timedelta(seconds=5))

    (only,) = world.telegram.received["9100"]
    assert only.kind == "sorry"
    assert only.reply.texts[0].id == "delivery.sorry"
    assert len(only.reply.texts) >= 2, "the question follows the sorry"
    assert only.reply.choices, "the question comes with its buttons"
    assert shows(i18n.t("delivery.sorry"), "delivery.sorry") and "111" in i18n.t(
        "delivery.sorry")
    assert await count(world.app, "outbox", kind="sorry") == 1
    assert {r.last_error for r in await rows(world.app, "outbox", kind="reply")} == {"expired"}
    # The conversation goes on from there.
    await world.app.conversations.handle(InboundEvent(
        "telegram", "9100", Input("choice", choice=only.reply.choices[0].id), key="r-next"))
    await world.app.settle()
    assert len(world.telegram.received["9100"]) == 2


async def test_a_closed_case_needs_its_waiting_alerts_no_more(world: World) -> None:
    world.telegram.down = True
    await world.report("citizen")
    await world.wait(timedelta(minutes=1))
    # Closed meanwhile (by an officer on another process, say).
    assert await change(world.app, "cases", {"status": "closed",
                                             "closed_at": world.clock.now()}, id=1) == 1
    await world.wait(timedelta(minutes=5), step=timedelta(minutes=1))
    alerts = [r for r in await rows(world.app, "outbox") if r.case_id == 1
              and r.kind in ("alert", "escalation") and r.channel == "telegram"]
    assert alerts and {(r.status, r.last_error) for r in alerts} == {("skipped", "case closed")}
    world.telegram.down = False
    await world.wait(timedelta(seconds=10), step=timedelta(seconds=5))
    assert alerts_of(world.telegram, str(OFFICER), "VT-2026-0001") == []


@pytest.mark.parametrize("table, error", [
    ({"replies_expire_after": "3 hours"}, "delivery.replies_expire_after"),
    ({"tell_admins_after": "2wd"}, "delivery.tell_admins_after"),
    ({"tell_admin_after": "15m"}, "delivery: unknown field(s) tell_admin_after"),
    ({"reroute_after": 5}, "delivery.reroute_after"),
    ({"reroute_after": "0m"}, "delivery.reroute_after"),
])
def test_delivery_settings_typos_name_what_to_fix(table: dict[str, object],
                                                   error: str) -> None:
    raw = demo_commune_with({})
    raw["delivery"] = table
    with pytest.raises(ConfigError) as caught:
        parse_commune(raw)
    assert str(caught.value).startswith(error) and "\n" not in str(caught.value)


def test_delivery_settings_are_read() -> None:
    raw = demo_commune_with({})
    raw["delivery"] = {"replies_expire_after": "90m", "tell_admins_after": "1h"}
    policy = parse_commune(raw).delivery
    assert policy.replies_expire_after == timedelta(minutes=90)
    assert policy.tell_admins_after == timedelta(hours=1)
    assert policy.reroute_after == timedelta(minutes=2)
