"""A small client of the Zalo Bot API on aiohttp: `{base}/bot{token}/{method}`, JSON in and out.

The token is part of every URL, so nothing this module raises or logs carries a URL:
errors are rebuilt from the method name, the status and the server's description, with
the token masked should the server echo it, and never chained to aiohttp's exception.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from handlers.ports import MediaProblem, MediaRejected

TIMEOUT_SECONDS = 30.0
RATE_LIMITED_RETRY_SECONDS = 30.0
"""When the server says "too many requests" without saying for how long."""
DOWNLOAD_CHUNK = 64 * 1024
POLL_NOTHING_NEW = 408
"""getUpdates answers 408 when its long poll ends with no update."""
MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

log = structlog.get_logger(__name__)


class ZaloApiError(Exception):
    """A call failed: `status` is the API's error code (or HTTP status), None when unreachable."""

    def __init__(
        self, method: str, status: int | None, description: str, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{method}: {status or 'no answer'} {description}".strip())
        self.method = method
        self.status = status
        self.description = description
        self.retry_after = retry_after


def is_public(address: str) -> bool:
    """Whether `address` is a public unicast address: not loopback, private, link-local,
    shared, multicast or reserved (IPv4 or IPv6, also when IPv4 hides inside IPv6)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        ip = ip.ipv4_mapped or ip.sixtofour or ip
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


class PublicResolver(AbstractResolver):
    """Resolves a name to its public addresses only (`allowed_hosts` to any address):
    the connection goes to an address checked here, so a name that resolves to
    127.0.0.1, or changes its answer between a check and the connection, gets nowhere."""

    def __init__(self, allowed_hosts: frozenset[str]) -> None:
        self._resolver = DefaultResolver()
        self._allowed_hosts = allowed_hosts

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._resolver.resolve(host, port, family)
        if host in self._allowed_hosts:
            return found
        public = [result for result in found if is_public(result["host"])]
        if not public:
            raise OSError(f"{host} has no public address")
        return public

    async def close(self) -> None:
        await self._resolver.close()


class ZaloClient:
    def __init__(
        self,
        token: str,
        base_url: str,
        *,
        timeout: float = TIMEOUT_SECONDS,
        media_allowed_hosts: frozenset[str] = frozenset(),
    ) -> None:
        """`media_allowed_hosts` may serve photos over plain HTTP from any address (tests'
        fake CDN on 127.0.0.1); every other photo comes over HTTPS from a public address."""
        self._token = token
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._media_allowed_hosts = media_allowed_hosts
        self._session: aiohttp.ClientSession | None = None
        self._media_session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"ZaloClient(base_url={self._base_url!r})"

    async def close(self) -> None:
        for session in (self._session, self._media_session):
            if session is not None:
                await session.close()
        self._session = self._media_session = None

    # ---- methods ---------------------------------------------------------------------

    async def get_me(self) -> dict[str, Any]:
        return dict(await self.call("getMe"))

    async def set_webhook(self, url: str, secret_token: str) -> None:
        await self.call("setWebhook", {"url": url, "secret_token": secret_token})

    async def delete_webhook(self) -> None:
        await self.call("deleteWebhook")

    async def get_webhook_info(self) -> dict[str, Any]:
        return dict(await self.call("getWebhookInfo") or {})

    async def send_message(self, chat_id: str, text: str) -> str:
        sent = await self.call("sendMessage", {"chat_id": chat_id, "text": text})
        return str(sent.get("message_id", "")) if isinstance(sent, dict) else ""

    async def send_photo(self, chat_id: str, photo_url: str, caption: str = "") -> str:
        params = {"chat_id": chat_id, "photo": photo_url}
        if caption:
            params["caption"] = caption
        sent = await self.call("sendPhoto", params)
        return str(sent.get("message_id", "")) if isinstance(sent, dict) else ""

    async def send_chat_action(self, chat_id: str, action: str = "typing") -> None:
        await self.call("sendChatAction", {"chat_id": chat_id, "action": action})

    async def get_updates(self, wait_seconds: int) -> list[dict[str, Any]]:
        """Long polling (development): waits up to `wait_seconds` for the next update."""
        try:
            result = await self.call(
                "getUpdates", {"timeout": str(wait_seconds)}, http_timeout=wait_seconds + 10.0
            )
        except ZaloApiError as error:
            if error.status == POLL_NOTHING_NEW:
                return []
            raise
        if isinstance(result, list):
            return [update for update in result if isinstance(update, dict)]
        return [result] if isinstance(result, dict) and result else []

    async def download(self, url: str, max_bytes: int) -> bytes:
        """A file from Zalo's CDN (its links expire: fetch at once), at most `max_bytes`.

        Only over HTTPS from public addresses, checked again at every redirect (followed
        here, at most `MAX_REDIRECTS`): a photo URL must not reach into our own network.
        """
        session = self._open_media_session()
        try:
            target = URL(url)
            for _ in range(MAX_REDIRECTS + 1):
                self._check_fetchable(target)
                async with session.get(target, allow_redirects=False) as response:
                    location = response.headers.get("Location")
                    if response.status in REDIRECT_STATUSES and location:
                        target = target.join(URL(location))
                        continue
                    return await _body(response, max_bytes)
            raise MediaRejected(MediaProblem.UNAVAILABLE)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as error:
            log.warning("zalo.media.unavailable", error=type(error).__name__)
            raise MediaRejected(MediaProblem.UNAVAILABLE) from None

    def _check_fetchable(self, url: URL) -> None:
        """HTTPS, and a public address when the host is one (a name is checked once resolved)."""
        host = url.host or ""
        if host in self._media_allowed_hosts and url.scheme in ("http", "https"):
            return
        try:
            public = url.scheme == "https" and bool(host) and is_public(host)
        except ValueError:
            public = url.scheme == "https"
        if not public:
            log.warning("zalo.media.refused", scheme=url.scheme, host=host)
            raise MediaRejected(MediaProblem.UNAVAILABLE)

    def _open_media_session(self) -> aiohttp.ClientSession:
        if self._media_session is None or self._media_session.closed:
            self._media_session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=PublicResolver(self._media_allowed_hosts)),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            )
        return self._media_session

    # ---- the protocol -------------------------------------------------------------------

    async def call(
        self, method: str, params: dict[str, Any] | None = None, *, http_timeout: float = 0
    ) -> Any:
        """POST `params` as JSON to `method`; the `result` of an ok answer, else ZaloApiError."""
        session = self._open_session()
        timeout = aiohttp.ClientTimeout(total=http_timeout or self._timeout)
        try:
            async with session.post(
                f"{self._base_url}/bot{self._token}/{method}", json=params or {}, timeout=timeout
            ) as response:
                status = response.status
                retry_header = response.headers.get("Retry-After", "")
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = None
        except (aiohttp.ClientError, TimeoutError) as error:
            raise ZaloApiError(method, None, self._masked(type(error).__name__)) from None
        if isinstance(body, dict) and body.get("ok") is True:
            return body.get("result")
        body = body if isinstance(body, dict) else {}
        code = body.get("error_code") if isinstance(body.get("error_code"), int) else status
        raise ZaloApiError(
            method,
            code if code != 200 else 500,
            self._masked(str(body.get("description", ""))[:300]),
            _retry_after(body, retry_header),
        )

    def _open_session(self) -> aiohttp.ClientSession:
        """The connection pool, opened on first use (a webhook may arrive before start)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout)
            )
        return self._session

    def _masked(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text


async def _body(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    if response.status != 200:
        raise MediaRejected(MediaProblem.UNAVAILABLE)
    if (response.content_length or 0) > max_bytes:
        raise MediaRejected(MediaProblem.TOO_LARGE)
    data = bytearray()
    async for chunk in response.content.iter_chunked(DOWNLOAD_CHUNK):
        data += chunk
        if len(data) > max_bytes:
            raise MediaRejected(MediaProblem.TOO_LARGE)
    return bytes(data)


def _retry_after(body: dict[str, Any], header: str) -> float | None:
    parameters = body.get("parameters")
    given = parameters.get("retry_after") if isinstance(parameters, dict) else None
    given = given if given is not None else body.get("retry_after")
    for candidate in (given, header):
        if candidate in (None, ""):
            continue
        try:
            return float(candidate)
        except (TypeError, ValueError):
            continue
    return None
