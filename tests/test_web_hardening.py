"""The HTTP surface under attack: malformed bodies, absurd paths, forged addresses, floods."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.app import Runtime
from bot.settings import Settings
from tests.fakes.telegram_api import TEST_TIME_SCALE, FakeTelegram
from tests.fakes.zalo_api import SECRET_HEADER, FakeZalo
from tests.test_telegram_e2e import SECRET as TELEGRAM_SECRET
from tests.test_zalo_e2e import SECRET as ZALO_SECRET
from tests.test_zalo_e2e import TOKEN as ZALO_TOKEN
from tests.test_zalo_e2e import webhook_settings
from tests.webchat import Browser, base_url, free_port, running_bot, text_of

DEEP = "[" * 30_000 + "]" * 30_000
"""Nested far past Python's recursion limit, yet under the web chat's 64 KiB frame limit."""
MALFORMED_BODIES = [b"[1, 2, 3]", b'"a string"', b"42", b"null", b"{", DEEP.encode(), b"\xff\xfe"]
ABSURD_PATHS = [
    f"/media/{'9' * 5000}/c2ln/{'a' * 64}.jpg",
    f"/media/1/c2ln/{'a' * 20_000}.jpg",
    f"/chat/media/{'a' * 20_000}.jpg",
    f"/chat/media/{'9' * 5000}.jpg",
    "/chat/media/..%2F..%2Fetc%2Fpasswd.jpg",
    f"/chat/static/{'x' * 5000}",
]


@pytest.fixture
async def bot(settings: Settings) -> AsyncIterator[Runtime]:
    async with running_bot(settings) as runtime:
        yield runtime


@pytest.fixture
async def browser(bot: Runtime) -> AsyncIterator[Browser]:
    tab = Browser(bot)
    yield tab
    await tab.close()


# ---- malformed bodies and absurd paths -----------------------------------------------


async def test_malformed_frames_are_answered_and_the_chat_goes_on(browser: Browser) -> None:
    await browser.open()
    assert browser.socket is not None
    for body in MALFORMED_BODIES:
        await browser.socket.send_str(body.decode(errors="replace"))
        assert (await browser.socket.receive_json(timeout=5))["type"] == "error", body[:20]
    assert "Chào mừng" in text_of(await browser.say("/start"))


async def test_malformed_uploads_answer_400(browser: Browser) -> None:
    await browser.open()
    for body in MALFORMED_BODIES:
        for content_type in ("application/json", "multipart/form-data; boundary=x", "text/plain"):
            async with browser.http.post(
                f"{browser.base}/chat/upload",
                data=body,
                headers={"Origin": browser.base, "Content-Type": content_type},
            ) as response:
                assert response.status == 400, (body[:20], content_type)


async def test_absurd_paths_answer_404(bot: Runtime) -> None:
    async with aiohttp.ClientSession(base_url=base_url(bot)) as http:
        for path in ABSURD_PATHS:
            async with http.get(path) as response:
                assert response.status in (400, 404), path[:40]


async def test_malformed_telegram_webhook_bodies_answer_400(settings: Settings) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/webhook"
    async with (
        FakeTelegram(time_scale=TEST_TIME_SCALE) as fake,
        running_bot(
            settings,
            http_port=port,
            telegram_bot_token="1:x",
            telegram_api_base_url=fake.base_url,
            telegram_webhook_url=url,
            telegram_webhook_secret=TELEGRAM_SECRET,
            **fake.pacing,
        ),
        aiohttp.ClientSession() as http,
    ):
        headers = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
        for body in MALFORMED_BODIES:
            async with http.post(url, data=body, headers=headers) as response:
                assert response.status == 400, body[:20]
        for update in ({"update_id": "x"}, {"update_id": 1, "message": [1]}, {"message": 5}):
            async with http.post(url, json=update, headers=headers) as response:
                assert response.status in (200, 400), update
        user = fake.user(user_id=5005)
        await user.send_text("/start")
        [greeting] = await user.wait_for_messages(1)
        assert "Chào mừng" in (greeting.text or "")


async def test_malformed_zalo_webhook_bodies_answer_400(settings: Settings) -> None:
    async with FakeZalo(ZALO_TOKEN) as zalo:
        config = webhook_settings(settings, zalo)
        url = str(config.zalo_webhook_url)
        async with (
            running_bot(config, http_port=config.http_port),
            aiohttp.ClientSession() as http,
        ):
            headers = {SECRET_HEADER: ZALO_SECRET}
            for body in MALFORMED_BODIES:
                async with http.post(url, data=body, headers=headers) as response:
                    assert response.status == 400, body[:20]
            for path in ABSURD_PATHS:
                async with http.get(f"{config.public_base_url}{path}") as response:
                    assert response.status in (400, 404), path[:40]
