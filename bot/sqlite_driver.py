"""aiosqlite, sending to its database thread only the work that can wait.

aiosqlite runs every DB-API call on a thread of its own and wakes the event loop for each
answer. Through SQLAlchemy a SELECT costs four such round trips (open a cursor, execute,
fetch, close), and a round trip costs more than a small SQLite statement: the trips were
the largest cost of handling an update (`docs/benchmarks.md`).

The connections opened here are in WAL mode with `synchronous=NORMAL`, and every
transaction begins with `BEGIN IMMEDIATE` (`bot/db.py`). A connection holding SQLite's
write lock waits for nobody (in WAL mode readers never block it and no other writer can
start), and its commit appends to the WAL without syncing it to disk. So:

- taking the write lock is tried on the event loop without waiting; only when another
  process holds it does the wait (up to the busy timeout) happen on the thread;
- the statements of a transaction that holds the lock, its commit and its rollback run
  on the event loop; a statement fetches its rows at once;
- what writes through to disk runs on the thread: checkpoints, which copy the WAL into
  the database and sync both, every `CHECKPOINT_EVERY_COMMITS` commits (SQLite's own
  automatic checkpoint would run inside a commit, so it is turned off);
- so does anything outside such a transaction: connecting, the connection's PRAGMAs.

The price: a slow statement holds up the event loop rather than only the one connection.
The queries the moderation benchmark times take milliseconds on a million reports;
deployments that outgrow that run on PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

import aiosqlite
from aiosqlite.context import contextmanager

ITER_CHUNK_SIZE = 64
CHECKPOINT_EVERY_COMMITS = 100
"""About as often as SQLite's default (1,000 WAL pages) at this bot's few pages a commit."""
_TAKES_WRITE_LOCK = ("BEGIN IMMEDIATE", "BEGIN EXCLUSIVE")


class LoopSideConnection(aiosqlite.Connection):
    """An aiosqlite connection whose cursors are `LoopSideCursor`s."""

    def __init__(self, connector: Any, *, busy_timeout_ms: int) -> None:
        super().__init__(connector, ITER_CHUNK_SIZE)
        self.busy_timeout_ms = busy_timeout_ms
        self._write_locked = False
        self._commits = 0

    def holds_write_lock(self) -> bool:
        if not self._conn.in_transaction:
            self._write_locked = False
        return self._write_locked

    def note_write_lock(self) -> None:
        self._write_locked = True

    @contextmanager
    async def cursor(self) -> aiosqlite.Cursor:
        return LoopSideCursor(self, self._conn.cursor())

    async def commit(self) -> None:
        """Commit on the loop; every `CHECKPOINT_EVERY_COMMITS`th, checkpoint on the thread."""
        if not self.holds_write_lock():
            await super().commit()
            return
        self._conn.commit()
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY_COMMITS == 0:
            await self._execute(self._checkpoint)

    def _checkpoint(self) -> None:
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    async def rollback(self) -> None:
        """On the loop: a rollback in WAL mode discards, and releases locks, without waiting."""
        self._conn.rollback()


class LoopSideCursor(aiosqlite.Cursor):
    """Executes and fetches in one step; later fetches read what that step brought back."""

    def __init__(self, conn: LoopSideConnection, cursor: sqlite3.Cursor) -> None:
        super().__init__(conn, cursor)
        self._connection = conn
        self._rows: deque[Any] = deque()

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> LoopSideCursor:
        arguments = parameters or ()
        if self._connection.holds_write_lock():
            self._rows = self._execute_and_fetch(sql, arguments)
            return self
        takes_lock = sql.lstrip().upper().startswith(_TAKES_WRITE_LOCK)
        if takes_lock and self._begin_without_waiting(sql):
            self._rows = deque()
        else:
            self._rows = await self._execute(self._execute_and_fetch, sql, arguments)
        if takes_lock:
            self._connection.note_write_lock()
        return self

    def _execute_and_fetch(self, sql: str, parameters: Iterable[Any]) -> deque[Any]:
        self._cursor.execute(sql, parameters)  # type: ignore[arg-type]
        return deque(self._cursor.fetchall() if self._cursor.description else ())

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
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        count = min(self._cursor.arraysize if size is None else size, len(self._rows))
        return [self._rows.popleft() for _ in range(count)]

    async def fetchall(self) -> Sequence[Any]:
        taken = list(self._rows)
        self._rows.clear()
        return taken

    async def close(self) -> None:
        self._rows.clear()
        self._cursor.close()


def _open(database: str, busy_timeout_ms: int, options: dict[str, Any]) -> sqlite3.Connection:
    """On the thread: the connection, configured as the module docstring relies on."""
    connection = sqlite3.connect(
        database,
        timeout=busy_timeout_ms / 1000,
        isolation_level=None,  # transactions are begun explicitly (`bot/db.py`)
        check_same_thread=False,
        **options,
    )
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "wal_autocheckpoint=0",
        f"busy_timeout={busy_timeout_ms}",
        "foreign_keys=ON",
    ):
        connection.execute(f"PRAGMA {pragma}")
    return connection


async def connect(database: str, *, busy_timeout_ms: int, **options: Any) -> LoopSideConnection:
    """Open `database` for SQLAlchemy's `async_creator`; `options` go to `sqlite3.connect`.

    `check_same_thread=False`: the event loop and the thread take turns on the
    connection, never at once; SQLAlchemy lends a connection to one task at a time and
    that task awaits each call before making the next.
    """
    options = {k: v for k, v in options.items() if k not in ("timeout", "check_same_thread")}
    connector = partial(_open, database, busy_timeout_ms, options)
    connection = LoopSideConnection(connector, busy_timeout_ms=busy_timeout_ms)
    connection._thread.daemon = True  # as SQLAlchemy does: never hold the process open
    await connection
    return connection
