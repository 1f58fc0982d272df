"""The inbox: platform updates kept before they are acknowledged, until they are handled.

A platform sends an update again only when its delivery failed; once the bot answered
200 (or confirmed it in polling), the update exists nowhere but here. Keeping it first
means a killed process loses nothing: the next start handles what was kept and not yet
handled. The unique key makes a replayed `update_id` a no-op.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import InboxUpdate
from models.upsert import insert_for

_TABLE = InboxUpdate.__table__  # type: ignore[attr-defined]


async def keep_update(
    session: AsyncSession, channel: str, update_id: int, payload: dict[str, Any], now: datetime
) -> bool:
    """Store the update; False when this `update_id` was kept before (a replay)."""
    insert = insert_for(session)(_TABLE).values(
        channel=channel, update_id=update_id, payload=payload, received_at=now
    )
    result = await session.exec(
        insert.on_conflict_do_nothing(index_elements=["channel", "update_id"])
    )
    return bool(result.rowcount)


async def mark_handled(session: AsyncSession, channel: str, update_id: int, now: datetime) -> None:
    await session.exec(
        update(InboxUpdate)
        .where(col(InboxUpdate.channel) == channel, col(InboxUpdate.update_id) == update_id)
        .values(handled_at=now)
    )


async def unhandled_updates(
    session: AsyncSession, channel: str
) -> list[tuple[int, dict[str, Any]]]:
    """What was kept and not handled yet (a killed run's), oldest first."""
    query = (
        select(InboxUpdate.update_id, InboxUpdate.payload)
        .where(InboxUpdate.channel == channel, col(InboxUpdate.handled_at).is_(None))
        .order_by(col(InboxUpdate.update_id))
    )
    return [(int(update_id), dict(payload)) for update_id, payload in (await session.exec(query))]


async def forget_handled(session: AsyncSession, before: datetime) -> int:
    """Drop updates handled before `before`: platforms stop redelivering long before."""
    result = await session.exec(delete(InboxUpdate).where(col(InboxUpdate.handled_at) < before))
    return int(result.rowcount)
