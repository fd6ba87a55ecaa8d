"""A send that hangs holds up its own chat only (issue 12, found by the chaos test): the
delivery worker used to wait for every send of a look before claiming the next, so one
request left unanswered until the read timeout (10 s in production) held every other
person's messages as long."""

from __future__ import annotations

import time
from datetime import timedelta

from bot.clock import FakeClock
from bot.domain.messages import Input
from bot.services.conversation import InboundEvent
from tests.support.database import rows
from tests.support.fake_telegram import FakeTelegram
from tests.support.telegram import IDS, demo_commune_with, telegram_app
from tests.support.waiting import eventually

HUNG, OTHER = 5201, 5202
READ_TIMEOUT = 3.0


def asks_for_help(user: int, n: int) -> InboundEvent:
    return InboundEvent("telegram", str(user), Input("command", command="help"),
                        key=f"{user}:{n}")


async def test_a_hung_send_holds_up_only_its_own_chat(db_url: str, clock: FakeClock) -> None:
    fake = FakeTelegram(per_chat_burst=100)
    await fake.start()
    for user in (HUNG, OTHER):
        fake.add_user(user)
    try:
        async with telegram_app(db_url, clock, fake, demo_commune_with(IDS),
                                read_timeout=READ_TIMEOUT) as (app, _):
            await app.start()
            fake.fail_next.append("timeout")  # the next send hangs past the read timeout
            await app.conversations.handle(asks_for_help(HUNG, 1))
            await eventually(lambda: "sendMessage:timeout" in fake.calls)
            hung_at = time.perf_counter()

            await app.conversations.handle(asks_for_help(OTHER, 1))
            await eventually(lambda: fake.inbox(OTHER), seconds=READ_TIMEOUT)
            waited = fake.inbox(OTHER)[0].at - hung_at
            assert waited < 1.0, f"the other chat waited {waited:.2f} s behind the hung send"
            assert not fake.inbox(HUNG), "the hung chat's message is still under way"

            # The hung send times out and is tried again; the chat's next message follows
            # it, never before it.
            await app.conversations.handle(asks_for_help(HUNG, 2))
            async def hung_send_failed() -> bool:
                return any(r.last_error for r in await rows(app, "outbox"))

            await eventually(hung_send_failed, seconds=READ_TIMEOUT + 2)
            clock.advance(timedelta(minutes=1))  # past the retry's pause
            await eventually(lambda: len(fake.inbox(HUNG)) >= 2 * len(fake.inbox(OTHER)))
            texts = [m.text for m in fake.inbox(HUNG)]
            assert texts == [m.text for m in fake.inbox(OTHER)] * 2, texts
    finally:
        await fake.stop()
