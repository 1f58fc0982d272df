"""Conversation state, saved with compare-and-set so concurrent updates never clobber it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.concurrency import ConcurrentUpdate
from models.tables import Conversation

__all__ = ["ConcurrentUpdate", "save_conversation", "stale_conversations"]

_TABLE = Conversation.__table__  # type: ignore[attr-defined]
_SAVE = (
    update(_TABLE)
    .where(_TABLE.c.person_id == bindparam("match_person"))
    .where(_TABLE.c.version == bindparam("match_version"))
    .values(
        flow=bindparam("new_flow"),
        step=bindparam("new_step"),
        data=bindparam("new_data", type_=_TABLE.c.data.type),
        version=bindparam("new_version"),
        updated_at=bindparam("new_updated_at", type_=_TABLE.c.updated_at.type),
    )
)
"""A plain table UPDATE, built once: the ORM's bulk-update machinery cost more than the write."""


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
    params = {
        "match_person": state.person_id,
        "match_version": state.version,
        "new_flow": state.flow,
        "new_step": state.step,
        "new_data": state.data,
        "new_version": state.version + 1,
        "new_updated_at": now,
    }
    result = await session.exec(_SAVE, params=params)
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
