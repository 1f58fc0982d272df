"""python-telegram-bot's HTTP layer on aiohttp, the project's HTTP library.

python-telegram-bot ships an httpx-based `HTTPXRequest`; profiling the bot under load
showed that layer (httpx, httpcore, anyio) taking a third of the event loop's time.
aiohttp does the same work in a fraction of it, and the bot already depends on it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

_DEFAULT_TIMEOUT = 5.0
_MEDIA_WRITE_TIMEOUT = 20.0


class AiohttpRequest(BaseRequest):
    def __init__(
        self,
        *,
        connections: int = 64,
        read_timeout: float = _DEFAULT_TIMEOUT,
        before_each: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`before_each` is awaited before every request (polling waits for the database);
        its ConnectionError is a NetworkError (on stopping, nothing more is confirmed)."""
        self._before_each = before_each
        self._connections = connections
        self._read_timeout = read_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connections, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": self.USER_AGENT}
            )

    async def shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = BaseRequest.DEFAULT_NONE,
        write_timeout: object = BaseRequest.DEFAULT_NONE,
        connect_timeout: object = BaseRequest.DEFAULT_NONE,
        pool_timeout: object = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None:
            raise RuntimeError("AiohttpRequest is not initialized")
        if self._before_each is not None:
            try:
                await self._before_each()
            except ConnectionError as error:
                raise NetworkError(str(error)) from error
        read = read_timeout if isinstance(read_timeout, int | float) else self._read_timeout
        total = read + (
            _MEDIA_WRITE_TIMEOUT
            if request_data and request_data.contains_files
            else _DEFAULT_TIMEOUT
        )
        try:
            async with self._session.request(
                method, url, data=_body(request_data), timeout=aiohttp.ClientTimeout(total=total)
            ) as response:
                return response.status, await response.read()
        except TimeoutError as error:
            raise TimedOut from error
        except aiohttp.ClientError as error:
            raise NetworkError(f"aiohttp.{type(error).__name__}: {error}") from error


def _body(request_data: RequestData | None) -> aiohttp.FormData | dict[str, str] | None:
    """Form fields as python-telegram-bot encodes them; files as multipart parts."""
    if request_data is None:
        return None
    if not request_data.contains_files:
        return request_data.json_parameters
    form = aiohttp.FormData()
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, (file_name, content, mime_type) in request_data.multipart_data.items():
        form.add_field(name, content, filename=file_name, content_type=mime_type)
    return form
