"""INSERT … ON CONFLICT, which SQLite and PostgreSQL both speak, each through its dialect."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

Insert = postgresql.Insert | sqlite.Insert


def insert_for(session: AsyncSession) -> Callable[[Any], Insert]:
    """The dialect's `insert`, whose statements have `on_conflict_do_*`."""
    bind = session.get_bind()
    return postgresql.insert if bind.dialect.name == "postgresql" else sqlite.insert
