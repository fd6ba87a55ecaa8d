"""`safechild serve` with the Telegram client's rate limiter off, for benchmarks against a
fake Bot API without limits (the limiter would hold each process to 30 messages a second,
which is Telegram's cost, not ours). Nothing else differs from `python -m bot.cli serve`;
there is no setting for it on purpose (production always limits).

    python -m tests.support.serve_unlimited serve
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
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

    def spawn(self, clock_at: str | None) -> subprocess.Popen[bytes]:
        env = {**os.environ, "SAFECHILD_DB": str(self.db), "SAFECHILD_PORT": str(self.port),
               **self.env}
        env.pop("DATABASE_URL", None)
        env.pop("SAFECHILD_FAKE_CLOCK", None)
        if clock_at is not None:
            env["SAFECHILD_FAKE_CLOCK"] = clock_at
        if self.database_url is not None:
            env["DATABASE_URL"] = self.database_url
        command = [sys.executable, "-m", __name__, "serve"]
        if self.log is None:
            return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
        with self.log.open("ab") as log:
            return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)


if __name__ == "__main__":
    TelegramSettings.from_env = staticmethod(_unlimited)  # type: ignore[method-assign,assignment]
    cli.main()
