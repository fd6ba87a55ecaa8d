"""Broadcasts to every collaborator: the flow in the simulator, 500 collaborators through the
fake Bot API (rate-limited, failing, some blocked), progress edits in order, and two trackers
sharing one database."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from playwright.async_api import Browser

from bot.app import App
from bot.clock import FakeClock
from bot.domain.delivery import Delivery, DeliveryError, Sender
from bot.domain.messages import Input
from bot.flows.broadcast import MAX_TEXT
from bot.handlers.telegram.polling import TelegramPoller
from bot.services.conversation import InboundEvent
from bot.workers.broadcasts import EDIT_EVERY, BroadcastTracker
from bot.workers.delivery import DeliveryWorker
from storage import broadcasts as broadcast_rows
from storage import outbox, people
from storage.db import Database, make_engine
from tests.support.database import change, count, rows, write
from tests.support.fake_telegram import FakeTelegram, Sent
from tests.support.simulator import Simulator, choice_ids
from tests.support.telegram import demo_commune_with, telegram_app
from tests.support.workers import worker_of

WARNING = "Mùa hè sắp đến: nhắc các gia đình trông trẻ khi đi bơi, không để trẻ tắm sông một mình."
COUNT = re.compile(r"(\d+)/(\d+)")


async def add_collaborators(app: App, n: int, channel: str | None, first: int = 0,
                            english_every: int = 0) -> list[int]:
    """`n` collaborators who joined through invites (no config key), each with one identity
    on `channel` (none at all when `channel` is None)."""
    ids: list[int] = []
    async with app.database.transaction() as s:
        for i in range(n):
            language = "en" if english_every and i % english_every == 0 else "vi"
            person = await people.add_person(s, commune_id=app.directory.commune_id, key=None,
                                           role="collaborator", name=f"CTV {first + i}",
                                           language=language, created_at=app.clock.now())
            if channel is not None:
                await people.bind_identity(s, person.id, channel, str(first + i))
            ids.append(person.id)
    return ids


async def broadcasts(app: App) -> Sequence[Any]:
    return await rows(app, "broadcasts")


async def copies(app: App) -> int:
    return await count(app, "outbox", kind="broadcast")


def tracker_of(app: App) -> BroadcastTracker:
    tracker = app.scheduler.worker("broadcasts")
    assert isinstance(tracker, BroadcastTracker)
    return tracker


def simulator_sender(app: App) -> Sender:
    """The app's own simulator sender (what shows a message on a phone)."""
    return worker_of(app, DeliveryWorker).senders["web"]


async def settle(app: App) -> None:
    """Run the tracker and the outbox until neither has anything left to do right now."""
    await app.settle(("delivery", "broadcasts"))


async def set_role(app: App, key: str, role: str) -> None:
    """Change a configured person's role behind the bot's back."""
    async with app.database.read() as s:
        person = await people.person_by_key(s, app.directory.commune_id, key)
    assert person is not None
    assert await change(app, "people", {"role": role}, id=person.id) == 1


async def officer_sends(app: App, text: str = WARNING) -> None:
    """The officer sends a broadcast in the simulator, without anything being delivered."""
    for n, inp in enumerate((Input("command", command="broadcast", args=text),
                             Input("choice", choice="broadcast:send"))):
        await app.conversations.handle(InboundEvent("web", "officer", inp, key=f"o{n}"))


def numbers(text: str) -> tuple[int, int]:
    found = COUNT.search(text)
    assert found, text
    return int(found.group(1)), int(found.group(2))


# ---- the flow in the simulator --------------------------------------------------------------


async def test_officer_broadcasts_through_the_simulator(sim: Simulator,
                                                       clock: FakeClock) -> None:
    app = sim.app
    # Beside the demo collaborator (a simulator phone): two more with phones, one with none.
    await add_collaborators(app, 2, "web", first=900)
    await add_collaborators(app, 1, None, first=950)
    officer = sim["officer"]
    await officer.text("/broadcast")
    prompt = await officer.last()
    assert prompt["ids"] == ["broadcast.prompt"] and "4 cộng tác viên" in prompt["text"]

    # Only emoji: a kind re-prompt, nothing stored.
    await officer.text("🌊🌊🌊 ❤️")
    again = await officer.inbox()
    assert [m["ids"] for m in again] == [["broadcast.need_text"], ["broadcast.prompt"]]

    await officer.text(WARNING)
    confirm = await officer.last()
    assert confirm["ids"] == ["broadcast.confirm"]
    assert WARNING in confirm["text"] and "4 cộng tác viên" in confirm["text"]
    assert choice_ids(confirm) == ["broadcast:send", "back", "cancel"]
    assert await broadcasts(app) == []

    await officer.tap("broadcast:send")
    await settle(app)
    for key in ("collaborator", "900", "901"):
        got = [m for m in await sim[key].inbox(all_=True) if "broadcast.message" in m["ids"]]
        assert len(got) == 1, key
        assert WARNING in got[0]["text"] and "Anh Hòa" in got[0]["text"]
        assert "Vĩnh Thủy" in got[0]["text"]

    log = await officer.inbox(all_=True)
    progress = [m for m in log if m["ids"][0].startswith(("broadcast.progress",
                                                          "broadcast.summary"))]
    # The progress message (edited to its final count) and the summary after it.
    assert [m["ids"] for m in progress] == [["broadcast.progress_done"], ["broadcast.summary"]]
    assert numbers(progress[0]["text"]) == (4, 4)
    summary = progress[1]["text"]
    assert "Đã nhận: 3" in summary and "Không gửi được: 1" in summary
    [done] = await broadcasts(app)
    assert done.finished_at is not None and done.total == 4
    # Sweeping again changes nothing: no second summary, no more edits.
    clock.advance(timedelta(minutes=5))
    await settle(app)
    assert await officer.inbox(all_=True) == log
    assert len([m for m in await sim["collaborator"].inbox(all_=True)
                if "broadcast.message" in m["ids"]]) == 1


async def test_broadcast_is_refused_to_citizens_and_police(sim: Simulator) -> None:
    for key in ("citizen", "police", "collaborator"):
        await sim[key].text("/broadcast")
        assert (await sim[key].last())["ids"] == ["broadcast.not_allowed"]
        await sim[key].text(f"/broadcast {WARNING}")
        assert (await sim[key].last())["ids"] == ["broadcast.not_allowed"]
    assert await broadcasts(sim.app) == [] and await copies(sim.app) == 0


async def test_cancel_sends_nothing(sim: Simulator) -> None:
    officer = sim["officer"]
    await officer.text("/broadcast")
    await officer.text(WARNING)
    await officer.tap("cancel")
    assert "flow.cancelled" in (await officer.last())["ids"]
    await settle(sim.app)
    assert await broadcasts(sim.app) == [] and await copies(sim.app) == 0
    assert await sim["collaborator"].inbox(all_=True) == []


async def test_text_typed_with_the_command_goes_to_the_confirmation(sim: Simulator) -> None:
    leader = sim["leader"]
    await leader.text(f"/broadcast {WARNING}")
    confirm = await leader.last()
    assert confirm["ids"] == ["broadcast.confirm"] and WARNING in confirm["text"]
    # Typing instead of pressing a button is answered kindly, and nothing goes out.
    await leader.text("ok")
    assert [m["ids"] for m in await leader.inbox()] == [["error.use_buttons"],
                                                         ["broadcast.confirm"]]
    assert await copies(sim.app) == 0
    await leader.tap("broadcast:send")
    await settle(sim.app)
    assert len(await sim["collaborator"].inbox(all_=True)) == 1


async def test_too_long_text_is_refused_kindly(sim: Simulator) -> None:
    officer = sim["officer"]
    await officer.text("/broadcast")
    await officer.text("Cảnh báo đuối nước. " * (MAX_TEXT // 10))
    replies = await officer.inbox()
    assert [m["ids"] for m in replies][-2:] == [["error.too_long"], ["broadcast.prompt"]]
    assert str(MAX_TEXT) in replies[-2]["text"]
    # The same text typed after the command: told why, then asked for the text.
    await officer.text("/broadcast " + "Cảnh báo đuối nước. " * (MAX_TEXT // 10))
    assert [m["ids"] for m in await officer.inbox()][-2:] == [["error.too_long"],
                                                              ["broadcast.prompt"]]


async def test_sending_rechecks_the_role(sim: Simulator) -> None:
    """An officer moved to another role between the question and the confirmation can no
    longer send: the action reads the role from the database, not from the flow."""
    officer = sim["officer"]
    await officer.text("/broadcast")
    await officer.text(WARNING)
    await set_role(sim.app, "officer", "police")
    await officer.tap("broadcast:send")
    assert (await officer.last())["ids"] == ["broadcast.not_allowed"]
    assert await broadcasts(sim.app) == [] and await copies(sim.app) == 0


async def test_moving_the_demo_clock_shows_the_summary(sim: Simulator) -> None:
    officer = sim["officer"]
    await officer.text(f"/broadcast {WARNING}")
    await officer.inbox()
    await officer.tap("broadcast:send")
    assert [m["ids"] for m in await officer.inbox()] == [["broadcast.progress"]]
    await sim.advance(minutes=1)
    assert [m["ids"] for m in await officer.inbox()] == [["broadcast.summary"]]
    assert "broadcast.progress_done" in (await officer.inbox(all_=True))[-2]["ids"]


async def test_nobody_to_send_to(sim: Simulator) -> None:
    await set_role(sim.app, "collaborator", "citizen")
    await sim["officer"].text("/broadcast")
    assert (await sim["officer"].last())["ids"] == ["broadcast.nobody"]


# ---- edits stay in order when the sender's chat is slow --------------------------------------


class SlowEdits:
    """The simulator, except that editing the sender's message fails (retry in a minute)
    while `failing` is set, as a chat API answering 429 to edits would."""

    name = "web"

    def __init__(self, inner: Sender) -> None:
        self.inner = inner
        self.failing = False
        # (text id, count shown) of every edit that went through, in order.
        self.edits: list[tuple[str, int]] = []

    async def deliver(self, delivery: Delivery) -> str | None:
        if delivery.kind == "edit":
            if self.failing:
                raise DeliveryError("429", retry_after=60)
            text = delivery.reply.texts[0]
            self.edits.append((text.id, int(text.params["done"])))
        return await self.inner.deliver(delivery)


async def test_a_waiting_edit_takes_the_newest_count_and_none_overtakes_it(
        app: App, clock: FakeClock) -> None:
    await add_collaborators(app, 9, "web", first=900)
    slow = SlowEdits(simulator_sender(app))
    # Two rows per sweep, so the count grows step by step.
    worker = DeliveryWorker(app.database, clock, {"web": slow}, batch=2)
    await officer_sends(app)
    [sent] = await broadcasts(app)
    assert sent.total == 10
    tracker = tracker_of(app)

    slow.failing = True
    for _ in range(4):
        clock.advance(EDIT_EVERY)
        await tracker.run_due(clock.now())
        await worker.deliver_due()
    clock.advance(EDIT_EVERY)
    await tracker.run_due(clock.now())
    edits = await rows(app, "outbox", kind="edit")
    # One edit waits (it keeps failing); newer counts went into it, not into new rows.
    assert len(edits) == 1 and edits[0].status == "pending"
    async with app.database.read() as s:
        counts = await outbox.broadcast_counts(s, sent.id)
    assert edits[0].payload["reply"]["texts"][0]["params"]["done"] == 10 - counts["pending"]
    slow.failing = False
    for _ in range(10):
        clock.advance(timedelta(seconds=61))
        await tracker.run_due(clock.now())
        await worker.deliver_due()
    shown = [done for _, done in slow.edits]
    assert len(shown) >= 2 and shown == sorted(set(shown)) and shown[-1] == 10
    assert slow.edits[-1][0] == "broadcast.progress_done"
    [done] = await broadcasts(app)
    assert done.finished_at is not None


# ---- 500 collaborators through the fake Bot API ---------------------------------------------

OFFICER = 5002
FIRST_CHAT = 700_000


class Bulk:
    def __init__(self, fake: FakeTelegram, app: App, poller: TelegramPoller,
                 clock: FakeClock) -> None:
        self.fake, self.app, self.poller, self.clock = fake, app, poller, clock
        self.delivery = worker_of(app, DeliveryWorker)

    async def pump(self) -> None:
        self.clock.advance(timedelta(seconds=2))
        while self.fake.updates and await self.poller.poll_once():
            pass
        await self.poller.answered()
        while await self.delivery.deliver_due():
            pass


@pytest.fixture
async def bulk(db_url: str, clock: FakeClock) -> AsyncIterator[Bulk]:
    fake = FakeTelegram(now=lambda: clock.now().timestamp())
    await fake.start()
    try:
        fake.add_user(OFFICER)
        # The fake's own 429s (30 a second, its clock tied to ours) pace the sends, so
        # moving the clock replaces waiting; PTB's AIORateLimiter would wait in real time.
        async with telegram_app(db_url, clock, fake, demo_commune_with({"officer": OFFICER}),
                                simulator=True, rate_limit=False) as (app, plugin):
            assert plugin.poller is not None
            yield Bulk(fake, app, plugin.poller, clock)
    finally:
        await fake.stop()


async def test_broadcast_to_500_collaborators_rate_limited_failing_and_blocked(
        bulk: Bulk) -> None:
    fake, app = bulk.fake, bulk.app
    await add_collaborators(app, 500, "telegram", first=FIRST_CHAT, english_every=5)
    await add_collaborators(app, 2, None, first=2000)  # no channel at all
    chats = range(FIRST_CHAT, FIRST_CHAT + 500)
    for chat in chats:
        fake.add_user(chat)
    blocked = set(range(FIRST_CHAT + 3, FIRST_CHAT + 500, 20))  # 25 chats blocked the bot
    fake.blocked.update(blocked)

    fake.user_text(OFFICER, "/broadcast")
    await bulk.pump()
    # 500 on Telegram, 2 without a channel, and the demo collaborator's simulator phone.
    assert "503" in fake.inbox(OFFICER)[-1].text
    fake.user_text(OFFICER, WARNING)
    await bulk.pump()
    assert WARNING in fake.inbox(OFFICER)[-1].text
    fake.fail_next.extend([500, 502, "timeout", 503, "timeout", 500])
    fake.press(OFFICER, "broadcast:send")
    while fake.updates and await bulk.poller.poll_once():
        pass
    await bulk.poller.answered()

    tracker = tracker_of(app)
    progress: Sent | None = None
    for _ in range(200):
        bulk.clock.advance(timedelta(seconds=1.5))
        while await bulk.delivery.deliver_due():
            pass
        await tracker.run_due(bulk.clock.now())
        if progress is None:
            progress = next((m for m in fake.inbox(OFFICER) if COUNT.search(m.text)), None)
        if (await broadcasts(app))[0].finished_at is not None:
            break
    while await bulk.delivery.deliver_due():
        pass
    [sent] = await broadcasts(app)
    assert sent.finished_at is not None and sent.total == 503
    assert not fake.fail_next, "every fault was served"
    assert fake.rejected_429 > 0, "the rate limit was hit"

    # Every reachable collaborator got the message exactly once, in their language.
    got = Counter(m.chat_id for m in fake.sent if WARNING in m.text and m.chat_id != OFFICER)
    assert got == Counter({chat: 1 for chat in chats if chat not in blocked})
    english = {m.chat_id for m in fake.sent if m.text.startswith("📢 Message from")}
    assert english == {c for c in chats if (c - FIRST_CHAT) % 5 == 0 and c not in blocked}

    # The progress message grew, edit after edit, to its final count; then the summary.
    assert progress is not None
    counts = [numbers(text) for text in progress.edits]
    assert len(counts) >= 3, counts
    assert [d for d, _ in counts] == sorted(d for d, _ in counts)
    assert counts[0][0] < counts[-1][0] == 503 and {t for _, t in counts} == {503}
    summary = fake.inbox(OFFICER)[-1].text
    assert "Đã nhận: 476" in summary and "Không gửi được: 27" in summary
    async with app.database.read() as s:
        ident = await people.identity(s, "telegram", str(min(blocked)))
        failed = await outbox.broadcast_counts(s, sent.id)
    assert ident is not None and ident.unreachable_at is not None
    assert failed == {"sent": 476, "failed": 25}


# ---- two trackers on one database -----------------------------------------------------------


async def test_two_trackers_never_both_edit_or_summarise(app: App, db_url: str,
                                                         clock: FakeClock) -> None:
    await add_collaborators(app, 29, "web", first=900)
    await officer_sends(app)
    # A second process: its own connection pool and its own tracker.
    other_db = Database(make_engine(db_url))
    try:
        first = BroadcastTracker(app.database, app.outbox, owner="one")
        second = BroadcastTracker(other_db, app.outbox, owner="two")
        worker = DeliveryWorker(app.database, clock, {"web": simulator_sender(app)},
                                batch=4)
        per_round: list[int] = []
        for _ in range(30):
            clock.advance(EDIT_EVERY)
            await worker.deliver_due()
            now = clock.now()
            results = await asyncio.gather(first.run_due(now), second.run_due(now),
                                           first.run_due(now), second.run_due(now))
            per_round.append(sum(results))
            if (await broadcasts(app))[0].finished_at is not None:
                break
        while await worker.deliver_due():
            pass
    finally:
        await other_db.close()
    [sent] = await broadcasts(app)
    assert sent.finished_at is not None
    # Within one sweep at one instant, one tracker at most did anything with it.
    assert max(per_round) == 1 and sum(per_round) >= 3
    everything = await rows(app, "outbox")
    async with app.database.read() as s:
        officer = await people.person_by_key(s, app.directory.commune_id, "officer")
    assert officer is not None
    mine = [r for r in everything if r.person_id == officer.id]
    summaries = [r for r in mine if r.payload["reply"]["texts"][0]["id"] == "broadcast.summary"]
    assert len(summaries) == 1
    edits = [r for r in mine if r.kind == "edit"]
    shown = [r.payload["reply"]["texts"][0]["params"]["done"] for r in edits]
    assert shown == sorted(set(shown)), "no edit repeats or goes back"
    assert all(r.status == "sent" for r in edits) and len(edits) == sent.edits


async def test_a_leased_broadcast_is_left_alone_until_the_lease_runs_out(
        app: App, clock: FakeClock) -> None:
    await officer_sends(app)
    while await worker_of(app, DeliveryWorker).deliver_due():
        pass
    [sent] = await broadcasts(app)
    # Another process claimed it and then died.
    assert await write(app, broadcast_rows.claim, [sent.id], "dead", clock.now(),
                       timedelta(seconds=60)) == [sent.id]
    tracker = tracker_of(app)
    assert await tracker.run_due(clock.now()) == 0
    assert (await broadcasts(app))[0].finished_at is None
    clock.advance(timedelta(seconds=61))
    assert await tracker.run_due(clock.now()) == 1
    assert (await broadcasts(app))[0].finished_at is not None


def _ids(rows: list[dict[str, Any]]) -> list[list[str]]:
    return [m["ids"] for m in rows]


async def test_people_with_no_channel_alone_finish_at_once(sim: Simulator) -> None:
    await set_role(sim.app, "collaborator", "citizen")
    await add_collaborators(sim.app, 3, None)
    await sim["officer"].text(f"/broadcast {WARNING}")
    await sim["officer"].tap("broadcast:send")
    await settle(sim.app)
    log = [m for m in await sim["officer"].inbox(all_=True)
           if m["ids"][0] in ("broadcast.progress_done", "broadcast.summary")]
    assert _ids(log) == [["broadcast.progress_done"], ["broadcast.summary"]]
    assert "Đã nhận: 0" in log[1]["text"] and "Không gửi được: 3" in log[1]["text"]


# ---- the simulator page -----------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_simulator_page_redraws_the_edited_progress_message(
        sim: Simulator, browser: Browser) -> None:
    page = await browser.new_page()
    await page.goto(sim.base + "/?phones=officer,collaborator")
    officer = page.locator("#phone-officer")
    await officer.wait_for(timeout=10_000)
    box = officer.locator("input[name=text]")
    await box.fill(f"/broadcast {WARNING}")
    await box.press("Enter")
    send = officer.locator("button[data-choice='broadcast:send']").last
    await send.wait_for(timeout=10_000)
    await send.click()
    await page.locator("#phone-collaborator .msg.out", has_text=WARNING).wait_for(
        timeout=10_000)
    await officer.locator(".msg.out", has_text="Đang gửi").wait_for(timeout=10_000)
    # The tracker's turn (moving the demo clock does the same): the progress message is
    # edited to its final count, and the page shows the edit in place, not as a new message.
    await settle(sim.app)
    await officer.locator(".msg.out", has_text="Đã gửi xong").wait_for(timeout=10_000)
    await officer.locator(".msg.out", has_text="Đã nhận: 1").wait_for(timeout=10_000)
    assert await officer.locator(".msg.out", has_text="Đang gửi").count() == 0
    assert await officer.locator(".msg.out", has_text="cộng tác viên: 1/1").count() == 1
