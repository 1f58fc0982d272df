"""The delivery outbox: messages written with the change that causes them, sent later.

The dispatcher claims due rows in batches (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite
serialises writers), sends them, and records outcomes in batches: at a thousand messages
a second, one commit per message would be the bottleneck.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, update
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
    due_at: datetime | None = None,
    locale: str = "",
) -> None:
    message = OutboxMessage(
        channel=channel,
        chat_id=chat_id,
        payload=payload,
        report_id=report_id,
        purpose=purpose,
        locale=locale,
    )
    if due_at is not None:
        message.next_attempt_at = due_at
    session.add(message)


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
    parts_sent: int = 0


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one send went: a platform id, or an error and when to retry (None: give up).

    `counts`: whether the failure uses up one of the message's attempts. A 429 does not
    (the platform asked us to wait, nothing is wrong with the message), nor does a
    message put back because an earlier one to the same chat must be retried first.
    """

    message: Claimed
    platform_message_id: str | None = None
    error: str = ""
    retry_in: float | None = None
    counts: bool = True
    parts_sent: int = 0

    @property
    def sent(self) -> bool:
        return self.platform_message_id is not None


async def claim_due(
    session: AsyncSession, channel: str, token: str, now: datetime, limit: int
) -> list[Claimed]:
    """Take up to `limit` due messages of `channel` for the dispatcher run `token`.

    Single messages (cards, notices) come before broadcast deliveries, so a moderation
    card never waits behind a broadcast to thousands. `FOR UPDATE SKIP LOCKED` keeps two
    claimers apart on PostgreSQL; SQLite has one writer at a time anyway.
    """
    claimed: list[Claimed] = []
    for in_broadcast in (False, True):
        if len(claimed) >= limit:
            break
        kind = (
            col(OutboxMessage.broadcast_id).is_not(None)
            if in_broadcast
            else (col(OutboxMessage.broadcast_id).is_(None))
        )
        due = (
            select(OutboxMessage.id)
            .where(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.channel == channel)
            .where(kind, col(OutboxMessage.next_attempt_at) <= now)
            .order_by(col(OutboxMessage.id))
            .limit(limit - len(claimed))
            .with_for_update(skip_locked=True)
        )
        claim = (
            update(OutboxMessage)
            .where(col(OutboxMessage.id).in_(due.scalar_subquery()))
            .values(status=OutboxStatus.SENDING, claimed_by=token, claimed_at=now)
            .returning(
                col(OutboxMessage.id),
                col(OutboxMessage.channel),
                col(OutboxMessage.chat_id),
                col(OutboxMessage.payload),
                col(OutboxMessage.broadcast_id),
                col(OutboxMessage.locale),
                col(OutboxMessage.attempts),
                col(OutboxMessage.parts_sent),
            )
        )
        rows = (await session.exec(claim)).all()
        claimed += sorted((Claimed(*row) for row in rows), key=lambda message: message.id)
    return claimed


def _owned(token: str) -> Any:
    return (
        update(OutboxMessage)
        .where(col(OutboxMessage.id) == bindparam("row_id"))
        .where(col(OutboxMessage.claimed_by) == token)
        .execution_options(synchronize_session=False)
    )


async def record(session: AsyncSession, token: str, outcomes: list[Outcome], now: datetime) -> None:
    """Write many outcomes at once, only for rows this run still owns (an executemany each)."""
    sent = [
        {
            "row_id": o.message.id,
            "platform_message_id": o.platform_message_id,
            "attempts": o.message.attempts + 1,
        }
        for o in outcomes
        if o.sent
    ]
    failed = [_failure(o, now) for o in outcomes if not o.sent]
    connection = await session.connection()
    if sent:
        statement = _owned(token).values(
            status=OutboxStatus.SENT,
            sent_at=now,
            claimed_by=None,
            platform_message_id=bindparam("platform_message_id"),
            attempts=bindparam("attempts"),
        )
        await connection.execute(statement, sent)
    if failed:
        statement = _owned(token).values(
            status=bindparam("status"),
            claimed_by=None,
            attempts=bindparam("attempts"),
            last_error=bindparam("last_error"),
            next_attempt_at=bindparam("next_attempt_at"),
            parts_sent=bindparam("parts_sent"),
        )
        await connection.execute(statement, failed)


def _failure(outcome: Outcome, now: datetime) -> dict[str, Any]:
    attempts = outcome.message.attempts + (1 if outcome.counts else 0)
    give_up = outcome.retry_in is None or attempts >= MAX_ATTEMPTS
    return {
        "row_id": outcome.message.id,
        "attempts": attempts,
        "last_error": outcome.error[:512],
        "status": OutboxStatus.FAILED if give_up else OutboxStatus.PENDING,
        "next_attempt_at": now + timedelta(seconds=outcome.retry_in or 0),
        "parts_sent": outcome.parts_sent,
    }


async def release(
    session: AsyncSession, *, token: str | None = None, before: datetime | None = None
) -> int:
    """Make claimed messages due again: this run's own (`token`), any claimed `before`, or
    (neither given) every claim: a new leader's, whose lock proves the claimers gone.

    A message claimed by a run that died was either never sent, or sent without its
    outcome written; the second kind is the only way a recipient can receive one twice.
    A non-leader takes back another run's claims only after a lease.
    """
    statement = update(OutboxMessage).where(col(OutboxMessage.status) == OutboxStatus.SENDING)
    if token is not None:
        statement = statement.where(col(OutboxMessage.claimed_by) == token)
    if before is not None:
        statement = statement.where(col(OutboxMessage.claimed_at) < before)
    result = await session.exec(statement.values(status=OutboxStatus.PENDING, claimed_by=None))
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
