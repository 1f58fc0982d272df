"""The database engine, sessions and migrations. Nothing connects at import time."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import sqlite_driver

MIGRATIONS = "models:migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(database_url: str, **kwargs: Any) -> AsyncEngine:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True, **kwargs)
    _ensure_sqlite_dir(url)
    # One connection: SQLite has one writer anyway, and waiters then queue in order in
    # the pool instead of polling inside SQLite's busy handler (seconds of tail latency).
    kwargs.setdefault("pool_size", 1)
    kwargs.setdefault("max_overflow", 0)
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


def _ensure_sqlite_dir(url: URL) -> None:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


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
    command.upgrade(alembic_config(database_url), revision)


async def upgrade(database_url: str, revision: str = "head") -> None:
    """Run migrations in a worker thread: Alembic's async env needs its own event loop."""
    await asyncio.to_thread(upgrade_sync, database_url, revision)
