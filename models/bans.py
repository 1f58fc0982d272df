"""Reporters whose new reports are refused."""

from __future__ import annotations

from sqlmodel import col, delete
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import Ban


async def is_banned(session: AsyncSession, person_id: int) -> bool:
    return await session.get(Ban, person_id) is not None


async def ban(session: AsyncSession, person_id: int, by_id: int | None, reason: str) -> bool:
    if await is_banned(session, person_id):
        return False
    session.add(Ban(person_id=person_id, banned_by_id=by_id, reason=reason[:512]))
    await session.flush()
    return True


async def unban(session: AsyncSession, person_id: int) -> bool:
    result = await session.exec(delete(Ban).where(col(Ban.person_id) == person_id))
    return bool(result.rowcount)
