"""The Zalo webhook over real HTTP on loopback: signature, age, store-then-200, duplicates,
order, crash recovery, and what each kind of event becomes. Outbound messages are read from
the outbox rows here (the Zalo channel's own tests send them through the fake OA API)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.handlers.zalo.inbound import text_input, to_events
from bot.handlers.zalo.webhook import event_key
from bot.workers.inbound import InboundWorker, backoff
from storage import conversations, inbound, people
from tests.support.database import count, rows
from tests.support.zalo import Hooked, commits_on, database_error, open_hook

APP_ID, OA_ID, SECRET = "3608465249409039", "3886132808788086", "oa-secret-key-for-tests"
CITIZEN, OTHER = "2468458835291979", "2468458835291980"
REPORT = ("#menu:report", "#danger:no", "#type:violence", "#types:done", "Thôn Tây",
          "#age:6-10", "#sex:boy", "#skip", "#count:1",
          "Bố đánh bé bằng roi, bé chạy sang nhà hàng xóm.", "#photos:done",
          "#contact:anonymous")


def ids_of(reply: dict[str, Any]) -> list[str]:
    return [t["id"] for t in reply["texts"]]


def choices_of(reply: dict[str, Any]) -> list[str]:
    return [c["id"] for c in reply["choices"]]


async def start_hook(db_url: str, clock: FakeClock) -> Hooked:
    """A process serving the Zalo webhook of the OA (APP_ID, OA_ID, SECRET)."""
    return await open_hook(db_url, clock, APP_ID, OA_ID, SECRET)


async def stored_event(h: Hooked, key: str) -> Any:
    """The inbound queue's row of this event (raw: its sender, lease, error)."""
    (row,) = await rows(h.app, "inbound_queue", key=key)
    return row


@pytest.fixture
async def hooked(db_url: str, clock: FakeClock) -> AsyncIterator[Hooked]:
    h = await start_hook(db_url, clock)
    yield h
    await h.close()


async def test_refused_events_store_nothing(hooked: Hooked) -> None:
    h, users = hooked, hooked.users
    event = users.text_event(CITIZEN, "/start")
    assert await users.post(event, key="not-the-oa-secret") == 401
    assert await users.post(event, header=False) == 401
    assert await users.post(event, tamper=lambda b: b.replace(b"/start", b"/help!")) == 401
    # A recorded event replayed long after (its timestamp is signed, so it cannot be moved).
    old = users.message_event("user_send_text", CITIZEN, {"text": "/start"},
                              at_ms=int((h.clock.now() - timedelta(hours=3)).timestamp() * 1000))
    assert await users.post(old) == 401
    ahead = users.message_event("user_send_text", CITIZEN, {"text": "/start"},
                                at_ms=int((h.clock.now() + timedelta(hours=1)).timestamp() * 1000))
    assert await users.post(ahead) == 401
    # Signed for another Zalo app, or not JSON at all.
    assert await users.post({**event, "app_id": "999"}) == 401
    assert await users.post_raw(event, b"{not json", {"X-ZEvent-Signature": "mac=00"}) == 401
    assert await h.handle() == 0
    assert await h.counts() == (0, 0, 0)
    # The genuine event goes through.
    assert await users.post(event) == 200
    assert await h.handle() == 1
    queued, keys, sent = await h.counts()
    assert (queued, keys) == (1, 1) and sent == 1


async def test_the_200_comes_before_the_handling(hooked: Hooked) -> None:
    h = hooked
    assert await h.users.send_text(CITIZEN, "/start") == 200
    # Answered: stored, nothing handled, nothing said yet.
    row = await stored_event(h, event_key(h.users.posted[-1].event))
    assert row is not None and row.processed_at is None and row.sender == CITIZEN
    assert await h.counts() == (1, 0, 0)
    assert await h.handle() == 1
    assert await h.handle() == 0
    replies = await h.replies(CITIZEN)
    assert [ids_of(r) for r in replies] == [["welcome", "menu.prompt"]]
    assert "menu:report" in choices_of(replies[0])
    row = await stored_event(h, event_key(h.users.posted[-1].event))
    assert row is not None and row.processed_at is not None and row.attempts == 1


async def test_worker_started_by_the_engine_handles_what_the_webhook_stored(
        hooked: Hooked) -> None:
    h = hooked
    await h.app.start()
    assert await h.users.send_text(CITIZEN, "/start") == 200
    for _ in range(200):
        if await h.replies(CITIZEN):
            break
        await asyncio.sleep(0.01)
    assert [ids_of(r) for r in await h.replies(CITIZEN)] == [["welcome", "menu.prompt"]]


async def test_zalo_retry_schedule_makes_one_report_step(hooked: Hooked) -> None:
    h = hooked
    await h.say(CITIZEN, "/start", *REPORT)
    before = len(await h.replies(CITIZEN))
    assert await h.users.press(CITIZEN, "#confirm") == 200
    await h.handle()
    # Zalo did not see our answer and delivers the same event again, five times, on its
    # schedule; every time it gets its 200 and nothing happens again.
    for wait in (timedelta(seconds=30), timedelta(minutes=5), timedelta(minutes=15),
                 timedelta(minutes=30), timedelta(hours=1)):
        h.clock.advance(wait)
        assert await h.users.redeliver(-1) == 200
        await h.handle()
    replies = (await h.replies(CITIZEN))[before:]
    assert len(replies) == 1 and "report.received" in ids_of(replies[0])
    cases = await rows(h.app, "cases")
    async with h.app.database.read() as s:
        conv = await conversations.conversation(s, cases[0].reporter_id)
    queued = await count(h.app, "inbound_queue")
    assert len(cases) == 1 and conv is not None and conv.state["flow"] is None
    assert queued == len(REPORT) + 2  # /start, the report, one confirm: retries stored nothing


async def test_a_retried_description_moves_the_report_one_step(hooked: Hooked) -> None:
    h = hooked
    await h.say(CITIZEN, "/start", *REPORT[:9])
    assert await h.users.send_text(CITIZEN, REPORT[9]) == 200
    for wait in (timedelta(seconds=30), timedelta(minutes=5)):
        h.clock.advance(wait)
        assert await h.users.redeliver(-1) == 200
    await h.handle()
    replies = await h.replies(CITIZEN)
    assert [ids_of(r) for r in replies].count(["report.photos.prompt"]) == 1
    assert ids_of(replies[-1]) == ["report.photos.prompt"]


async def test_one_persons_events_are_handled_in_order_by_two_processes(
        hooked: Hooked, db_url: str) -> None:
    h = hooked
    # Stored in a burst, before any worker runs: the whole report, then someone else.
    for text in ("/start", *REPORT, "#confirm"):
        assert await h.users.send_text(CITIZEN, text) == 200
    assert await h.users.send_text(OTHER, "/help") == 200
    # A second process on the same database, with its own app and worker; both take
    # small batches, so each would get some of the citizen's events if it could.
    other = await start_hook(db_url, h.clock)
    try:
        h.inbound.batch = other.inbound.batch = 3

        async def drain(worker: InboundWorker) -> None:
            for _ in range(100):
                await worker.run_due(h.clock.now())
                async with h.app.database.read() as s:
                    if not await inbound.unhandled_count(s):
                        return
                await asyncio.sleep(0)

        await asyncio.gather(drain(h.inbound), drain(other.inbound))
    finally:
        await other.close()
    replies = await h.replies(CITIZEN)
    assert "report.received" in ids_of(replies[-1])
    assert not any("error.use_buttons" in ids_of(r) or "error.stale_button" in ids_of(r)
                   for r in replies)
    assert [ids_of(r) for r in await h.replies(OTHER)] == [["help.prompt"]]
    assert await count(h.app, "cases") == 1


async def test_a_crash_after_storing_loses_nothing(db_url: str, clock: FakeClock) -> None:
    h = await start_hook(db_url, clock)
    assert await h.users.send_text(CITIZEN, "/start") == 200
    await h.close()  # the process dies before the worker got to the event

    h = await start_hook(db_url, clock)
    try:
        assert await h.inbound.run_due(clock.now()) == 1
        assert await h.inbound.run_due(clock.now()) == 0
        queued = await rows(h.app, "outbox", address=CITIZEN)
        assert [r.payload["reply"]["texts"][0]["id"] for r in queued] == ["welcome"]
    finally:
        await h.close()


async def test_a_crash_between_handling_and_marking_handles_once(hooked: Hooked) -> None:
    h = hooked
    assert await h.users.send_text(CITIZEN, "/start") == 200
    # The handler ran and committed, then the process died before marking the event: the
    # lease runs out and another process takes the event again.
    worker = h.inbound
    async with h.app.database.transaction() as s:
        leased = await inbound.lease_due(s, h.clock.now(), ["zalo"], "dead-process",
                                         timedelta(seconds=60), 10)
        payload = dict(leased[0].payload)
    await worker.handlers["zalo"](payload)
    assert await worker.run_due(h.clock.now()) == 0  # still leased by the dead process
    h.clock.advance(timedelta(seconds=61))
    assert await worker.run_due(h.clock.now()) == 1
    assert [ids_of(r) for r in await h.replies(CITIZEN)] == [["welcome", "menu.prompt"]]


def fail_on_boom(h: Hooked, failures: list[str] | None = None
                 ) -> Callable[[Mapping[str, Any]], Awaitable[None]]:
    """Install (and return) a Zalo handler with a bug: an event saying "boom" fails (and
    is noted in `failures`)."""
    handler = h.inbound.handlers["zalo"]

    async def flaky(event: Mapping[str, Any]) -> None:
        if event["message"].get("text") == "boom":
            if failures is not None:
                failures.append("boom")
            raise RuntimeError("a bug")
        await handler(event)

    h.inbound.handlers["zalo"] = flaky
    return flaky


async def test_an_event_that_keeps_failing_is_set_aside_and_frees_the_line(
        hooked: Hooked) -> None:
    h = hooked
    poison: list[str] = []
    fail_on_boom(h, poison)
    await h.users.send_text(CITIZEN, "boom")
    await h.users.send_text(CITIZEN, "/start")
    for _ in range(8):
        await h.handle()
        h.clock.advance(timedelta(minutes=15))
    assert len(poison) == 5
    # The message behind it was held back until then, and then handled.
    assert [ids_of(r) for r in await h.replies(CITIZEN)] == [["welcome", "menu.prompt"]]
    row = await stored_event(h, event_key(h.users.posted[0].event))
    assert row is not None and row.processed_at is not None
    assert row.last_error == "RuntimeError"


async def test_every_kind_of_event(hooked: Hooked) -> None:
    h, users = hooked, hooked.users
    assert await users.follow(CITIZEN) == 200
    await h.handle()
    assert ids_of((await h.replies(CITIZEN))[-1]) == ["welcome", "menu.prompt"]
    assert await users.click_chat_now(OTHER) == 200
    await h.handle()
    assert ids_of((await h.replies(OTHER))[-1]) == ["welcome", "menu.prompt"]

    await h.say(CITIZEN, *REPORT[:4])
    assert await users.share_location(CITIZEN, 19.81, 105.77) == 200
    await h.handle()
    assert ids_of((await h.replies(CITIZEN))[-1]) == ["report.age.prompt"]
    await h.say(CITIZEN, *REPORT[5:9], REPORT[9])
    assert await users.send_image(CITIZEN, "https://photo-zaloapp.zadn.vn/a.jpg",
                                  "https://photo-zaloapp.zadn.vn/b.jpg") == 200
    await h.handle()
    # A sticker is not an answer: a kind word and the same question again.
    assert await users.post(users.sticker_event(CITIZEN)) == 200
    await h.handle()
    last_two = (await h.replies(CITIZEN))[-2:]
    assert ids_of(last_two[0]) == ["report.photos.hint"]
    assert ids_of(last_two[1]) == ["report.photos.prompt"]
    async with h.app.database.read() as s:
        ident = await people.identity(s, "zalo", CITIZEN)
        assert ident is not None
        conv = await conversations.conversation(s, ident.person_id)
    assert conv is not None
    assert conv.state["data"]["latitude"] == 19.81
    assert conv.state["data"]["photos"] == ["https://photo-zaloapp.zadn.vn/a.jpg",
                                            "https://photo-zaloapp.zadn.vn/b.jpg"]

    # A delivery receipt is kept and set aside, without a word to anyone.
    sent_before = (await h.counts())[2]
    assert await users.post(users.receipt_event(CITIZEN)) == 200
    await h.handle()
    assert (await h.counts())[2] == sent_before

    # Leaving the OA makes the person unreachable on Zalo; writing again undoes it.
    assert await users.unfollow(CITIZEN) == 200
    await h.handle()
    async with h.app.database.read() as s:
        ident = await people.identity(s, "zalo", CITIZEN)
    assert ident is not None and ident.unreachable_at is not None
    await h.say(CITIZEN, "/help")
    async with h.app.database.read() as s:
        ident = await people.identity(s, "zalo", CITIZEN)
    assert ident is not None and ident.unreachable_at is None


def test_button_payloads_and_typed_text_are_told_apart() -> None:
    assert text_input("#case:ack:12").choice == "case:ack:12"
    assert text_input("#confirm").kind == "choice"
    # Typed words stay words, even when they look like a choice id.
    assert text_input("confirm").kind == "text"
    assert text_input("lan").text == "lan"
    assert text_input("# hello there").kind == "text"
    assert text_input("#").kind == "text"
    assert (text_input("/Status VT-1").command, text_input("/Status VT-1").args) == (
        "status", "VT-1")
    assert to_events({"event_name": "user_send_text", "message": {"text": "x"}}) is None
    assert to_events({"event_name": "oa_send_text", "sender": {"id": OA_ID},
                      "message": {"msg_id": "1", "text": "x"}}) is None
    bad = to_events({"event_name": "user_send_location", "sender": {"id": CITIZEN},
                     "message": {"msg_id": "2", "attachments": [
                         {"payload": {"coordinates": {"latitude": "north"}}}]}})
    assert isinstance(bad, list) and bad[0].input.kind == "other"
    assert len(event_key({"event_name": "follow", "follower": {"id": "9" * 200},
                          "timestamp": "1"})) <= 128


async def test_events_arriving_together_share_one_commit_and_duplicates_store_once(
        hooked: Hooked) -> None:
    """Many people writing at once: their events are stored in a few transactions, not one
    each (that keeps the 200 fast); copies of one event among them are stored once."""
    h, users = hooked, hooked.users
    people = [str(int(CITIZEN) + 10 + n) for n in range(12)]
    events = [users.text_event(p, "/start") for p in people]
    with commits_on(h.app) as commits:
        statuses = await asyncio.gather(*(users.post(e) for e in events),
                                        *(users.post(events[0]) for _ in range(4)))
    assert statuses == [200] * 16
    assert len(commits) <= 8  # one per request would be 16
    queued, _, _ = await h.counts()
    assert queued == 12
    while await h.handle():
        pass
    for person in people:
        assert [ids_of(r) for r in await h.replies(person)] == [["welcome", "menu.prompt"]]


async def test_a_database_failure_answers_500_and_zalos_retry_stores_it(
        hooked: Hooked, monkeypatch: pytest.MonkeyPatch) -> None:
    h, users = hooked, hooked.users
    real = inbound.store_events
    failing = [True]

    async def store_events(*args: Any) -> list[bool]:
        if failing[0]:
            raise database_error("disk I/O error")
        return await real(*args)

    # The webhook's events are stored through storage.inbound (bot/services/channel_support).
    monkeypatch.setattr(inbound, "store_events", store_events)
    assert await users.send_text(CITIZEN, "/start") == 500
    assert await h.counts() == (0, 0, 0)
    failing[0] = False
    h.clock.advance(timedelta(seconds=30))
    assert await users.redeliver(-1) == 200
    assert await h.handle() == 1
    assert [ids_of(r) for r in await h.replies(CITIZEN)] == [["welcome", "menu.prompt"]]


async def test_handled_events_are_deleted_after_a_day_set_aside_ones_after_thirty(
        hooked: Hooked) -> None:
    """A stored event holds what the person wrote: once its work is done it goes."""
    h = hooked
    flaky = fail_on_boom(h)
    await h.users.send_text(OTHER, "boom")
    for _ in range(7):
        await h.handle()
        h.clock.advance(timedelta(minutes=15))
    await h.say(CITIZEN, "/start")
    set_aside, handled = (event_key(p.event) for p in h.users.posted)

    async def stored() -> set[str]:
        return {r.key for r in await rows(h.app, "inbound_queue")}

    h.clock.advance(timedelta(hours=23))
    await h.handle()
    assert await stored() == {set_aside, handled}
    h.clock.advance(timedelta(hours=2))
    # An event still waiting is never deleted, however the clock moves: Zalo's events are
    # left unhandled for a while (the worker serves no Zalo), while it keeps sweeping.
    assert await h.users.send_text(CITIZEN, "/help") == 200
    waiting = event_key(h.users.posted[-1].event)
    h.inbound.handlers = {"other": flaky}
    await h.handle()
    assert await stored() == {set_aside, waiting}
    h.clock.advance(timedelta(days=30))
    await h.handle()
    assert await stored() == {waiting}
    # Zalo's retry of a deleted event is refused as a replay, long before it is deleted.
    assert await h.users.redeliver(1) == 401
    h.inbound.handlers = {"zalo": flaky}
    await h.handle()
    replies = [ids_of(r) for r in await h.replies(CITIZEN)]
    assert replies.count(["welcome", "menu.prompt"]) == 1 and len(replies) == 2


async def test_an_event_waiting_behind_a_retry_does_not_make_the_worker_look_early(
        hooked: Hooked) -> None:
    """A person's first event failed and waits out its backoff; their next event cannot be
    handled before it, so the worker's next look is the retry time, not 'now'."""
    h = hooked
    fail_on_boom(h)
    await h.users.send_text(CITIZEN, "boom")
    await h.users.send_text(CITIZEN, "/start")
    assert await h.handle() == 1  # the first failed; the second waits behind it
    due = await h.inbound.next_due(h.clock.now())
    assert due is not None and due == h.clock.now() + backoff(1)


async def test_text_no_database_could_keep_is_stored_and_answered(hooked: Hooked) -> None:
    """A lone surrogate and a NUL, signed by Zalo: the event is stored (as the database can
    keep it) and the report made of it goes through, on SQLite and PostgreSQL alike."""
    h = hooked
    description = "Bố đánh bé \ud800 bằng roi,\x00 bé chạy sang nhà hàng xóm."
    await h.say(CITIZEN, "/start", *(description if t.startswith("Bố") else t
                                     for t in REPORT), "#confirm")
    texts = [t["id"] for r in await h.replies(CITIZEN) for t in r["texts"]]
    assert "report.received" in texts
    (case,) = await rows(h.app, "cases")
    assert case.description == "Bố đánh bé \ufffd bằng roi, bé chạy sang nhà hàng xóm."
    assert await count(h.app, "inbound_queue", processed_at=None) == 0
