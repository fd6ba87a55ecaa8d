"""The python-telegram-bot Application SafeChild runs (telegram channel): our HTTP layer, the
rate limiter, no Updater (our poller confirms updates only after they are stored), no
persistence (state is ours)."""

from __future__ import annotations

import logging
import warnings
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import AIORateLimiter, Application
from telegram.warnings import PTBDeprecationWarning

from bot.handlers.telegram.http import AiohttpRequest

# python-telegram-bot reads RetryAfter.retry_after itself when rate limiting; we handle both
# the number and the timedelta it will become.
warnings.filterwarnings("ignore", message=".*retry_after.*", category=PTBDeprecationWarning)
CHANNEL = "telegram"
ALLOWED_UPDATES = ("message", "callback_query")


def make_application(token: str, base_url: str = "https://api.telegram.org/bot",
                     file_base_url: str = "https://api.telegram.org/file/bot",
                     read_timeout: float = 10.0, rate_limit: bool = True) -> Application:
    """`rate_limit` off only for a Bot API server without limits (benchmarks)."""
    # Any: the builder's generic parameters change with each call, which mypy cannot follow.
    builder: Any = (Application.builder().token(token).base_url(base_url)
               .base_file_url(file_base_url)
               .request(AiohttpRequest(pool=64, read_timeout=read_timeout))
               .get_updates_request(AiohttpRequest(pool=2, read_timeout=read_timeout))
               .updater(None))
    if rate_limit:
        # max_retries=0: a 429 goes back to the outbox, which releases the row and retries
        # after retry_after without holding a lease meanwhile.
        builder = builder.rate_limiter(AIORateLimiter(max_retries=0))
        # It logs every such 429 as an error with a traceback; the outbox owns the retry.
        logging.getLogger("telegram.ext.AIORateLimiter").setLevel(logging.CRITICAL)
    application: Application = builder.build()
    return application


def retry_after_seconds(exc: RetryAfter) -> float:
    retry = exc.retry_after
    return float(retry if isinstance(retry, int | float) else retry.total_seconds())
