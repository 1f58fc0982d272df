"""Leader election: exactly one instance runs the scheduler and the outbox dispatcher.

On PostgreSQL the leader holds a session-level advisory lock on a connection of its own.
If the leader dies, PostgreSQL drops its connection and the lock with it; the other
instances try every `check_every` seconds, so one takes over within that time. The
leader checks its connection on the same beat and steps down if it is lost.

SQLite has no advisory locks and no second host: the one process is the leader.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

LOCK_KEY = 0x67_73_6C_65_61_64  # "gslead"

log = structlog.get_logger(__name__)


class Leadership:
    def __init__(self, engine: AsyncEngine, *, check_every: float) -> None:
        self._engine = engine
        self._check_every = check_every
        self._connection: AsyncConnection | None = None

    @property
    def shared_database(self) -> bool:
        return self._engine.dialect.name == "postgresql"

    async def run(
        self, lead: Callable[[], Awaitable[None]], step_down: Callable[[], Awaitable[None]]
    ) -> None:
        """Forever: wait to become leader, `lead()`, and `step_down()` if leadership is lost."""
        while True:
            if await self._try_acquire():
                log.info("leader.elected")
                await lead()
                await self._hold()
                log.warning("leader.lost")
                await step_down()
            await asyncio.sleep(self._check_every)

    async def _try_acquire(self) -> bool:
        if not self.shared_database:
            return True
        try:
            connection = await self._engine.connect()
            got = await connection.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}
            )
            await connection.commit()
        except Exception as error:
            log.warning("leader.check_failed", error=repr(error))
            return False
        if got:
            self._connection = connection
            return True
        await connection.close()
        return False

    async def _hold(self) -> None:
        """Return when the lock's connection is gone (never, on SQLite)."""
        while True:
            await asyncio.sleep(self._check_every)
            if self._connection is None:
                continue
            try:
                await self._connection.scalar(text("SELECT 1"))
                await self._connection.commit()
            except Exception as error:
                log.warning("leader.connection_lost", error=repr(error))
                await self.release()
                return

    async def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
            await connection.close()
        except Exception:
            await connection.invalidate()
