"""What every channel adapter shares: the protocol, and sending replies in order."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog
from aiohttp import web

from handlers.messages import Capabilities, Inbound, Outbound
from scheduler.dispatcher import DeliveryFailed

InboundHandler = Callable[[Inbound, Capabilities], Awaitable[list[Outbound]]]

COALESCE_DELAY_SECONDS = 0.8

log = structlog.get_logger(__name__)


class Channel(Protocol):
    """A platform adapter: translates inbound updates and renders outbound messages."""

    name: str
    capabilities: Capabilities

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, outbound: Outbound) -> str:
        """Render and send one message; return its platform id or raise DeliveryFailed."""
        ...

    def is_group(self, chat_id: str) -> bool:
        """Whether `chat_id` is a group or channel (platforms limit those more tightly)."""
        ...

    def api_calls(self, outbound: Outbound) -> int:
        """How many platform calls sending `outbound` takes (each counts against limits)."""
        ...


class ReplySender:
    """Sends a flow's replies in order; collapses coalescible ones sent in quick succession.

    An album arrives as several updates; each stores its photo and acknowledges it with
    the same `coalesce_key`. Only the last acknowledgement is sent, shortly after the
    burst ends. Any other reply to that chat supersedes a pending acknowledgement.
    """

    def __init__(
        self, send: Callable[[Outbound], Awaitable[str]], delay: float = COALESCE_DELAY_SECONDS
    ) -> None:
        self._send = send
        self._delay = delay
        self._pending: dict[str, asyncio.Task[None]] = {}

    async def deliver(self, replies: list[Outbound]) -> None:
        for outbound in replies:
            previous = self._pending.pop(outbound.chat_id, None)
            if previous is not None:
                previous.cancel()
            if outbound.coalesce_key:
                self._pending[outbound.chat_id] = asyncio.create_task(self._later(outbound))
            else:
                await self._send_logged(outbound)

    async def _later(self, outbound: Outbound) -> None:
        await asyncio.sleep(self._delay)
        self._pending.pop(outbound.chat_id, None)
        await self._send_logged(outbound)

    async def _send_logged(self, outbound: Outbound) -> None:
        try:
            await self._send(outbound)
        except DeliveryFailed as failure:
            log.warning("reply.failed", chat_id=outbound.chat_id, reason=str(failure))

    async def flush(self) -> None:
        """Wait for pending replies (used at shutdown)."""
        pending = list(self._pending.values())
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


def split_text(text: str, limit: int) -> list[str]:
    """Cut text into messages of at most `limit` characters, at line breaks where possible."""
    chunks: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        cut = cut if cut > limit // 2 else limit
        chunks.append(text[:cut])
        text = text[cut:].lstrip("\n")
    chunks.append(text)
    return chunks


def secret_matches(request: web.Request, header: str, secret: str | None) -> bool:
    """The webhook request carries `secret` in `header` (compared in constant time)."""
    given = request.headers.get(header, "")
    return bool(secret) and hmac.compare_digest(given.encode(), (secret or "").encode())
