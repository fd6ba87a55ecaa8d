"""python-telegram-bot's HTTP layer on aiohttp, the client the rest of SafeChild already uses.

Swapped in through `ApplicationBuilder().request(...)`: one pooled aiohttp session per
process, JSON bodies (no per-parameter form encoding), and Telegram's failures mapped onto
python-telegram-bot's own errors (TimedOut, NetworkError) so its error handling still works.
"""

from __future__ import annotations

import json

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

_Timeout = float | None | object  # python-telegram-bot passes DEFAULT_NONE for "not given"


class AiohttpRequest(BaseRequest):
    """A BaseRequest on one aiohttp session; `pool` bounds the open connections."""

    def __init__(self, pool: int = 64, read_timeout: float | None = 10.0,
                 connect_timeout: float = 5.0, write_timeout: float = 10.0,
                 media_write_timeout: float = 30.0) -> None:
        self._pool = pool
        self._read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._write_timeout = write_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool, ttl_dns_cache=300),
                headers={"User-Agent": self.USER_AGENT})

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: _Timeout = BaseRequest.DEFAULT_NONE,
                         write_timeout: _Timeout = BaseRequest.DEFAULT_NONE,
                         connect_timeout: _Timeout = BaseRequest.DEFAULT_NONE,
                         pool_timeout: _Timeout = BaseRequest.DEFAULT_NONE,
                         ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            await self.initialize()
        assert self._session is not None
        files = request_data.multipart_data if request_data and request_data.contains_files \
            else None
        read = self._read_timeout if read_timeout is BaseRequest.DEFAULT_NONE else read_timeout
        connect = (self._connect_timeout if connect_timeout is BaseRequest.DEFAULT_NONE
                   else connect_timeout)
        timeout = aiohttp.ClientTimeout(
            sock_connect=connect if isinstance(connect, int | float) else None,
            sock_read=read if isinstance(read, int | float) else None)
        body: aiohttp.FormData | bytes | None = None
        headers: dict[str, str] = {}
        if files and request_data is not None:
            form = aiohttp.FormData()
            for name, value in request_data.json_parameters.items():
                form.add_field(name, value)
            for name, (filename, content, mime) in files.items():
                form.add_field(name, content, filename=filename, content_type=mime)
            body = form
        elif request_data is not None and request_data.parameters:
            # Nested JSON, not RequestData.json_payload, which encodes objects as strings.
            body = json.dumps(request_data.parameters, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        try:
            async with self._session.request(method, url, data=body, headers=headers,
                                             timeout=timeout) as resp:
                return resp.status, await resp.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc
