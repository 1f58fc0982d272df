"""Delivering the outbox: claim due messages, send them, record the outcome."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from sqlmodel.ext.asyncio.session import AsyncSession

from models.outbox import due_messages, mark_failed, mark_sent

log = structlog.get_logger(__name__)

UNEXPECTED_RETRY = 60.0
"""Seconds before retrying a message whose send failed in an unforeseen way (logged)."""


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
        except Exception as error:
            expected = isinstance(error, DeliveryFailed)
            retry_in = error.retry_in if isinstance(error, DeliveryFailed) else UNEXPECTED_RETRY
            async with sessions() as session, session.begin():
                await mark_failed(session, message, repr(error), clock(), retry_in)
            log.warning(
                "outbox.failed",
                outbox_id=message.id,
                reason=repr(error),
                retry_in=retry_in,
                exc_info=not expected,
            )
            continue
        async with sessions() as session, session.begin():
            await mark_sent(session, message.id, platform_id, clock())
        sent += 1
    return sent


Job = Callable[[], Awaitable[Any]]
