"""A small client of the Zalo Bot API on aiohttp: `{base}/bot{token}/{method}`, JSON in and out.

The token is part of every URL, so nothing this module raises or logs carries a URL:
errors are rebuilt from the method name, the status and the server's description, with
the token masked should the server echo it, and never chained to aiohttp's exception.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from handlers.ports import MediaProblem, MediaRejected

TIMEOUT_SECONDS = 30.0
RATE_LIMITED_RETRY_SECONDS = 30.0
"""When the server says "too many requests" without saying for how long."""
DOWNLOAD_CHUNK = 64 * 1024
POLL_NOTHING_NEW = 408
"""getUpdates answers 408 when its long poll ends with no update."""


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


class ZaloClient:
    def __init__(self, token: str, base_url: str, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self._token = token
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"ZaloClient(base_url={self._base_url!r})"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

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
        """A file from Zalo's CDN (its links expire: fetch at once), at most `max_bytes`."""
        session = self._open_session()
        try:
            async with session.get(url) as response:
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
        except (aiohttp.ClientError, TimeoutError):
            raise MediaRejected(MediaProblem.UNAVAILABLE) from None

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
