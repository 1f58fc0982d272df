"""A Zalo photo URL is fetched only over HTTPS from public addresses, redirects included.

Tests allow the fake CDN on 127.0.0.1 explicitly (ZALO_MEDIA_ALLOWED_HOSTS); a production
configuration allows nothing of the kind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from bot.channels.zalo_api import PublicResolver, ZaloClient, is_public
from bot.settings import Settings
from handlers.ports import MediaProblem, MediaRejected
from tests.fakes.zalo_api import FakeZalo
from tests.images import jpeg
from tests.test_zalo_e2e import TOKEN, running, zalo_settings

REFUSED_URLS = [
    "http://example.com/photo.jpg",
    "ftp://example.com/photo.jpg",
    "file:///etc/passwd",
    "https://127.0.0.1/photo.jpg",
    "https://127.1.2.3/photo.jpg",
    "https://0.0.0.0/photo.jpg",
    "https://10.1.2.3/photo.jpg",
    "https://172.16.5.4/photo.jpg",
    "https://192.168.1.10/photo.jpg",
    "https://169.254.169.254/latest/meta-data",
    "https://100.64.0.1/photo.jpg",
    "https://224.0.0.1/photo.jpg",
    "https://240.0.0.1/photo.jpg",
    "https://[::1]/photo.jpg",
    "https://[fe80::1]/photo.jpg",
    "https://[fc00::1]/photo.jpg",
    "https://[ff02::1]/photo.jpg",
    "https://[::ffff:127.0.0.1]/photo.jpg",
    "https://[2002:c0a8:0101::1]/photo.jpg",
]


class Cdn:
    """A photo server on 127.0.0.1 that records what was asked of it."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        app = web.Application()
        app.router.add_get("/photo.jpg", self._photo)
        app.router.add_get("/hop", self._hop)
        self.server = TestServer(app, host="127.0.0.1")

    async def _photo(self, request: web.Request) -> web.Response:
        self.asked.append(request.path)
        return web.Response(body=jpeg(), content_type="image/jpeg")

    async def _hop(self, request: web.Request) -> web.Response:
        self.asked.append(request.path)
        raise web.HTTPFound(request.query["to"])

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.server.port}{path}"


@pytest.fixture
async def cdn() -> AsyncIterator[Cdn]:
    server = Cdn()
    async with server.server:
        yield server


async def fetch(url: str, *allowed_hosts: str, max_bytes: int = 1_000_000) -> bytes:
    client = ZaloClient(
        TOKEN, "https://bot-api.zaloplatforms.com", media_allowed_hosts=frozenset(allowed_hosts)
    )
    try:
        return await client.download(url, max_bytes)
    finally:
        await client.close()


@pytest.mark.parametrize("url", REFUSED_URLS)
async def test_a_production_client_refuses_private_addresses_and_plain_http(url: str) -> None:
    with capture_logs() as logs, pytest.raises(MediaRejected) as refused:
        await fetch(url)
    assert refused.value.problem is MediaProblem.UNAVAILABLE
    assert [entry["event"] for entry in logs] == ["zalo.media.refused"]


def test_only_public_unicast_addresses_are_public() -> None:
    assert is_public("8.8.8.8") and is_public("2001:4860:4860::8888")
    assert not any(is_public(url.split("/")[2].strip("[]")) for url in REFUSED_URLS[3:])


async def test_a_name_resolves_only_to_public_addresses() -> None:
    with pytest.raises(OSError):
        await PublicResolver(frozenset()).resolve("localhost")
    allowed = await PublicResolver(frozenset({"localhost"})).resolve("localhost")
    assert {result["host"] for result in allowed} & {"127.0.0.1", "::1"}


async def test_a_redirect_to_loopback_is_refused(cdn: Cdn) -> None:
    hop = cdn.url(f"/hop?to={cdn.url('/photo.jpg')}", host="localhost")
    with pytest.raises(MediaRejected):
        await fetch(hop, "localhost")
    assert cdn.asked == ["/hop"]
    assert await fetch(hop, "localhost", "127.0.0.1") == jpeg()
    assert cdn.asked == ["/hop", "/hop", "/photo.jpg"]


async def test_a_photo_over_the_size_limit_is_refused(cdn: Cdn) -> None:
    with pytest.raises(MediaRejected) as refused:
        await fetch(cdn.url("/photo.jpg"), "127.0.0.1", max_bytes=100)
    assert refused.value.problem is MediaProblem.TOO_LARGE


async def test_a_zalo_photo_on_a_private_address_is_never_fetched(
    settings: Settings, cdn: Cdn
) -> None:
    async with FakeZalo(TOKEN) as zalo:
        production = zalo_settings(settings, zalo, zalo_media_allowed_hosts="")
        async with running(production):
            user = zalo.user("u-ssrf")
            await user.reply("/report")
            await user.send(user.update("message.image.received", photo_url=cdn.url("/photo.jpg")))
            [answer] = await user.wait_for_messages(1)
    assert "chưa nhận được ảnh này" in answer.text
    assert cdn.asked == []
