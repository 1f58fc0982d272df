"""Platform messages already taken in, so that a repeated delivery creates nothing twice."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import InboundReceipt
from models.upsert import insert_for

_TABLE = InboundReceipt.__table__  # type: ignore[attr-defined]


async def first_delivery(
    session: AsyncSession, channel: str, message_id: str, now: datetime
) -> bool:
    """Record `message_id`; False when it was recorded before (a duplicate delivery)."""
    insert = insert_for(session)(_TABLE).values(
        channel=channel, message_id=message_id, received_at=now
    )
    result = await session.exec(
        insert.on_conflict_do_nothing(index_elements=["channel", "message_id"])
    )
    return bool(result.rowcount)


async def forget_receipts(session: AsyncSession, before: datetime) -> int:
    """Drop receipts older than `before`: platforms stop redelivering long before."""
    result = await session.exec(
        delete(InboundReceipt).where(col(InboundReceipt.received_at) < before)
    )
    return int(result.rowcount)
