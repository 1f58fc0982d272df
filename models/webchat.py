"""The web chat's transcript."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import WebMessage

HISTORY_LIMIT = 100


async def append_message(
    session: AsyncSession, chat_id: str, payload: dict[str, Any], *, from_bot: bool
) -> WebMessage:
    message = WebMessage(chat_id=chat_id, from_bot=from_bot, payload=payload)
    session.add(message)
    await session.flush()
    return message


async def recent_messages(
    session: AsyncSession, chat_id: str, limit: int = HISTORY_LIMIT
) -> list[WebMessage]:
    """The newest `limit` messages of the chat, oldest first."""
    query = (
        select(WebMessage)
        .where(WebMessage.chat_id == chat_id)
        .order_by(col(WebMessage.id).desc())
        .limit(limit)
    )
    return list(reversed((await session.exec(query)).all()))


async def edit_message(
    session: AsyncSession, chat_id: str, message_id: int, payload: dict[str, Any]
) -> WebMessage | None:
    message = await session.get(WebMessage, message_id)
    if message is None or message.chat_id != chat_id:
        return None
    message.payload = payload
    session.add(message)
    await session.flush()
    return message
