"""`safechild serve` with the Telegram client's rate limiter off, for benchmarks against a
fake Bot API without limits (the limiter would hold each process to 30 messages a second,
which is Telegram's cost, not ours). Nothing else differs from `python -m bot.cli serve`;
there is no setting for it on purpose (production always limits).

    python -m tests.support.serve_unlimited serve
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from bot import cli
from bot.handlers.telegram import TelegramSettings
from tests.support.processes import BotProcess

_from_env = TelegramSettings.from_env


def _unlimited(environ: Mapping[str, str]) -> TelegramSettings | None:
    settings = _from_env(environ)
    return None if settings is None else dataclasses.replace(settings, rate_limit=False)


class UnlimitedBotProcess(BotProcess):
    """A BotProcess (same environment, same log) that runs this module instead of
    `bot.cli`."""

    module = __name__


if __name__ == "__main__":
    TelegramSettings.from_env = staticmethod(_unlimited)  # type: ignore[method-assign,assignment]
    cli.main()
