"""People's data on disk is readable by the bot's user only: the SQLite database with its
-wal and -shm files, the folders and files of MEDIA_DIR, the server secret."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import db
from bot.channels.web import load_or_create_secret
from bot.media import ImageStore
from bot.settings import DEFAULT_DATABASE_URL
from tests.images import jpeg


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The umask most systems give (022), under which files are world-readable by default."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


async def write_through_the_bot(database_url: str) -> None:
    """Migrate, then write while a connection is open (its -wal and -shm files exist)."""
    await db.upgrade(database_url)
    engine = db.make_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql("CREATE TABLE probe (x INTEGER)")
            await connection.exec_driver_sql("INSERT INTO probe VALUES (1)")
        async with engine.connect():
            database = Path(engine.url.database or "")
            files = [database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))]
            assert [mode(path) for path in files] == [0o600] * 3
    finally:
        await engine.dispose()


def test_the_default_sqlite_database_and_its_folder_are_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    created = db.prepare(DEFAULT_DATABASE_URL)
    assert created is not None and mode(created) == 0o700
    asyncio.run(write_through_the_bot(DEFAULT_DATABASE_URL))


async def test_a_configured_sqlite_database_is_private(tmp_path: Path) -> None:
    await write_through_the_bot(f"sqlite+aiosqlite:///{tmp_path / 'elsewhere.db'}")


async def test_media_folders_photos_and_the_server_secret_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = ImageStore(data / "media", max_bytes=10_000_000, max_pixels=50_000_000)
    stored = await store.ingest(jpeg())
    await store.keep(stored)
    photo = store.path_of(stored.sha256)
    assert mode(photo) == 0o600
    assert [
        mode(folder) for folder in (data, data / "media", photo.parent.parent, photo.parent)
    ] == [0o700] * 4
    load_or_create_secret(None, data)
    assert mode(data / "web_chat_secret") == 0o600
    assert load_or_create_secret(None, data) == (data / "web_chat_secret").read_bytes()
