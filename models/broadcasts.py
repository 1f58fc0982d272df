"""Broadcasts: scheduled publications, and their materialisation into outbox deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ColumnElement, String, and_, cast, func, insert, literal, or_, update
from sqlalchemy import select as select_columns
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import (
    Broadcast,
    BroadcastKind,
    BroadcastStatus,
    OutboxMessage,
    OutboxStatus,
    Person,
    Subscription,
    UTCDateTime,
)

PROVINCE_WIDE_KINDS = frozenset({BroadcastKind.STORY, BroadcastKind.DIGEST})
"""Kinds that subscribers of the whole province receive even when aimed at communes."""


async def create_broadcast(session: AsyncSession, broadcast: Broadcast) -> Broadcast | None:
    """Schedule `broadcast` unless one with its key exists (each publication happens once)."""
    existing = await session.exec(select(Broadcast.id).where(Broadcast.key == broadcast.key))
    if existing.first() is not None:
        return None
    try:
        async with session.begin_nested():
            session.add(broadcast)
    except IntegrityError:
        return None
    return broadcast


async def due_broadcasts(session: AsyncSession, now: datetime, limit: int = 20) -> list[Broadcast]:
    query = (
        select(Broadcast)
        .where(Broadcast.status == BroadcastStatus.SCHEDULED)
        .where(col(Broadcast.scheduled_at) <= now)
        .order_by(col(Broadcast.scheduled_at), col(Broadcast.id))
        .limit(limit)
    )
    return list((await session.exec(query)).all())


async def broadcasts_in(
    session: AsyncSession,
    statuses: frozenset[BroadcastStatus],
    limit: int = 50,
    *,
    newest_first: bool = False,
) -> list[Broadcast]:
    order = (
        (col(Broadcast.scheduled_at).desc(), col(Broadcast.id).desc())
        if newest_first
        else (col(Broadcast.scheduled_at), col(Broadcast.id))
    )
    query = select(Broadcast).where(col(Broadcast.status).in_(statuses)).order_by(*order)
    query = query.limit(limit)
    return list((await session.exec(query)).all())


async def materialize(
    session: AsyncSession,
    broadcast: Broadcast,
    extra_chats: list[tuple[str, str, str]],
    now: datetime,
    channels: frozenset[str] | None = None,
) -> int:
    """One pending delivery per recipient, in one statement; returns how many.

    Recipients: active subscribers (on `channels`, the ones running; None: all) of one
    of the broadcast's topics, in one of its
    communes (see PROVINCE_WIDE_KINDS), plus `extra_chats` (channel, chat id, locale),
    such as the public Telegram channel. Nobody is added twice (the unique key guards it).
    """
    assert broadcast.id is not None
    topics = []
    if broadcast.stories:
        topics.append(col(Subscription.stories))
    if broadcast.announcements:
        topics.append(col(Subscription.announcements))
    if not topics:
        return 0
    recipients = select_columns(
        literal(broadcast.id),
        col(Subscription.channel),
        col(Subscription.chat_id),
        col(Person.locale),
        cast(literal("{}"), JSON),
        literal(OutboxStatus.PENDING.value, String),
        literal(0),
        literal(now, UTCDateTime),
        literal(now, UTCDateTime),
        literal("broadcast", String),
    ).join(Person, col(Person.id) == col(Subscription.person_id))
    already = select_columns(literal(1)).where(
        col(OutboxMessage.broadcast_id) == broadcast.id,
        col(OutboxMessage.channel) == col(Subscription.channel),
        col(OutboxMessage.chat_id) == col(Subscription.chat_id),
    )
    recipients = recipients.where(col(Subscription.active), or_(*topics), ~already.exists())
    if channels is not None:
        recipients = recipients.where(col(Subscription.channel).in_(channels))
    if broadcast.commune_codes:
        in_communes: ColumnElement[bool] = col(Subscription.commune_code).in_(
            broadcast.commune_codes
        )
        if broadcast.kind in PROVINCE_WIDE_KINDS:
            in_communes = or_(in_communes, col(Subscription.commune_code).is_(None))
        recipients = recipients.where(in_communes)
    columns = [
        "broadcast_id",
        "channel",
        "chat_id",
        "locale",
        "payload",
        "status",
        "attempts",
        "next_attempt_at",
        "created_at",
        "purpose",
    ]
    result = await session.exec(insert(OutboxMessage).from_select(columns, recipients))
    count = int(result.rowcount)
    for channel, chat_id, locale in extra_chats:
        if await _has_delivery(session, broadcast.id, channel, chat_id):
            continue
        session.add(
            OutboxMessage(
                broadcast_id=broadcast.id,
                channel=channel,
                chat_id=chat_id,
                locale=locale,
                payload={},
                purpose="broadcast",
            )
        )
        count += 1
    return count


async def _has_delivery(
    session: AsyncSession, broadcast_id: int, channel: str, chat_id: str
) -> bool:
    query = select(OutboxMessage.id).where(
        OutboxMessage.broadcast_id == broadcast_id,
        OutboxMessage.channel == channel,
        OutboxMessage.chat_id == chat_id,
    )
    return (await session.exec(query)).first() is not None


async def claim_start(session: AsyncSession, broadcast: Broadcast, now: datetime) -> bool:
    """Mark a scheduled broadcast running; False if it was cancelled (or started) meanwhile."""
    result = await session.exec(
        update(Broadcast)
        .where(
            col(Broadcast.id) == broadcast.id,
            col(Broadcast.status) == BroadcastStatus.SCHEDULED,
        )
        .values(status=BroadcastStatus.RUNNING, started_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount) == 1


async def start(
    session: AsyncSession,
    broadcast: Broadcast,
    payloads: dict[str, Any],
    recipients: int,
    now: datetime,
) -> None:
    broadcast.payloads = payloads
    broadcast.recipients = recipients
    broadcast.status = BroadcastStatus.RUNNING
    broadcast.started_at = now
    session.add(broadcast)


async def cancel(session: AsyncSession, broadcast_id: int) -> bool:
    """Cancel a broadcast that has not started; False when it has (or does not exist)."""
    result = await session.exec(
        update(Broadcast)
        .where(
            col(Broadcast.id) == broadcast_id,
            col(Broadcast.status) == BroadcastStatus.SCHEDULED,
        )
        .values(status=BroadcastStatus.CANCELLED)
    )
    return int(result.rowcount) == 1


async def unfinished_deliveries(session: AsyncSession, broadcast_id: int) -> int:
    query = select(func.count()).where(
        and_(
            col(OutboxMessage.broadcast_id) == broadcast_id,
            col(OutboxMessage.status).in_([OutboxStatus.PENDING, OutboxStatus.SENDING]),
        )
    )
    return int((await session.exec(query)).one())
