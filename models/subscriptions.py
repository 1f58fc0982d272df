"""Who receives publications, and what they chose to receive."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import Person, Subscription


async def subscription_of(session: AsyncSession, person_id: int) -> Subscription | None:
    query = select(Subscription).where(Subscription.person_id == person_id)
    return (await session.exec(query)).first()


async def subscribe(
    session: AsyncSession, person: Person, chat_id: str, now: datetime
) -> tuple[Subscription, bool]:
    """Start (or resume) receiving; returns the subscription and whether it is new."""
    assert person.id is not None
    subscription = await subscription_of(session, person.id)
    if subscription is not None and subscription.active:
        return subscription, False
    if subscription is None:
        subscription = Subscription(person_id=person.id, channel=person.channel, chat_id=chat_id)
    subscription.active, subscription.ended_reason = True, None
    subscription.chat_id, subscription.updated_at = chat_id, now
    session.add(subscription)
    await session.flush()
    return subscription, True


async def end_subscriptions_of(
    session: AsyncSession, channel: str, chat_id: str, reason: str, now: datetime
) -> int:
    """Stop writing to a chat (the person unsubscribed, or blocked the bot)."""
    result = await session.exec(
        update(Subscription)
        .where(
            col(Subscription.channel) == channel,
            col(Subscription.chat_id) == chat_id,
            col(Subscription.active),
        )
        .values(active=False, ended_reason=reason, updated_at=now)
    )
    return int(result.rowcount)


async def count_active(session: AsyncSession) -> int:
    query = select(func.count()).where(col(Subscription.active))
    return int((await session.exec(query)).one())
