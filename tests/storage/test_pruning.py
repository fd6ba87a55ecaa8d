"""The prune functions of storage: what each keeps whatever its age, batches, and ids that
never come round again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.app import App
from bot.clock import FakeClock
from bot.domain.delivery import STORED
from bot.domain.messages import Media, Reply, say
from storage import broadcasts, files, outbox, simulator
from storage.db import Tx
from tests.support.database import change, rows, write

SECOND = timedelta(seconds=1)


async def queue(app: App, clock: FakeClock, status: str = "sent", *,
                meta: dict[str, Any] | None = None, broadcast_id: int | None = None,
                reply: Reply | None = None) -> int:
    """An outbox message for the officer, queued now, left at `status`."""
    (officer,) = await rows(app, "people", key="officer")

    async def add(tx: Tx) -> int:
        message = await outbox.add_message(
            tx, person_id=officer.id, case_id=None, channel="web", address="officer",
            kind="reply", payload={"reply": (reply or say("menu.prompt")).to_json(),
                                   "language": "vi", "meta": meta or {}},
            dedupe_key=None, broadcast_id=broadcast_id, now=clock.now())
        if status == "sent":
            await outbox.mark_sent(tx, [(message.id, "ref")], clock.now())
        elif status == "failed":
            await outbox.mark_failed(tx, message.id, "Forbidden", retry_at=None)
        elif status == "skipped":
            await outbox.skip(tx, message.id)
        return message.id

    return await write(app, add)


async def prune_all(app: App, fn: Any, *args: Any) -> list[int]:
    """Run a prune function in batches of 2 until a batch is not full; each batch's count."""
    counts = []
    while True:
        counts.append(await write(app, fn, *args, 2))
        if counts[-1] < 2:
            return counts


async def ids(app: App, table: str) -> set[int]:
    return {int(r.id) for r in await rows(app, table)}


async def test_delivered_messages_go_in_batches_and_what_is_needed_stays(
        app: App, clock: FakeClock) -> None:
    sent, failed, skipped = [await queue(app, clock, s) for s in ("sent", "failed", "skipped")]
    original = await queue(app, clock)
    edit = await queue(app, clock, "pending", meta={"edit_of": original})
    (officer,) = await rows(app, "people", key="officer")
    unfinished = await write(app, broadcasts.add_broadcast, app.directory.commune_id,
                             officer.id, 1, clock.now())
    copy = await queue(app, clock, broadcast_id=unfinished)
    progress = await queue(app, clock)
    await write(app, broadcasts.set_progress_message, unfinished, progress)
    waiting = await queue(app, clock, "pending")
    clock.advance(timedelta(days=31))
    newer = await queue(app, clock)

    counts = await prune_all(app, outbox.prune_delivered, clock.now() - timedelta(days=30))
    assert counts == [2, 1]
    assert not {sent, failed, skipped} & await ids(app, "outbox")
    # Pending messages; the message a waiting edit changes; an unfinished broadcast's copy
    # and progress message; anything newer than the retention.
    assert await ids(app, "outbox") == {original, edit, copy, progress, waiting, newer}

    # Once the broadcast is over and the edit sent, they go too; the newest row stays.
    await change(app, "broadcasts", {"finished_at": clock.now()}, id=unfinished)
    await change(app, "outbox", {"status": "sent"}, id=edit)
    await change(app, "outbox", {"status": "sent"}, id=waiting)
    clock.advance(timedelta(days=31))
    assert sum(await prune_all(app, outbox.prune_delivered, clock.now())) == 5
    assert await ids(app, "outbox") == {newer}


async def test_only_files_no_message_waits_for_go(app: App, clock: FakeClock) -> None:
    async def add(tx: Tx, name: str) -> int:
        return (await files.add_file(tx, name, "text/csv", b"a,b\n", clock.now())).id

    carried, alone = await write(app, add, "carried.csv"), await write(app, add, "alone.csv")
    await queue(app, clock, "pending", reply=Reply(
        (say("menu.prompt").texts[0],), media=Media("document", STORED, str(carried))))
    clock.advance(timedelta(days=8))
    assert await write(app, outbox.files_waiting) == {carried}
    assert await prune_all(app, files.prune, clock.now() - timedelta(days=7), {carried}) == [1]
    assert await ids(app, "stored_files") == {carried}
    # Not even the newest file is kept: a new file's link has its own token.
    assert await prune_all(app, files.prune, clock.now(), set()) == [1]
    assert await ids(app, "stored_files") == set()
    assert alone not in await ids(app, "stored_files")


async def test_a_pruned_id_is_never_handed_out_again(app: App, clock: FakeClock) -> None:
    """SQLite numbers a new row max(id) + 1: were the newest row deleted, the next one would
    take its id, and a phone that read up to it would never see the new message."""
    for n in range(3):
        await write(app, simulator.add_inbound, "citizen", {"text": f"{n}"}, clock.now())
    before = await ids(app, "sim_messages")
    clock.advance(timedelta(days=31))
    assert sum(await prune_all(app, simulator.prune, clock.now())) == len(before) - 1
    await write(app, simulator.add_inbound, "citizen", {"text": "new"}, clock.now())
    (newest,) = await ids(app, "sim_messages") - before
    assert newest > max(before)
    seen = await write(app, simulator.messages_after, "citizen", max(before))
    assert [m.payload["text"] for m in seen] == ["new"]
