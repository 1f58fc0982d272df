"""The SQLite driver: what cannot wait runs on the event loop, what can wait on the thread.

SQLite only, by nature: PostgreSQL goes through asyncpg. SQLite's trace callback runs on
the thread that executes each statement, so it shows where each statement ran.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import db
from bot.sqlite_driver import CHECKPOINT_EVERY_COMMITS, LoopSideConnection
from handlers.router import SessionFactory
from models.tables import Person

Trace = list[tuple[str, int]]


@pytest.fixture
def sqlite_path(tmp_path: Path, sqlite_template: Path) -> Path:
    path = tmp_path / "driver.db"
    shutil.copy(sqlite_template, path)
    return path


@pytest.fixture
async def sqlite_engine(sqlite_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = db.make_engine(f"sqlite+aiosqlite:///{sqlite_path}")
    yield engine
    await engine.dispose()


@pytest.fixture
async def traced(sqlite_engine: AsyncEngine) -> tuple[SessionFactory, Trace]:
    """Sessions on one connection whose every statement is noted with the thread it ran on."""
    trace: Trace = []
    async with sqlite_engine.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        assert isinstance(driver, LoopSideConnection)
        await driver.set_trace_callback(lambda sql: trace.append((sql, threading.get_ident())))
    return db.session_factory(sqlite_engine), trace


def threads_of(trace: Trace, prefix: str) -> set[int]:
    return {thread for sql, thread in trace if sql.upper().startswith(prefix)}


async def add_person(session: AsyncSession, external_id: str) -> None:
    session.add(Person(channel="telegram", external_id=external_id, locale="vi"))
    await session.flush()


async def test_a_transaction_runs_on_the_loop_when_nobody_holds_the_lock(
    traced: tuple[SessionFactory, Trace],
) -> None:
    sessions, trace = traced
    loop_thread = threading.get_ident()
    async with sessions() as session, session.begin():
        await add_person(session, "1")
        found = (await session.exec(select(Person))).all()
    assert [p.external_id for p in found] == ["1"]
    assert threads_of(trace, "BEGIN IMMEDIATE") == {loop_thread}, "the free lock is taken inline"
    assert threads_of(trace, "INSERT") == {loop_thread}
    assert threads_of(trace, "SELECT") == {loop_thread}
    assert threads_of(trace, "COMMIT") == {loop_thread}, "a WAL commit does not sync to disk"
    assert not threads_of(trace, "PRAGMA WAL_CHECKPOINT"), "not after one commit"


async def test_the_wal_is_checkpointed_on_the_thread_every_so_many_commits(
    traced: tuple[SessionFactory, Trace], sqlite_path: Path
) -> None:
    """SQLite's automatic checkpoint is off; ours copies the WAL into the database file."""
    sessions, trace = traced
    for n in range(2 * CHECKPOINT_EVERY_COMMITS + 1):
        async with sessions() as session, session.begin():
            await add_person(session, str(n))
    checkpoints = [thread for sql, thread in trace if sql.startswith("PRAGMA wal_checkpoint")]
    assert len(checkpoints) == 2, "one per CHECKPOINT_EVERY_COMMITS commits"
    assert threading.get_ident() not in checkpoints, "on the thread"
    without_wal = shutil.copy(sqlite_path, sqlite_path.with_name("without-wal.db"))
    with closing(sqlite3.connect(without_wal)) as copy:
        (people,) = copy.execute("SELECT count(*) FROM person").fetchone()
    assert people == 2 * CHECKPOINT_EVERY_COMMITS, "the database file holds what was checkpointed"


async def test_a_writer_elsewhere_makes_begin_wait_on_the_thread_not_the_loop(
    traced: tuple[SessionFactory, Trace], sqlite_path: Path
) -> None:
    sessions, trace = traced
    other_process = sqlite3.connect(sqlite_path, isolation_level=None)
    other_process.execute("BEGIN IMMEDIATE")

    async def write() -> None:
        async with sessions() as session, session.begin():
            await add_person(session, "2")

    writer = asyncio.create_task(write())
    await asyncio.sleep(0.2)  # were BEGIN waiting on the loop, this would return after 30 s
    assert not writer.done(), "the writer waits for the lock"
    other_process.commit()
    await writer
    other_process.close()
    begins = [thread for sql, thread in trace if sql == "BEGIN IMMEDIATE"]
    assert begins[0] == threading.get_ident(), "first a try on the loop, without waiting"
    assert begins[1:] and begins[1] != begins[0], "then the wait, on the thread"
    async with sessions() as session:
        assert (await session.exec(select(Person.external_id))).all() == ["2"]


async def test_every_row_comes_back_in_order_however_it_is_fetched(
    sqlite_engine: AsyncEngine,
) -> None:
    sessions = db.session_factory(sqlite_engine)
    async with sessions() as session, session.begin():
        for n in range(300):
            session.add(Person(channel="telegram", external_id=f"{n:04d}", locale="vi"))
    query = select(Person.external_id).order_by(col(Person.external_id))
    expected = [f"{n:04d}" for n in range(300)]
    async with sessions() as session, session.begin():
        assert list((await session.exec(query)).all()) == expected
        assert (await session.exec(query)).first() == "0000"
        streamed = await session.stream(query.execution_options(yield_per=7))
        assert [row[0] async for row in streamed] == expected
        partitions = await session.stream(query)
        assert [len(rows) async for rows in partitions.partitions(128)] == [128, 128, 44]


async def test_a_failed_statement_rolls_back_and_the_connection_goes_on(
    sqlite_engine: AsyncEngine,
) -> None:
    sessions = db.session_factory(sqlite_engine)
    async with sessions() as session, session.begin():
        await add_person(session, "same")
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            await add_person(session, "other")
            await add_person(session, "same")
    async with sessions() as session, session.begin():
        await add_person(session, "after")
        names = (await session.exec(text("SELECT external_id FROM person ORDER BY id"))).all()
    assert [row[0] for row in names] == ["same", "after"], "the failed transaction left nothing"
