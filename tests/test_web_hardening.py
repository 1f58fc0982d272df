"""The HTTP surface under attack: malformed bodies, absurd paths, forged addresses, floods."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from ipaddress import IPv4Network, ip_network
from pathlib import Path

import aiohttp
import pytest
from pydantic import ValidationError
from sqlmodel import select

from bot.app import Runtime
from bot.channels.web import COOKIE, TAB_REPLACED, client_ip
from bot.settings import Settings
from handlers.router import SessionFactory
from models.people import grant_role
from models.tables import MediaFile, Role, WebMessage, WebSession, utcnow
from models.webchat import append_message, recent_messages
from tests.fakes.telegram_api import TEST_TIME_SCALE, FakeTelegram
from tests.fakes.zalo_api import SECRET_HEADER, FakeZalo
from tests.images import jpeg
from tests.test_cli import assert_refused, guongsang
from tests.test_telegram_e2e import SECRET as TELEGRAM_SECRET
from tests.test_zalo_e2e import SECRET as ZALO_SECRET
from tests.test_zalo_e2e import TOKEN as ZALO_TOKEN
from tests.test_zalo_e2e import webhook_settings
from tests.webchat import (
    Browser,
    base_url,
    free_port,
    report_until_photos,
    running_bot,
    text_of,
)

STORY = "Bà đã nấu cơm miễn phí cho các cháu học sinh ở điểm trường suốt hai năm qua."
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


def configured(**variables: str) -> Settings:
    """Settings from these variables alone, written as in the environment."""
    return Settings.model_validate(variables)


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


# ---- photos only for their conversation ------------------------------------------------


async def test_a_chat_photo_is_served_only_to_its_conversation(bot: Runtime) -> None:
    citizen, moderator, stranger = Browser(bot), Browser(bot, "moderator"), Browser(bot)
    try:
        for tab in (moderator, citizen, stranger):
            await tab.open()
        await report_until_photos(citizen, "Hoàng Văn Tư", "farmer", "na sam", 6124, STORY)
        assert await citizen.upload(jpeg(), "IMG_1.jpg", "image/jpeg") == 200
        await citizen.next_message()
        async with bot.sessions() as session:
            [photo] = (await session.exec(select(MediaFile))).all()
        url = f"/chat/media/{photo.sha256}.jpg"
        assert await citizen.get(url) == 200, "the draft holds it"
        for outsider in (stranger, moderator):
            assert await outsider.get(url) == 404
        async with (
            aiohttp.ClientSession() as anonymous,
            anonymous.get(f"{base_url(bot)}{url}") as response,
        ):
            assert response.status == 404
        await citizen.press("r:photos:done")
        await citizen.press("r:identity:anonymous")
        await citizen.press("r:summary:confirm")
        card = await moderator.next_message(timeout=8)
        assert url in json.dumps(card) or url in json.dumps(await moderator.next_message(timeout=8))
        assert await moderator.get(url) == 200, "the moderator's card shows it"
        assert await citizen.get(url) == 200, "the report holds it"
        assert await stranger.get(url) == 404
    finally:
        for tab in (citizen, moderator, stranger):
            await tab.close()


# ---- sessions: rotated, expired, Secure ------------------------------------------------


async def refused_socket(bot: Runtime, cookie: str) -> int:
    """The status a WebSocket handshake gets with this cookie alone."""
    base = base_url(bot)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        http.cookie_jar.update_cookies({COOKIE: cookie})
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{base}/chat/ws", origin=base)
        return refused.value.status


async def test_switching_persona_rotates_the_session(bot: Runtime) -> None:
    citizen = Browser(bot)
    moderator = Browser(bot, "moderator")
    moderator.http = citizen.http
    try:
        await citizen.open()
        await citizen.say("/start")
        before = citizen.cookie
        await moderator.open()
        assert citizen.cookie != before
        assert await refused_socket(bot, before) == 403
        back = Browser(bot)
        back.http = citizen.http
        hello = await back.open()
        assert any("Chào mừng" in text_of(message) for message in hello["messages"])
        await back.socket.close()  # type: ignore[union-attr]
    finally:
        await moderator.socket.close()  # type: ignore[union-attr]
        await citizen.close()


async def test_tabs_switching_persona_at_once_all_get_their_page(bot: Runtime) -> None:
    tab = Browser(bot)
    try:
        await tab.open()
        cookie = tab.cookie

        async def switch(persona: str) -> int:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                http.cookie_jar.update_cookies({COOKIE: cookie})
                async with http.get(f"{tab.base}/chat?as={persona}") as page:
                    return page.status

        personas = ["moderator", "citizen2", "subscriber", "admin"] * 3
        assert set(await asyncio.gather(*map(switch, personas))) == {200}
        assert await refused_socket(bot, cookie) == 403
    finally:
        await tab.close()


async def test_a_role_granted_rotates_the_session_on_the_next_connection(bot: Runtime) -> None:
    tab = Browser(bot)
    try:
        await tab.open()
        before = tab.cookie
        async with bot.sessions() as session, session.begin():
            [web_session] = (await session.exec(select(WebSession))).all()
            await grant_role(session, "web", web_session.chat_id, Role.OFFICER, granted_by="cli")
        await tab.socket.close()  # type: ignore[union-attr]
        tab.socket = await tab.http.ws_connect(f"{tab.base}/chat/ws", origin=tab.base)
        assert (await tab.socket.receive_json(timeout=5))["type"] == "hello"
        assert tab.cookie != before
        assert await refused_socket(bot, before) == 403
    finally:
        await tab.close()


async def test_an_idle_session_expires_with_its_transcript(bot: Runtime) -> None:
    tab = Browser(bot)
    try:
        await tab.open()
        await tab.say("/start")
        expired = tab.cookie
        [web_session] = await leave_idle(bot)
        assert await refused_socket(bot, expired) == 403
        await tab.socket.close()  # type: ignore[union-attr]
        hello = await tab.open()
        assert hello["messages"] == [] and tab.cookie != expired
        async with bot.sessions() as session:
            old = select(WebMessage).where(WebMessage.chat_id == web_session.chat_id)
            assert (await session.exec(old)).all() == []
    finally:
        await tab.close()


async def test_each_visit_renews_the_cookie_of_a_live_session(browser: Browser) -> None:
    await browser.open()
    cookie = browser.cookie
    async with browser.http.get(f"{browser.base}/chat") as page:
        renewed = page.cookies[COOKIE]
    assert renewed.value == cookie and renewed["max-age"] == str(30 * 24 * 3600)


async def leave_idle(bot: Runtime) -> list[WebSession]:
    """Make every session look unused for a minute longer than WEB_SESSION_IDLE_DAYS."""
    long_ago = utcnow() - timedelta(days=bot.settings.web_session_idle_days, minutes=1)
    async with bot.sessions() as session, session.begin():
        rows = list((await session.exec(select(WebSession))).all())
        for row in rows:
            row.last_seen = long_ago
            session.add(row)
    return rows


async def test_idle_sessions_are_purged_when_newcomers_arrive(bot: Runtime) -> None:
    idle = Browser(bot)
    await idle.open()
    await idle.say("/start")
    await idle.close()
    await leave_idle(bot)
    newcomer = Browser(bot)
    try:
        await newcomer.open()
        async with bot.sessions() as session:
            assert (await session.exec(select(WebMessage))).all() == []
            assert len((await session.exec(select(WebSession))).all()) == 1
    finally:
        await newcomer.close()


async def test_the_cookie_is_secure_when_the_public_address_is_https(settings: Settings) -> None:
    async with (
        running_bot(settings, public_base_url="https://bot.example.gov.vn") as runtime,
        aiohttp.ClientSession() as http,
        http.get(f"{base_url(runtime)}/chat") as page,
    ):
        cookie = page.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert f"Max-Age={30 * 24 * 3600}" in cookie


@pytest.mark.parametrize(
    ("values", "secure"),
    [
        ({}, False),
        ({"public_base_url": "http://127.0.0.1:8080"}, False),
        ({"public_base_url": "https://bot.example.gov.vn"}, True),
        ({"zalo_webhook_url": "https://bot.example.gov.vn/zalo/webhook"}, True),
        ({"public_base_url": "https://bot.example.gov.vn", "web_cookie_secure": "false"}, False),
        ({"web_cookie_secure": "true"}, True),
    ],
)
def test_cookie_secure_defaults_to_the_public_address(values: dict[str, str], secure: bool) -> None:
    assert configured(**values).cookie_secure is secure


# ---- embedding origins -----------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    [
        "*",
        "http://portal.example.vn",
        "https://langson.gov.vn; script-src *",
        "https://langson.gov.vn/chat",
        "https://*.gov.vn",
        "langson.gov.vn",
    ],
)
def test_unsafe_embedding_origins_are_refused(origin: str) -> None:
    with pytest.raises(ValidationError, match="may not embed the chat"):
        configured(web_allowed_origins=f"https://ok.gov.vn,{origin}")


def test_portals_and_local_development_origins_are_allowed() -> None:
    origins = (
        "https://langson.gov.vn,https://portal.gov.vn:8443/,http://localhost:3000,http://127.0.0.1"
    )
    settings = configured(web_allowed_origins=origins)
    assert len(settings.web_allowed_origins) == 4


def test_the_bot_refuses_to_start_with_any_origin_allowed(tmp_path: Path) -> None:
    result = guongsang("run", database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db", cwd=tmp_path,
                       WEB_ALLOWED_ORIGINS="*")  # fmt: skip
    assert_refused(result, "WEB_ALLOWED_ORIGINS: '*' may not embed the chat")


# ---- the client's address behind proxies -----------------------------------------------

LOOPBACK = (ip_network("127.0.0.1/32"),)
PROXIES = (ip_network("127.0.0.1/32"), ip_network("10.0.0.0/8"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "client"),
    [
        ("127.0.0.1", ["6.6.6.6, 1.2.3.4"], (), "127.0.0.1"),
        ("127.0.0.1", ["6.6.6.6, 1.2.3.4"], LOOPBACK, "1.2.3.4"),
        ("127.0.0.1", ["6.6.6.6", "1.2.3.4, 10.0.0.2"], PROXIES, "1.2.3.4"),
        ("203.0.113.9", ["1.2.3.4"], PROXIES, "203.0.113.9"),
        ("10.1.2.3", ["10.0.0.9"], PROXIES, "10.0.0.9"),
        ("127.0.0.1", [], LOOPBACK, "127.0.0.1"),
        ("127.0.0.1", ["not-an-address, 10.0.0.2"], PROXIES, "not-an-address"),
    ],
)
def test_forwarded_addresses_are_read_from_the_right_past_trusted_proxies(
    peer: str, forwarded: list[str], trusted: tuple[IPv4Network, ...], client: str
) -> None:
    assert client_ip(peer, forwarded, trusted) == client


def test_trusted_proxies_are_addresses_or_networks() -> None:
    settings = configured(trusted_proxies="127.0.0.1, 10.0.0.0/8,::1")
    assert [str(n) for n in settings.trusted_proxies] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    with pytest.raises(ValidationError, match="'nginx' is not an address or a network"):
        configured(trusted_proxies="nginx")


async def new_sessions(runtime: Runtime, count: int) -> list[int]:
    """Statuses of `count` first visits, each claiming another X-Forwarded-For address."""
    statuses = []
    async with aiohttp.ClientSession(base_url=base_url(runtime)) as http:
        for n in range(count):
            async with http.get("/chat", headers={"X-Forwarded-For": f"198.51.100.{n}"}) as page:
                statuses.append(page.status)
    return statuses


async def test_a_forged_forwarded_address_does_not_escape_the_new_session_limit(
    settings: Settings,
) -> None:
    async with running_bot(settings, messages_per_minute=1) as runtime:
        assert 429 in await new_sessions(runtime, 12)
    async with running_bot(settings, messages_per_minute=1, trusted_proxies="127.0.0.1") as proxied:
        assert set(await new_sessions(proxied, 12)) == {200}


# ---- floods: transcript and sockets -----------------------------------------------------


async def test_the_transcript_keeps_the_newest_messages_of_each_chat(
    sessions: SessionFactory,
) -> None:
    async with sessions() as session, session.begin():
        await append_message(session, "other", {"n": -1}, from_bot=False, keep=5)
        for n in range(30):
            await append_message(session, "flooder", {"n": n}, from_bot=False, keep=10)
    async with sessions() as session:
        kept = await recent_messages(session, "flooder")
        other = await recent_messages(session, "other")
    assert [message.payload["n"] for message in kept] == list(range(20, 30))
    assert [message.payload["n"] for message in other] == [-1]


async def test_a_flood_of_messages_keeps_only_the_newest_in_the_transcript(
    settings: Settings,
) -> None:
    async with running_bot(settings, web_transcript_limit=20) as runtime:
        tab = Browser(runtime)
        try:
            await tab.open()
            for n in range(100):
                await tab.send({"type": "text", "text": f"flood {n}"})
            async with runtime.sessions() as session:
                [web_session] = (await session.exec(select(WebSession))).all()
            chat = web_session.chat_id
            last = await stored_eventually(runtime, chat, "flood 99")
            async with runtime.sessions() as session:
                count = len((await session.exec(select(WebMessage))).all())
            assert count <= 20 and last
        finally:
            await tab.close()


async def stored_eventually(runtime: Runtime, chat_id: str, text: str) -> bool:
    """Wait (up to ten seconds) until `text` is in the chat's transcript."""
    for _ in range(100):
        async with runtime.sessions() as session:
            if any(text in json.dumps(m.payload) for m in await recent_messages(session, chat_id)):
                return True
        await asyncio.sleep(0.1)
    return False


async def test_one_session_holds_few_sockets_and_one_address_a_bounded_number(
    settings: Settings,
) -> None:
    async with running_bot(
        settings, web_sockets_per_session=2, web_sockets_per_address=3
    ) as runtime:
        first, other = Browser(runtime), Browser(runtime)
        try:
            await first.open()
            url = f"{first.base}/chat/ws"
            newer = [await first.http.ws_connect(url, origin=first.base) for _ in range(2)]
            for socket in newer:
                assert (await socket.receive_json(timeout=5))["type"] == "hello"
            assert first.socket is not None
            closed = await first.socket.receive(timeout=5)
            assert closed.type is aiohttp.WSMsgType.CLOSE and closed.data == TAB_REPLACED
            await other.open()
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await other.http.ws_connect(url, origin=other.base)
            assert refused.value.status == 429
            assert "Chào mừng" in text_of(await other.say("/start"))
            for socket in newer:
                await socket.close()
        finally:
            await first.close()
            await other.close()
