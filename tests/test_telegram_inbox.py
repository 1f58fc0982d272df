"""Telegram updates are kept before they are acknowledged: a kill loses none.

Real `python -m bot run` subprocesses (see tests/test_broadcast_resilience.py) against the
fake Bot API, on SQLite and PostgreSQL, in webhook and in polling mode; and the inbox's
own rules (a replay is kept once, old handled updates are forgotten).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from handlers.router import SessionFactory
from models.inbox import forget_handled, keep_update, mark_handled, unhandled_updates
from models.tables import InboxUpdate
from tests.fakes.telegram_api import FakeTelegram
from tests.images import jpeg
from tests.test_broadcast_resilience import BotProcess
from tests.webchat import free_port

SECRET = "inbox-webhook-secret-for-tests"
START_A_REPORT = "bạn hãy bắt đầu một báo cáo trước"


def mode_env(mode: str) -> dict[str, str]:
    if mode == "polling":
        return {}
    port = free_port()
    return {
        "HTTP_PORT": str(port),
        "TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram/webhook",
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
    }


@pytest.mark.parametrize("mode", ["webhook", "polling"])
async def test_an_update_taken_in_survives_a_kill_during_its_handling(
    database_url: str, tmp_path: Path, mode: str
) -> None:
    """The photo's update was acknowledged (200, or confirmed by the next getUpdates) and
    its download hangs when the process is killed: the next run handles it."""
    async with FakeTelegram() as fake:
        env = mode_env(mode)
        user = fake.user(user_id=8001)
        first = BotProcess("first", database_url, fake, tmp_path, env)
        try:
            await fake.wait_until(lambda: bool(first.events("started")), what="the bot up")
            fake.stall("getFile", 120)
            update = await user.send_photo(jpeg())
            await fake.wait_until(lambda: fake.stalled == 1, what="the photo's download")
            await fake.wait_until(
                lambda: update not in fake.pending_updates, what="the update acknowledged"
            )
            first.kill()
        finally:
            first.stop()
        assert user.inbox == []
        second = BotProcess("second", database_url, fake, tmp_path, env)
        try:
            [answer] = await user.wait_for_messages(1, timeout=30)
        finally:
            second.stop()
    assert START_A_REPORT in (answer.plain_text or "")
    assert len(second.events("telegram.inbox.replayed")) == 1


PAYLOAD = {"update_id": 5, "message": {"text": "hello"}}


async def test_a_replayed_update_is_kept_once(sessions: SessionFactory) -> None:
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        assert await keep_update(session, "telegram", 5, PAYLOAD, now)
        assert not await keep_update(session, "telegram", 5, {"update_id": 5}, now)
        assert await keep_update(session, "zalo", 5, PAYLOAD, now)
        assert await keep_update(session, "telegram", 3, {"update_id": 3}, now)
    async with sessions() as session:
        kept = await unhandled_updates(session, "telegram")
    assert kept == [(3, {"update_id": 3}), (5, PAYLOAD)]


async def test_handled_updates_are_forgotten_after_a_while_unhandled_ones_never(
    sessions: SessionFactory,
) -> None:
    now = datetime.now(UTC)
    long_ago = now - timedelta(days=8)
    async with sessions() as session, session.begin():
        for update_id in (1, 2, 3):
            await keep_update(session, "telegram", update_id, {}, long_ago)
        await mark_handled(session, "telegram", 1, long_ago)
        await mark_handled(session, "telegram", 2, now)
    async with sessions() as session, session.begin():
        assert await forget_handled(session, now - timedelta(days=7)) == 1
    async with sessions() as session:
        left = (await session.exec(select(InboxUpdate.update_id))).all()
        assert sorted(left) == [2, 3]
        assert await unhandled_updates(session, "telegram") == [(3, {})]
