"""Numbered menus of channels without buttons: the options last offered in each chat."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import col
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
            set_={
                "options": insert.excluded.options,
                "superseded": False,
                "updated_at": insert.excluded.updated_at,
            },
        )
    )


async def supersede_menu(session: AsyncSession, channel: str, chat_id: str) -> None:
    """A message without options went to the chat after its menu (see `superseded`)."""
    await session.exec(
        update(NumberedMenu)
        .where(col(NumberedMenu.channel) == channel, col(NumberedMenu.chat_id) == chat_id)
        .where(col(NumberedMenu.superseded).is_(False))
        .values(superseded=True)
    )


async def menu_of(session: AsyncSession, channel: str, chat_id: str) -> NumberedMenu | None:
    return await session.get(NumberedMenu, (channel, chat_id))
