"""Values learnt at run time that outlive the process (e.g. a migrated group's new id)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import RuntimeSetting


async def get_value(session: AsyncSession, key: str) -> str | None:
    row = await session.get(RuntimeSetting, key)
    return row.value if row else None


async def set_value(session: AsyncSession, key: str, value: str) -> None:
    row = await session.get(RuntimeSetting, key)
    if row is None:
        session.add(RuntimeSetting(key=key, value=value))
    else:
        row.value, row.updated_at = value, datetime.now(UTC)
        session.add(row)
    await session.flush()
