"""Delivering the outbox: claim due messages, send them, record the outcome."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from sqlmodel.ext.asyncio.session import AsyncSession

from models.outbox import due_messages, mark_failed, mark_sent

log = structlog.get_logger(__name__)


class DeliveryFailed(Exception):
    """A send did not go through. `retry_in` seconds to try again, or None to give up."""

    def __init__(self, reason: str, retry_in: float | None) -> None:
        super().__init__(reason)
        self.retry_in = retry_in


class Sender(Protocol):
    async def __call__(self, channel: str, chat_id: str, payload: dict[str, Any]) -> str:
        """Send one message; return the platform's message id or raise DeliveryFailed."""
        ...


async def dispatch_outbox(
    sessions: Callable[[], AsyncSession], send: Sender, now: Callable[[], datetime] | None = None
) -> int:
    """Send what is due; returns how many messages went out."""
    clock = now or (lambda: datetime.now(UTC))
    async with sessions() as session, session.begin():
        due = await due_messages(session, clock())
    sent = 0
    for message in due:
        assert message.id is not None
        try:
            platform_id = await send(message.channel, message.chat_id, message.payload)
        except DeliveryFailed as failure:
            async with sessions() as session, session.begin():
                await mark_failed(session, message, str(failure), clock(), failure.retry_in)
            log.warning(
                "outbox.failed",
                outbox_id=message.id,
                reason=str(failure),
                retry_in=failure.retry_in,
            )
            continue
        async with sessions() as session, session.begin():
            await mark_sent(session, message.id, platform_id, clock())
        sent += 1
    return sent


Job = Callable[[], Awaitable[Any]]
