"""Numbered menus of channels without buttons: the options last offered in each chat."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import NumberedMenu
from models.upsert import insert_for

_TABLE = NumberedMenu.__table__  # type: ignore[attr-defined]


async def remember_menu(
    session: AsyncSession, channel: str, chat_id: str, options: list[list[str]], now: datetime
) -> None:
    """Replace the chat's menu with `options` ([label, payload] pairs, in the order shown)."""
    insert = insert_for(session)(_TABLE).values(
        channel=channel, chat_id=chat_id, options=options, updated_at=now
    )
    await session.exec(
        insert.on_conflict_do_update(
            index_elements=["channel", "chat_id"],
            set_={"options": insert.excluded.options, "updated_at": insert.excluded.updated_at},
        )
    )


async def menu_of(session: AsyncSession, channel: str, chat_id: str) -> list[list[str]]:
    menu = await session.get(NumberedMenu, (channel, chat_id))
    return menu.options if menu else []
