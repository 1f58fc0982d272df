"""The database engine, sessions and migrations. Nothing connects at import time."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import structlog
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import sqlite_driver
from bot.private_files import create_private_file, make_private_dirs
from bot.settings import DEFAULT_DATABASE_URL, ConfigurationError
from models.runtime_settings import set_value

log = structlog.get_logger(__name__)

MIGRATIONS = "models:migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
_WHAT_TO_CHECK = {
    "postgresql": "check that PostgreSQL runs there and lets this user in, or correct DATABASE_URL",
    "sqlite": "check that the file can be created and written there, or correct DATABASE_URL",
}


def make_engine(database_url: str, **kwargs: Any) -> AsyncEngine:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True, **kwargs)
    # One connection: SQLite has one writer anyway, and waiters then queue in order in
    # the pool instead of polling inside SQLite's busy handler (seconds of tail latency).
    kwargs.setdefault("pool_size", 1)
    kwargs.setdefault("max_overflow", 0)
    _create_sqlite_file(url)
    [database], options = url.get_dialect()().create_connect_args(url)
    engine = create_async_engine(
        url,
        async_creator=partial(
            sqlite_driver.connect, database, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS, **options
        ),
        **kwargs,
    )
    _configure_sqlite(engine)
    return engine


def describe(database_url: str) -> str:
    """The URL as it can be shown: the password hidden."""
    return make_url(database_url).render_as_string(hide_password=True)


def prepare(database_url: str) -> Path | None:
    """Before a command uses the database: its folder exists and it answers.

    A SQLite file's missing folder is created only for the default location (./data);
    returns the folder created then. Anything else that stops the database from being
    reached is a `ConfigurationError` saying what to check.
    """
    url = make_url(database_url)
    created = _sqlite_folder(url) if url.get_backend_name() == "sqlite" else None
    asyncio.run(_connect_once(database_url))
    return created


def _sqlite_folder(url: URL) -> Path | None:
    if not url.database or url.database == ":memory:":
        return None
    folder = Path(url.database).parent
    if folder.exists():
        return None
    default_folder = Path(make_url(DEFAULT_DATABASE_URL).database or "").parent
    if folder.resolve() != default_folder.resolve():
        raise ConfigurationError(
            f"DATABASE_URL names a file in {folder}, a folder that does not exist: "
            f"create it (mkdir -p {folder}) or correct DATABASE_URL."
        )
    make_private_dirs(folder)
    return folder


def _create_sqlite_file(url: URL) -> None:
    """The database file, created readable by the bot's user only (SQLite would create it
    world-readable); a folder that does not exist is left for the connection to report."""
    if url.database and url.database != ":memory:" and not url.query.get("uri"):
        with suppress(FileNotFoundError, NotADirectoryError, PermissionError):
            create_private_file(Path(url.database))


async def _connect_once(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        async with engine.connect():
            pass
    except (OSError, DBAPIError) as error:
        reason = error.orig if isinstance(error, DBAPIError) else error
        check = _WHAT_TO_CHECK[make_url(database_url).get_backend_name()]
        raise ConfigurationError(
            f"Cannot connect to the database {describe(database_url)} ({reason}): {check}."
        ) from None
    finally:
        await engine.dispose()


def _configure_sqlite(engine: AsyncEngine) -> None:
    """BEGIN IMMEDIATE: concurrent writers wait instead of failing.

    A deferred transaction that reads and then writes can fail at once with
    "database is locked" when another writer got there first; taking the write
    lock at BEGIN makes every writer queue behind the busy timeout instead. The
    connection's own settings (WAL, busy timeout) are made in `bot/sqlite_driver.py`.
    """

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_sync(database_url: str, revision: str = "head") -> None:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        _create_sqlite_file(url)
    command.upgrade(alembic_config(database_url), revision)


async def upgrade(database_url: str, revision: str = "head") -> None:
    """Run migrations in a worker thread: Alembic's async env needs its own event loop."""
    await asyncio.to_thread(upgrade_sync, database_url, revision)


_SQLSTATE_PROBLEMS = {"25006": "read-only", "53100": "disk full", "53200": "out of memory"}
_SQLITE_PROBLEMS = {
    "readonly database": "read-only",
    "database or disk is full": "disk full",
    "disk i/o error": "disk I/O error",
    "unable to open database": "unreachable",
}


def storage_problem(error: BaseException) -> str | None:
    """Why the database cannot store anything now ("read-only", "disk full",
    "unreachable"), or None when `error` is not about the database being unavailable."""
    if isinstance(error, DBAPIError):
        orig = error.orig
        state = str(getattr(orig, "sqlstate", "") or "")
        if state in _SQLSTATE_PROBLEMS:
            return _SQLSTATE_PROBLEMS[state]
        message = str(orig).lower()
        found = next((p for text, p in _SQLITE_PROBLEMS.items() if text in message), None)
        return found or ("unreachable" if error.connection_invalidated else None)
    if isinstance(error, OSError):
        return "unreachable"
    return None


RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 30.0


class WriteProbe:
    """Whether the database takes writes: a small committed write (not only `SELECT 1`),
    so a read-only or full database shows. A result is reused for `every` seconds."""

    KEY = "health.write_probe"

    def __init__(self, engine: AsyncEngine, *, every: float = 1.0) -> None:
        self._sessions = session_factory(engine)
        self._every = every
        self._checked_at = -math.inf
        self._problem: str | None = None
        self._lock = asyncio.Lock()
        self._closed = asyncio.Event()

    async def problem(self) -> str | None:
        """None when a write just went through, else why not (e.g. "read-only")."""
        async with self._lock:
            if time.monotonic() - self._checked_at >= self._every:
                self._problem = await self._write()
                self._checked_at = time.monotonic()
            return self._problem

    async def wait_until_writable(self, *, first_wait: float = 0.0) -> None:
        """Return once the database takes writes, checking again with growing waits;
        ConnectionError if the process stops first (`close`)."""
        wait = RETRY_FIRST_SECONDS
        await self._pause(first_wait)
        while (problem := await self.problem()) is not None:
            if self._closed.is_set():
                raise ConnectionError(f"database: {problem}")
            await self._pause(wait)
            wait = min(wait * 2, RETRY_MAX_SECONDS)

    async def retry[T](self, attempt: Callable[[], Awaitable[T]], what: str) -> T:
        """`attempt()`, tried again once the database takes writes while it cannot store
        anything (read-only, full, down); any other failure is raised, and so is a
        ConnectionError when the process stops meanwhile."""
        while True:
            try:
                return await attempt()
            except (DBAPIError, OSError) as error:
                problem = storage_problem(error)
                if problem is None or self._closed.is_set():
                    raise
            log.warning("database.unavailable.waiting", what=what, problem=problem)
            await self.wait_until_writable(first_wait=RETRY_FIRST_SECONDS)

    async def _pause(self, seconds: float) -> None:
        """Sleep `seconds`, or less when the process stops."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), seconds)

    def close(self) -> None:
        """The process stops: nobody waits for the database any longer."""
        self._closed.set()

    async def _write(self) -> str | None:
        try:
            async with self._sessions() as session, session.begin():
                await set_value(session, self.KEY, datetime.now(UTC).isoformat())
        except Exception as error:
            problem = storage_problem(error) or f"error: {type(error).__name__}"
            log.warning("database.write_probe.failed", problem=problem)
            return problem
        return None
