"""The delivery outbox: messages written with the change that causes them, sent later.

The dispatcher claims due rows in batches (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite
serialises writers), sends them, and records outcomes in batches: at a thousand messages
a second, one commit per message would be the bottleneck.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import Broadcast, OutboxMessage, OutboxStatus

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


@dataclass(frozen=True, slots=True)
class Claimed:
    """A message the dispatcher now owns until it records the outcome."""

    id: int
    channel: str
    chat_id: str
    payload: dict[str, Any]
    broadcast_id: int | None
    locale: str
    attempts: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one send went: a platform id, or an error and when to retry (None: give up)."""

    message: Claimed
    platform_message_id: str | None = None
    error: str = ""
    retry_in: float | None = None

    @property
    def sent(self) -> bool:
        return self.platform_message_id is not None


async def claim_due(session: AsyncSession, now: datetime, limit: int) -> list[Claimed]:
    """Mark up to `limit` due messages as being sent and return them, oldest first."""
    due = (
        select(OutboxMessage.id)
        .where(OutboxMessage.status == OutboxStatus.PENDING)
        .where(col(OutboxMessage.next_attempt_at) <= now)
        .order_by(col(OutboxMessage.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claim = (
        update(OutboxMessage)
        .where(col(OutboxMessage.id).in_(due.scalar_subquery()))
        .values(status=OutboxStatus.SENDING)
        .returning(
            col(OutboxMessage.id),
            col(OutboxMessage.channel),
            col(OutboxMessage.chat_id),
            col(OutboxMessage.payload),
            col(OutboxMessage.broadcast_id),
            col(OutboxMessage.locale),
            col(OutboxMessage.attempts),
        )
    )
    rows = (await session.exec(claim)).all()
    return sorted((Claimed(*row) for row in rows), key=lambda message: message.id)


async def record(session: AsyncSession, outcomes: list[Outcome], now: datetime) -> None:
    """Write many outcomes at once (one executemany per kind of outcome)."""
    sent = [
        {
            "id": o.message.id,
            "status": OutboxStatus.SENT,
            "platform_message_id": o.platform_message_id,
            "sent_at": now,
            "attempts": o.message.attempts + 1,
        }
        for o in outcomes
        if o.sent
    ]
    failed = [_failure(o, now) for o in outcomes if not o.sent]
    for rows in (sent, failed):
        if rows:
            await session.exec(update(OutboxMessage), params=rows)


def _failure(outcome: Outcome, now: datetime) -> dict[str, Any]:
    attempts = outcome.message.attempts + 1
    give_up = outcome.retry_in is None or attempts >= MAX_ATTEMPTS
    return {
        "id": outcome.message.id,
        "attempts": attempts,
        "last_error": outcome.error[:512],
        "status": OutboxStatus.FAILED if give_up else OutboxStatus.PENDING,
        "next_attempt_at": now + timedelta(seconds=outcome.retry_in or 0),
    }


async def release_in_flight(session: AsyncSession) -> int:
    """Messages claimed by a process that died: due again. Returns how many.

    Each was either never sent or sent without its outcome recorded; the second kind
    is the only way a recipient can receive a message twice.
    """
    result = await session.exec(
        update(OutboxMessage)
        .where(col(OutboxMessage.status) == OutboxStatus.SENDING)
        .values(status=OutboxStatus.PENDING)
    )
    return int(result.rowcount)


async def broadcast_payloads(session: AsyncSession, broadcast_id: int) -> dict[str, Any]:
    query = select(Broadcast.payloads).where(Broadcast.id == broadcast_id)
    return dict((await session.exec(query)).one_or_none() or {})


async def delivery_counts(session: AsyncSession, broadcast_id: int) -> dict[OutboxStatus, int]:
    query = (
        select(OutboxMessage.status, func.count())
        .where(OutboxMessage.broadcast_id == broadcast_id)
        .group_by(col(OutboxMessage.status))
    )
    counts = {status: 0 for status in OutboxStatus}
    for status, count in (await session.exec(query)).all():
        counts[OutboxStatus(status)] = int(count)
    return counts
