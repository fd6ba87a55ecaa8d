"""Telegram long polling (telegram channel): an update is confirmed to Telegram only after
the conversation service has committed it."""

from __future__ import annotations

import asyncio
import logging

from telegram import Bot, Update
from telegram.error import NetworkError, RetryAfter, TelegramError

from bot.handlers.telegram.application import ALLOWED_UPDATES, retry_after_seconds
from bot.handlers.telegram.inbound import TelegramUpdates

log = logging.getLogger(__name__)
# An update that fails this many times is a bug, not a fault: it is confirmed and logged so
# it cannot stall every other reporter behind it.
MAX_UPDATE_FAILURES = 5


def _lane(update: Update) -> str:
    user = update.effective_user
    return f"u{user.id}" if user is not None else f"x{update.update_id}"


class TelegramPoller:
    """Long polling that confirms an update only after it has been committed.

    One batch is handled concurrently across people and in order for each person; the
    offset then moves past everything stored, and stops at the first update that was not
    (the ones after it come back and are recognised as duplicates). Button presses are
    answered (the spinner stopped) in the background: a hung answerCallbackQuery would
    otherwise hold every person's next update for the whole read timeout."""

    def __init__(self, adapter: TelegramUpdates, long_poll: int = 25) -> None:
        self.adapter = adapter
        self.long_poll = long_poll
        self.offset: int | None = None
        self._failures: dict[int, int] = {}
        self._answering: set[asyncio.Task[None]] = set()

    @property
    def bot(self) -> Bot:
        return self.adapter.bot

    async def poll_once(self) -> int:
        updates = await self.bot.get_updates(offset=self.offset, timeout=self.long_poll,
                                             allowed_updates=ALLOWED_UPDATES)
        if not updates:
            return 0
        lanes: dict[str, list[Update]] = {}
        for update in updates:
            lanes.setdefault(_lane(update), []).append(update)
        unstored: list[int] = []

        async def run(lane: list[Update]) -> None:
            for update in lane:
                try:
                    answer = await self.adapter.process(update)
                except Exception:
                    if self._give_up(update.update_id):
                        continue
                    unstored.append(update.update_id)
                    return  # this person's later updates wait, to keep their order
                if answer is not None:
                    task = asyncio.create_task(self.adapter.answer(answer))
                    self._answering.add(task)
                    task.add_done_callback(self._answering.discard)

        await asyncio.gather(*(run(lane) for lane in lanes.values()))
        # Only now may Telegram forget them: the next getUpdates carries this offset.
        self.offset = min(unstored) if unstored else updates[-1].update_id + 1
        return len(updates) - len(unstored)

    async def answered(self) -> None:
        """Wait for the button answers under way (tests polling by hand)."""
        if self._answering:
            await asyncio.gather(*self._answering, return_exceptions=True)

    def _give_up(self, update_id: int) -> bool:
        count = self._failures[update_id] = self._failures.get(update_id, 0) + 1
        if count >= MAX_UPDATE_FAILURES:
            log.error("update %s failed %s times; confirmed without handling", update_id,
                      count)
            self._failures.pop(update_id, None)
            return True
        log.exception("update %s failed; it will come back", update_id)
        return False

    async def run(self, stop: asyncio.Event) -> None:
        webhook_cleared = False
        while not stop.is_set():
            try:
                if not webhook_cleared:
                    # getUpdates refuses to work while a webhook is set.
                    webhook_cleared = await self.bot.delete_webhook()
                await self.poll_once()
            except RetryAfter as exc:
                await asyncio.sleep(retry_after_seconds(exc))
            except (NetworkError, TelegramError):
                log.warning("getUpdates failed; retrying")
                await asyncio.sleep(1)
        await self.answered()
