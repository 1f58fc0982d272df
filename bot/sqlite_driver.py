"""aiosqlite, sending to its database thread only the work that can wait.

aiosqlite runs every DB-API call on a thread of its own and wakes the event loop for each
answer. Through SQLAlchemy a SELECT costs four such trips (open a cursor, execute, fetch,
close), and a trip costs more CPU than a small SQLite statement: the trips were the largest
cost of handling an update (`docs/benchmarks.md`).

Every transaction here begins with `BEGIN IMMEDIATE` (`bot/db.py`), and a connection that
holds SQLite's write lock waits for nobody: in WAL mode readers never block it and no
other writer can start. So:

- taking the write lock is tried on the event loop without waiting; only when another
  process holds it does the wait (up to the busy timeout) happen on the thread;
- the statements of a transaction that holds the lock run on the event loop, and fetch
  their rows at once;
- commit and rollback, which write to disk (and may checkpoint the WAL), go to the thread;
- anything outside such a transaction (the connection's PRAGMAs) goes to the thread too.

The price: a slow statement inside a transaction holds up the event loop rather than only
the one connection. The queries the moderation benchmark times take milliseconds on a
million reports; deployments that outgrow that run on PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

import aiosqlite
from aiosqlite.context import contextmanager

ITER_CHUNK_SIZE = 64
_TAKES_WRITE_LOCK = ("BEGIN IMMEDIATE", "BEGIN EXCLUSIVE")


class LoopSideConnection(aiosqlite.Connection):
    """An aiosqlite connection whose cursors are `LoopSideCursor`s."""

    def __init__(self, connector: Any, *, busy_timeout_ms: int) -> None:
        super().__init__(connector, ITER_CHUNK_SIZE)
        self.busy_timeout_ms = busy_timeout_ms
        self._write_locked = False

    def holds_write_lock(self) -> bool:
        if not self._conn.in_transaction:
            self._write_locked = False
        return self._write_locked

    def note_write_lock(self) -> None:
        self._write_locked = True

    @contextmanager
    async def cursor(self) -> aiosqlite.Cursor:
        return LoopSideCursor(self, self._conn.cursor())

    async def rollback(self) -> None:
        """Skips the trip when no transaction is open, as after every commit.

        SQLAlchemy's pool rolls back each connection it takes back; after a commit that
        trip would do nothing.
        """
        if self._conn.in_transaction:
            await super().rollback()


class LoopSideCursor(aiosqlite.Cursor):
    """Executes and fetches in one step; later fetches read what that step brought back."""

    def __init__(self, conn: LoopSideConnection, cursor: sqlite3.Cursor) -> None:
        super().__init__(conn, cursor)
        self._connection = conn
        self._rows: list[Any] = []

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> LoopSideCursor:
        arguments = parameters or ()
        if self._connection.holds_write_lock():
            self._rows = self._execute_and_fetch(sql, arguments)
            return self
        takes_lock = sql.lstrip().upper().startswith(_TAKES_WRITE_LOCK)
        if takes_lock and self._begin_without_waiting(sql):
            self._rows = []
        else:
            self._rows = await self._execute(self._execute_and_fetch, sql, arguments)
        if takes_lock:
            self._connection.note_write_lock()
        return self

    def _execute_and_fetch(self, sql: str, parameters: Iterable[Any]) -> list[Any]:
        self._cursor.execute(sql, parameters)  # type: ignore[arg-type]
        return self._cursor.fetchall() if self._cursor.description else []

    def _begin_without_waiting(self, sql: str) -> bool:
        """Take the write lock if it is free; False when another process holds it."""
        cursor = self._cursor
        cursor.execute("PRAGMA busy_timeout=0")
        try:
            cursor.execute(sql)
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                raise
            return False
        finally:
            cursor.execute(f"PRAGMA busy_timeout={self._connection.busy_timeout_ms}")
        return True

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        count = self._cursor.arraysize if size is None else size
        taken, self._rows = self._rows[:count], self._rows[count:]
        return taken

    async def fetchall(self) -> Sequence[Any]:
        taken, self._rows = self._rows, []
        return taken

    async def close(self) -> None:
        self._rows = []
        self._cursor.close()


async def connect(database: str, *, busy_timeout_ms: int, **options: Any) -> LoopSideConnection:
    """Open `database` for SQLAlchemy's `async_creator`; `options` go to `sqlite3.connect`.

    `check_same_thread=False`: the event loop and the thread take turns on the
    connection, never at once; SQLAlchemy lends a connection to one task at a time and
    that task awaits each call before making the next.
    """
    options |= {"timeout": busy_timeout_ms / 1000, "check_same_thread": False}
    connector = partial(sqlite3.connect, database, **options)
    connection = LoopSideConnection(connector, busy_timeout_ms=busy_timeout_ms)
    connection._thread.daemon = True  # as SQLAlchemy does: never hold the process open
    await connection
    return connection
