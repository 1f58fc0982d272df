"""A database that stops taking writes (a read-only or full disk) loses nothing.

The platforms are told to send again (webhooks answer 503), Zalo polling keeps the update
it could not store, the web chat asks the person to send again, /healthz says why, and all
recovers by itself once the database takes writes again. SQLite is made read-only with
`PRAGMA query_only` on the bot's one connection; PostgreSQL with
`default_transaction_read_only` on the test database, taken by new connections.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bot.app import Runtime
from bot.db import storage_problem
from bot.settings import Settings
from tests.conftest import _admin_connection
from tests.fakes.telegram_api import TEST_TIME_SCALE, FakeTelegram
from tests.fakes.zalo_api import FakeZalo
from tests.images import jpeg
from tests.test_telegram_e2e import SECRET, bot_settings, last_text, started
from tests.test_zalo_e2e import SECRET as ZALO_SECRET
from tests.test_zalo_e2e import TOKEN, running, webhook_settings, zalo_settings
from tests.webchat import Browser, free_port, running_bot, text_of, wait_for_health

HELP = "Tôi có thể giúp bạn"


async def _take_writes(runtime: Runtime, *, writable: bool) -> None:
    url = make_url(runtime.settings.database_url)
    if url.get_backend_name() == "sqlite":
        async with runtime.engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            await driver.execute(f"PRAGMA query_only = {int(not writable)}")
        return
    admin = await _admin_connection()
    try:
        setting = "off" if writable else "on"
        await admin.execute(
            f'ALTER DATABASE "{url.database}" SET default_transaction_read_only = {setting}'
        )
    finally:
        await admin.close()
    await runtime.engine.dispose()  # new connections take the database's setting


@asynccontextmanager
async def read_only(runtime: Runtime) -> AsyncIterator[None]:
    """The bot's database refuses writes inside the block, and takes them again after."""
    await _take_writes(runtime, writable=False)
    try:
        yield
    finally:
        await _take_writes(runtime, writable=True)


@pytest.fixture
async def zalo() -> AsyncIterator[FakeZalo]:
    async with FakeZalo(TOKEN) as fake:
        yield fake


async def test_health_says_the_database_is_read_only_and_recovers(settings: Settings) -> None:
    async with running_bot(settings) as runtime:
        await wait_for_health(runtime, "ok")
        async with read_only(runtime):
            report = await wait_for_health(runtime, "unhealthy")
            assert report["database"] == "read-only"
            assert report["problems"] == ["database: read-only"]
        assert (await wait_for_health(runtime, "ok"))["database"] == "ok"


async def test_web_chat_asks_to_send_again_and_gives_the_text_back(settings: Settings) -> None:
    async with running_bot(settings) as runtime:
        tab = Browser(runtime)
        try:
            hello = await tab.open()
            assert hello["ui"]["unavailable"].startswith("Chưa lưu được tin nhắn của bạn")
            async with read_only(runtime):
                await tab.send({"type": "text", "text": "/help"})
                assert tab.socket is not None
                frame = await tab.socket.receive_json(timeout=10)
                assert frame == {"type": "unavailable", "draft": "/help"}
                await tab.send({"type": "button", "payload": "menu:report", "label": "Báo cáo"})
                assert await tab.socket.receive_json(timeout=10) == {
                    "type": "unavailable",
                    "draft": "",
                }
                assert await tab.upload(jpeg(), "photo.jpg", "image/jpeg") == 503
            assert HELP in text_of(await tab.say("/help"))
        finally:
            await tab.close()


async def test_zalo_webhook_answers_503_until_the_update_can_be_stored(
    settings: Settings, zalo: FakeZalo
) -> None:
    async with running(webhook_settings(settings, zalo)) as runtime:
        user = zalo.user("u-disk")
        update = user.update("message.text.received", text="/help")
        async with read_only(runtime):
            assert await zalo.post_webhook(update, secret=ZALO_SECRET) == 503
        assert await zalo.post_webhook(update, secret=ZALO_SECRET) == 200
        [answer] = await user.wait_for_messages(1)
        assert HELP in answer.text


async def test_zalo_polling_keeps_the_update_until_the_database_takes_it(
    settings: Settings, zalo: FakeZalo
) -> None:
    async with running(zalo_settings(settings, zalo)) as runtime:
        user = zalo.user("u-polling-disk")
        async with read_only(runtime):
            await user.send_text("/help")
            await zalo.wait_until(lambda: not zalo.state.updates, what="the update polled")
            await wait_for_health(runtime, "unhealthy")
            assert user.inbox == []
        [answer] = await user.wait_for_messages(1)
        assert HELP in answer.text
        assert HELP in await user.reply("/help")


@asynccontextmanager
async def telegram_bot(
    settings: Settings, *, webhook: bool
) -> AsyncIterator[tuple[Runtime, FakeTelegram]]:
    """The bot on Telegram, by webhook or by polling, against the fake Bot API."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/webhook"
    mode = {"telegram_webhook_url": url, "telegram_webhook_secret": SECRET} if webhook else {}
    async with FakeTelegram(time_scale=TEST_TIME_SCALE) as fake:
        runtime = await started(bot_settings(settings, fake, http_port=port, **mode))
        try:
            yield runtime, fake
        finally:
            await runtime.stop()


async def test_telegram_webhook_answers_503_and_telegram_sends_again(
    settings: Settings,
) -> None:
    async with telegram_bot(settings, webhook=True) as (runtime, fake):
        user = fake.user(user_id=7007)
        async with read_only(runtime):
            await wait_for_health(runtime, "unhealthy")
            await user.send_text("/help")
            await fake.wait_until(
                lambda: any(d.status == 503 for d in fake.webhook_deliveries),
                what="a refused delivery",
            )
        assert HELP in await last_text(user)
        assert [d.status for d in fake.webhook_deliveries][-1] == 200


async def test_telegram_polling_waits_for_the_database_and_loses_nothing(
    settings: Settings,
) -> None:
    async with telegram_bot(settings, webhook=False) as (runtime, fake):
        user = fake.user(user_id=7008)
        async with read_only(runtime):
            await wait_for_health(runtime, "unhealthy")
            await user.send_text("/help")
            await user.send_text("/start")
        help_answer, greeting = await user.wait_for_messages(2)
        assert HELP in (help_answer.plain_text or "")
        assert "Chào mừng" in (greeting.plain_text or "")


async def test_telegram_stopped_during_an_outage_gets_its_updates_after_a_restart(
    settings: Settings,
) -> None:
    async with FakeTelegram(time_scale=TEST_TIME_SCALE) as fake:
        config = bot_settings(settings, fake)
        runtime = await started(config)
        user = fake.user(user_id=7009)
        try:
            await _take_writes(runtime, writable=False)
            await wait_for_health(runtime, "unhealthy")
            await user.send_text("/help")
        finally:
            try:
                await runtime.stop()
            finally:
                await _take_writes(runtime, writable=True)
        runtime = await started(config)
        try:
            assert HELP in await last_text(user)
        finally:
            await runtime.stop()


def test_a_full_disk_and_a_read_only_database_are_named(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'small.db'}")
    problems = []
    with engine.connect() as connection:
        connection.exec_driver_sql("CREATE TABLE t (data BLOB)")
        for pragma in ("max_page_count = 2", "query_only = 1"):
            connection.exec_driver_sql(f"PRAGMA {pragma}")
            try:
                connection.exec_driver_sql("INSERT INTO t VALUES (zeroblob(100000))")
            except DBAPIError as error:
                problems.append(storage_problem(error))
            connection.rollback()
    assert problems == ["disk full", "read-only"]
    assert storage_problem(ValueError("not about the database")) is None
