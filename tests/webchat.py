"""Helpers for driving the web chat over HTTP and WebSocket, as a browser does."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from yarl import URL

from bot.app import Runtime, build_runtime
from bot.channels.web import COOKIE
from bot.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def running_bot(settings: Settings, **overrides: Any) -> AsyncIterator[Runtime]:
    values = {**settings.model_dump(), "http_port": free_port(), **overrides}
    runtime = build_runtime(Settings(_env_file=None, **values))  # type: ignore[call-arg]
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


def base_url(runtime: Runtime) -> str:
    return f"http://127.0.0.1:{runtime.settings.http_port}"


class Browser:
    """A cookie jar and a WebSocket on /chat/ws, like one browser tab."""

    def __init__(self, runtime: Runtime, persona: str = "citizen") -> None:
        self.base = base_url(runtime)
        self.persona = persona
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.socket: aiohttp.ClientWebSocketResponse | None = None
        self.hello: dict[str, Any] = {}

    async def open(self) -> dict[str, Any]:
        async with self.http.get(f"{self.base}/chat?as={self.persona}") as page:
            assert page.status == 200
        self.socket = await self.http.ws_connect(
            f"{self.base}/chat/ws?as={self.persona}", origin=self.base
        )
        self.hello = await self.socket.receive_json(timeout=5)
        return self.hello

    async def send(self, frame: dict[str, Any]) -> None:
        assert self.socket is not None
        await self.socket.send_json(frame)

    async def say(self, text: str) -> dict[str, Any]:
        await self.send({"type": "text", "text": text})
        return await self.next_message()

    async def press(self, payload: str) -> dict[str, Any]:
        await self.send({"type": "button", "payload": payload, "label": payload})
        return await self.next_message()

    async def next_message(self, timeout: float = 5) -> dict[str, Any]:
        assert self.socket is not None
        frame = await self.socket.receive_json(timeout=timeout)
        assert frame["type"] == "message", frame
        return dict(frame["message"])

    async def upload(self, data: bytes, name: str, content_type: str) -> int:
        form = aiohttp.FormData()
        form.add_field("photo", data, filename=name, content_type=content_type)
        async with self.http.post(
            f"{self.base}/chat/upload?as={self.persona}",
            data=form,
            headers={"Origin": self.base},
        ) as response:
            return response.status

    async def get(self, path: str) -> int:
        """The status of a GET of `path` with this browser's cookie."""
        async with self.http.get(f"{self.base}{path}") as response:
            return response.status

    @property
    def cookie(self) -> str:
        return self.http.cookie_jar.filter_cookies(URL(f"{self.base}/chat"))[COOKIE].value

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()
        await self.http.close()


async def report_until_photos(
    tab: Browser, name: str, group: str, place: str, commune: int, story: str
) -> None:
    """Answer a new report's questions, up to the photos, as a person typing and pressing."""
    await tab.say("/report")
    await tab.press("r:kind:individual")
    await tab.say(name)
    await tab.press(f"r:group:{group}")
    await tab.say(place)
    await tab.press(f"r:commune:{commune}")
    await tab.say(story)


def text_of(message: dict[str, Any]) -> str:
    return "".join(segment["text"] for segment in message["segments"])


def payloads(message: dict[str, Any]) -> list[str]:
    return [button["payload"] for row in message["buttons"] for button in row]


async def wait_for_health(runtime: Runtime, status: str, timeout: float = 15) -> dict[str, Any]:
    """GET /healthz until it reports `status` ("ok" answers 200, anything else 503)."""
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(timeout):
            while True:
                async with http.get(f"{base_url(runtime)}/healthz") as response:
                    report: dict[str, Any] = await response.json()
                    if report["status"] == status:
                        assert response.status == (200 if status == "ok" else 503)
                        return report
                await asyncio.sleep(0.05)
