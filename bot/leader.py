"""Leader election: exactly one instance runs the scheduler and the outbox dispatcher.

On PostgreSQL the leader holds a session-level advisory lock on a connection of its own.
If the leader dies, PostgreSQL drops its connection and the lock with it; the other
instances try every `check_every` seconds, so one takes over within that time. The
leader checks its connection on the same beat and steps down if it is lost.

With SQLite (one machine) the leader holds an exclusive lock on a file beside the
database, so two processes started on the same file during a deployment never both lead.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

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
        self._lock_file: int | None = None
        database = engine.url.database
        self._lock_path = (
            Path(f"{database}.leader")
            if not self.shared_database and database and database != ":memory:"
            else None
        )

    @property
    def shared_database(self) -> bool:
        return self._engine.dialect.name == "postgresql"

    async def run(
        self, lead: Callable[[], Awaitable[None]], step_down: Callable[[], Awaitable[None]]
    ) -> None:
        """Forever: wait to become leader, `lead()`, and `step_down()` if leadership is lost.

        An error while leading (the database went away) is logged; the instance steps down,
        lets the lock go and competes again.
        """
        while True:
            if await self._try_acquire():
                log.info("leader.elected")
                try:
                    await lead()
                    await self._hold()
                    log.warning("leader.lost")
                except Exception:
                    log.exception("leader.failed")
                try:
                    await step_down()
                except Exception:
                    log.exception("leader.step_down_failed")
                await self.release()
            await asyncio.sleep(self._check_every)

    async def _try_acquire(self) -> bool:
        if not self.shared_database:
            return self._lock_path is None or self._lock_on_file(self._lock_path)
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

    def _lock_on_file(self, path: Path) -> bool:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return False
        self._lock_file = descriptor
        return True

    async def release(self) -> None:
        if self._lock_file is not None:
            os.close(self._lock_file)  # closing the file lets the lock go
            self._lock_file = None
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
            await connection.close()
        except Exception:
            with contextlib.suppress(Exception):
                await connection.invalidate()
