"""Conversation state, saved with compare-and-set so concurrent updates never clobber it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.concurrency import ConcurrentUpdate
from models.tables import Conversation

__all__ = ["ConcurrentUpdate", "save_conversation", "stale_conversations"]


async def save_conversation(session: AsyncSession, state: Conversation, now: datetime) -> None:
    """Write `state` if nobody else wrote it since it was loaded (raises ConcurrentUpdate)."""
    if state.version < 0:
        session.add(
            Conversation(
                person_id=state.person_id,
                flow=state.flow,
                step=state.step,
                data=state.data,
                version=0,
                updated_at=now,
            )
        )
        await session.flush()
        return
    values: dict[str, Any] = {
        "flow": state.flow,
        "step": state.step,
        "data": state.data,
        "version": state.version + 1,
        "updated_at": now,
    }
    statement = (
        update(Conversation)
        .where(col(Conversation.person_id) == state.person_id)
        .where(col(Conversation.version) == state.version)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    result = await session.exec(statement)
    if result.rowcount != 1:
        raise ConcurrentUpdate(state.person_id)


async def stale_conversations(
    session: AsyncSession, flow: str, older_than: datetime, limit: int = 500
) -> list[Conversation]:
    query = (
        select(Conversation)
        .where(Conversation.flow == flow, col(Conversation.updated_at) < older_than)
        .limit(limit)
    )
    return list((await session.exec(query)).all())
