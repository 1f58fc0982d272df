"""The delivery outbox: messages written with the change that causes them, sent later."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import OutboxMessage, OutboxStatus

MAX_ATTEMPTS = 8


def enqueue(
    session: AsyncSession,
    channel: str,
    chat_id: str,
    payload: dict[str, Any],
    *,
    report_id: int | None = None,
    purpose: str = "",
) -> None:
    session.add(
        OutboxMessage(
            channel=channel,
            chat_id=chat_id,
            payload=payload,
            report_id=report_id,
            purpose=purpose,
        )
    )


async def due_messages(
    session: AsyncSession, now: datetime, limit: int = 100
) -> list[OutboxMessage]:
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.PENDING)
        .where(col(OutboxMessage.next_attempt_at) <= now)
        .order_by(col(OutboxMessage.id))
        .limit(limit)
    )
    return list((await session.exec(query)).all())


async def mark_sent(
    session: AsyncSession, message_id: int, platform_message_id: str, now: datetime
) -> None:
    await session.exec(
        update(OutboxMessage)
        .where(col(OutboxMessage.id) == message_id)
        .values(status=OutboxStatus.SENT, platform_message_id=platform_message_id, sent_at=now)
    )


async def mark_failed(
    session: AsyncSession, message: OutboxMessage, error: str, now: datetime, retry_in: float | None
) -> None:
    """Schedule another attempt after `retry_in` seconds, or give up when None or exhausted."""
    attempts = message.attempts + 1
    give_up = retry_in is None or attempts >= MAX_ATTEMPTS
    await session.exec(
        update(OutboxMessage)
        .where(col(OutboxMessage.id) == message.id)
        .values(
            attempts=attempts,
            last_error=error[:512],
            status=OutboxStatus.FAILED if give_up else OutboxStatus.PENDING,
            next_attempt_at=now + timedelta(seconds=retry_in or 0),
        )
    )
