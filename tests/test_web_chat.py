"""The web chat at the protocol level: a real aiohttp server, a WebSocket client."""

from __future__ import annotations

import gzip
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from sqlmodel import select

from bot.app import Runtime
from bot.settings import Settings
from models.tables import Report
from tests.fakes.telegram_api import TEST_TIME_SCALE, FakeTelegram
from tests.images import PDF, jpeg
from tests.webchat import (
    Browser,
    base_url,
    payloads,
    report_until_photos,
    running_bot,
    text_of,
)

STORY = "Ông đã hiến 500 mét vuông đất để làm đường vào bản trong tháng 10 vừa qua."


@pytest.fixture
async def bot(settings: Settings) -> AsyncIterator[Runtime]:
    async with running_bot(settings) as runtime:
        yield runtime


@pytest.fixture
async def browser(bot: Runtime) -> AsyncIterator[Browser]:
    tab = Browser(bot)
    yield tab
    await tab.close()


async def test_first_visit_greets_and_offers_the_menu(browser: Browser) -> None:
    hello = await browser.open()
    assert hello["messages"] == [] and hello["ui"]["send"] == "Gửi"
    greeting = await browser.say("/start")
    assert "Chào mừng" in text_of(greeting)
    assert payloads(greeting)[0] == "menu:report"


async def test_full_report_with_photo_and_history_after_reload(
    browser: Browser, bot: Runtime
) -> None:
    await browser.open()
    await browser.say("/start")
    await browser.press("menu:report")
    await browser.press("r:kind:individual")
    name_echo = await browser.say("<script>alert(1)</script> Hà Văn Tú")
    assert "r:group:farmer" in payloads(name_echo)
    await browser.press("r:group:farmer")
    choices = await browser.say("chi lang")
    assert "r:commune:6463" in payloads(choices)
    await browser.press("r:commune:6463")
    await browser.say(STORY)
    assert await browser.upload(jpeg(gps=True), "IMG_0001.jpg", "image/jpeg") == 200
    ack = await browser.next_message()
    assert "1/10" in text_of(ack)
    await browser.press("r:photos:done")
    summary = await browser.press("r:identity:anonymous")
    assert "<script>alert(1)</script> Hà Văn Tú" in text_of(summary)
    done = await browser.press("r:summary:confirm")
    async with bot.sessions() as session:
        [report] = (await session.exec(select(Report))).all()
    assert report.code in text_of(done)
    assert report.channel == "web"

    reloaded = Browser(bot)
    reloaded.http = browser.http  # same cookies: the same person reloading the page
    hello = await reloaded.open()
    texts = [text_of(m) for m in hello["messages"]]
    assert any(report.code in text for text in texts)
    assert "<script>alert(1)</script> Hà Văn Tú" in texts
    await reloaded.socket.close()  # type: ignore[union-attr]


async def test_uploads_too_large_or_not_images_get_a_clear_message(
    browser: Browser, bot: Runtime
) -> None:
    await browser.open()
    await report_until_photos(browser, "Vi Văn Sáng", "worker", "na sam", 6124, STORY)
    too_big = b"\xff\xd8" + b"0" * (bot.settings.max_photo_bytes + 10)
    assert await browser.upload(too_big, "huge.jpg", "image/jpeg") == 200
    assert "quá lớn" in text_of(await browser.next_message())
    await browser.next_message()
    assert await browser.upload(PDF, "giay.pdf", "application/pdf") == 200
    assert "không phải là ảnh" in text_of(await browser.next_message())


async def test_forged_cookie_and_foreign_origin_are_refused(bot: Runtime) -> None:
    base = base_url(bot)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        http.cookie_jar.update_cookies({"gs_session": "attacker.forged-signature"})
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{base}/chat/ws", origin=base)
        assert refused.value.status == 403
        async with http.get(f"{base}/chat") as page:
            assert page.status == 200
        with pytest.raises(aiohttp.WSServerHandshakeError) as cross_site:
            await http.ws_connect(f"{base}/chat/ws", origin="https://evil.example")
        assert cross_site.value.status == 403
        async with http.post(
            f"{base}/chat/upload", data=b"x", headers={"Origin": "https://evil.example"}
        ) as upload:
            assert upload.status == 403


async def test_sandbox_personas_are_separate_people(bot: Runtime) -> None:
    citizen, moderator = Browser(bot), Browser(bot, persona="moderator")
    moderator.http = citizen.http
    try:
        hello = await citizen.open()
        assert [p["key"] for p in hello["personas"]] == [
            "citizen",
            "citizen2",
            "moderator",
            "subscriber",
            "admin",
        ]
        await citizen.say("/report")
        await moderator.open()
        assert moderator.hello["messages"] == []
        assert moderator.hello["persona"] == "moderator"
    finally:
        await moderator.socket.close()  # type: ignore[union-attr]
        await citizen.close()


async def test_sandbox_personas_are_greeted_without_their_role_as_a_name(bot: Runtime) -> None:
    for persona in ("citizen", "moderator"):
        tab = Browser(bot, persona=persona)
        try:
            await tab.open()
            greeting = text_of(await tab.say("/start"))
            assert greeting.startswith("Chào mừng bạn đến với Gương Sáng!"), greeting
        finally:
            await tab.close()


async def test_production_web_chat_has_no_personas(settings: Settings) -> None:
    async with (
        FakeTelegram(time_scale=TEST_TIME_SCALE) as fake,
        running_bot(
            settings, telegram_bot_token="1:x", telegram_api_base_url=fake.base_url, **fake.pacing
        ) as runtime,
    ):
        tab = Browser(runtime, persona="moderator")
        try:
            hello = await tab.open()
            assert hello["personas"] == [] and hello["persona"] == "citizen"
        finally:
            await tab.close()


async def test_bad_frames_are_answered_not_fatal(browser: Browser) -> None:
    await browser.open()
    assert browser.socket is not None
    await browser.socket.send_str("not json")
    assert (await browser.socket.receive_json(timeout=5))["type"] == "error"
    await browser.send({"type": "launch-missiles"})
    assert (await browser.socket.receive_json(timeout=5))["type"] == "error"
    assert "Chào mừng" in text_of(await browser.say("/start"))


async def test_sandbox_moderator_approves_a_web_report(bot: Runtime) -> None:
    """The whole cycle on one machine with no account anywhere: the sandbox's promise."""
    citizen, moderator = Browser(bot), Browser(bot, persona="moderator")
    moderator.http = citizen.http
    try:
        await moderator.open()
        await citizen.open()
        await report_until_photos(
            citizen, "Lục Văn Hải", "village_officer", "binh gia", 6112, STORY
        )
        await citizen.press("r:photos:skip")
        await citizen.press("r:identity:anonymous")
        done = await citizen.press("r:summary:confirm")
        card = await moderator.next_message(timeout=8)
        assert "Lục Văn Hải" in text_of(card) and "Xã Bình Gia" in text_of(card)
        approve = next(p for p in payloads(card) if p.startswith("m:ap:"))
        toast = await moderator.press(approve)
        assert "Đã duyệt" in text_of(toast)
        told = await citizen.next_message(timeout=8)
        code = text_of(done)[text_of(done).index("GS-") :][:14]
        assert code in text_of(told) and "duyệt" in text_of(told)
        assert moderator.socket is not None
        edit = await moderator.socket.receive_json(timeout=8)
        assert edit["type"] == "edit" and edit["message"]["id"] == card["id"]
        assert "Lịch sử" in str(edit["message"]["buttons"])
    finally:
        await moderator.socket.close()  # type: ignore[union-attr]
        await citizen.close()


async def test_embedding_in_the_portal(settings: Settings) -> None:
    portal = "https://langson.gov.vn"
    async with running_bot(settings, web_allowed_origins=portal) as runtime:
        base = base_url(runtime)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/chat") as page:
                assert f"frame-ancestors 'self' {portal}" in page.headers["Content-Security-Policy"]
                cookie = page.headers["Set-Cookie"]
                assert "SameSite=None" in cookie and "Secure" in cookie and "HttpOnly" in cookie
            async with http.get(f"{base}/chat/embed.js") as script:
                assert script.status == 200 and "iframe" in await script.text()


async def test_home_and_icon_answer(bot: Runtime) -> None:
    async with aiohttp.ClientSession(base_url=base_url(bot)) as http:
        async with http.get("/", allow_redirects=False) as home:
            assert home.status == 302 and home.headers["Location"] == "/chat"
        async with http.get("/favicon.ico") as icon:
            assert icon.status == 200 and icon.content_type == "image/x-icon"
            assert (await icon.read())[:4] == b"\x00\x00\x01\x00"  # an ICO header
        async with http.get("/chat/static/nothing.js") as missing:
            assert missing.status == 404


async def test_page_and_assets_are_compressed_and_cached(bot: Runtime) -> None:
    async with aiohttp.ClientSession(base_url=base_url(bot), auto_decompress=False) as http:
        gzip_only = {"Accept-Encoding": "gzip"}
        async with http.get("/chat", headers=gzip_only) as page:
            assert page.headers["Content-Encoding"] == "gzip"
            assert page.headers["Cache-Control"] == "no-cache"
            html = gzip.decompress(await page.read()).decode()
            etag = page.headers["ETag"]
        async with http.get("/chat", headers={**gzip_only, "If-None-Match": etag}) as again:
            assert again.status == 304 and await again.read() == b""
        script = re.search(r'src="(/chat/static/chat\.js\?v=\w+)"', html)
        assert script is not None
        async with http.get(script.group(1), headers=gzip_only) as versioned:
            assert versioned.headers["Content-Encoding"] == "gzip"
            assert "max-age=31536000" in versioned.headers["Cache-Control"]
            compressed = await versioned.read()
        async with http.get(script.group(1), headers={"Accept-Encoding": "identity"}) as plain:
            assert "Content-Encoding" not in plain.headers
            assert gzip.decompress(compressed) == await plain.read()
            assert len(compressed) < plain.content_length / 2  # type: ignore[operator]
        async with http.get("/chat/static/chat.js?v=old", headers=gzip_only) as stale:
            assert stale.headers["Cache-Control"] == "no-cache"
        async with http.get("/chat/static/chat.css", headers=gzip_only) as style:
            assert b"--accent" in gzip.decompress(await style.read())
