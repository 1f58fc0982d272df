"""Which chats see the moderators' and administrators' commands in their menus."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.basics import ADMIN_COMMANDS, COMMANDS, MODERATOR_COMMANDS
from handlers.cards import moderation_chat
from handlers.context import Services
from models.tables import Person, Role, RoleGrant


async def staff_command_menus(
    session: AsyncSession, services: Services, channel: str
) -> dict[str, list[tuple[str, str]]]:
    """Chat id → the commands its menu should list, for the staff of `channel`."""
    query = (
        select(Person.external_id, RoleGrant.role)
        .join(RoleGrant, col(RoleGrant.person_id) == col(Person.id))
        .where(Person.channel == channel)
        .where(col(RoleGrant.role).in_([Role.MODERATOR, Role.ADMIN]))
    )
    roles: dict[str, set[str]] = {}
    for external_id, role in (await session.exec(query)).all():
        roles.setdefault(external_id, set()).add(role)
    menus = {
        chat: COMMANDS + MODERATOR_COMMANDS + (ADMIN_COMMANDS if Role.ADMIN in held else [])
        for chat, held in roles.items()
    }
    group = await moderation_chat(session, services, channel)
    if group:
        menus[group] = MODERATOR_COMMANDS
    return menus
