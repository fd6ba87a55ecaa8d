"""What the tests share: one driver per channel (simulator, Telegram, Zalo), the fakes of
the outside world, the stories people walk, and the fixtures' helpers. No test module
imports another test module; they import from here."""

from __future__ import annotations

from datetime import datetime

from bot.domain.local_time import LOCAL_TZ

# A Monday morning in Vietnam, so working-hour deadlines are easy to reason about.
START = datetime(2026, 11, 23, 9, 0, tzinfo=LOCAL_TZ)
