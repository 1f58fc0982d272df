"""A fake Zalo Bot API server for end-to-end tests.

The bot's own client is pointed at it with ``ZALO_API_BASE_URL``; it then serves
``{base}/bot{token}/{method}`` as Zalo does (JSON in, ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": ..., "description": ...}`` out). Tests act as Zalo users
(:class:`ZaloUser`) and look at what the bot sent.

It records every call; serves ``getUpdates`` one update per call (a long poll that ends
with 408 when nothing comes); delivers updates to the webhook set with ``setWebhook``
(with its secret in ``X-Bot-Api-Secret-Token``, wrapped or bare); serves users' photos
from a fake CDN whose links can be made to expire; enforces the 2,000-character limit;
refuses ``sendPhoto`` without a URL and fetches the URL as Zalo would; and injects
errors (429, 5xx, 403) on request.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

import aiohttp
from aiohttp import web

type JsonDict = dict[str, Any]

MAX_TEXT_LENGTH = 2000
CHAT_ACTIONS = frozenset({"typing", "upload_photo"})
BOT_INFO: JsonDict = {
    "id": "7000000000000000001",
    "account_name": "bot.guongsang",
    "account_type": "BASIC",
    "can_join_groups": False,
}
SECRET_HEADER = "X-Bot-Api-Secret-Token"


@dataclass
class ApiCall:
    method: str
    params: JsonDict
    status: int


@dataclass
class SentMessage:
    chat_id: str
    message_id: str
    text: str = ""
    photo_url: str = ""
    photo_status: int | None = None
    """What the fake got when it fetched `photo_url`, as Zalo fetches it."""


@dataclass
class WebhookDelivery:
    message_id: str
    status: int


@dataclass
class _Failure:
    status: int
    description: str
    retry_after: int | None


@dataclass
class _Webhook:
    url: str
    secret_token: str


@dataclass
class _Photo:
    data: bytes
    expired: bool = False


@dataclass
class _State:
    calls: list[ApiCall] = field(default_factory=list)
    sent: dict[str, list[SentMessage]] = field(default_factory=dict)
    updates: list[JsonDict] = field(default_factory=list)
    failures: dict[str, list[_Failure]] = field(default_factory=dict)
    photos: dict[str, _Photo] = field(default_factory=dict)
    deliveries: list[WebhookDelivery] = field(default_factory=list)


class FakeZalo:
    def __init__(self, token: str, poll_wait: float = 0.5) -> None:
        self.token = token
        self.poll_wait = poll_wait
        """Longest a getUpdates call waits here, whatever timeout the bot asked for."""
        self.state = _State()
        self.webhook: _Webhook | None = None
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self.base_url = ""

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._on_call)
        app.router.add_get("/cdn/{name}", self._on_cdn)
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        self._http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- what tests look at and control ----------------------------------------------------

    @property
    def calls(self) -> list[ApiCall]:
        return list(self.state.calls)

    def calls_to(self, method: str) -> list[ApiCall]:
        return [call for call in self.state.calls if call.method == method]

    def user(self, user_id: str, name: str = "Người dùng Zalo") -> ZaloUser:
        return ZaloUser(self, user_id, name)

    def fail_next(
        self, method: str, status: int, description: str = "", retry_after: int | None = None
    ) -> None:
        """The next call of `method` fails with `status` (429, 5xx, 403…)."""
        self.state.failures.setdefault(method, []).append(
            _Failure(status, description or f"error {status}", retry_after)
        )

    async def wait_until(
        self, condition: Callable[[], bool], timeout: float = 15.0, what: str = "condition"
    ) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.02)

    # ---- users' updates -------------------------------------------------------------------

    def _register_photo(self, data: bytes) -> str:
        name = f"{uuid.uuid4().hex}.jpg"
        self.state.photos[name] = _Photo(data)
        return f"{self.base_url}/cdn/{name}"

    async def push(self, update: JsonDict) -> None:
        """Deliver `update`: to the webhook when one is set, else to getUpdates."""
        if self.webhook is not None:
            await self.post_webhook(update, secret=self.webhook.secret_token)
            return
        async with self._changed:
            self.state.updates.append(update)
            self._changed.notify_all()

    async def post_webhook(
        self, update: JsonDict, *, secret: str | None, wrapped: bool = True, url: str = ""
    ) -> int:
        """POST `update` to the webhook (or `url`), with `secret` in the header if given."""
        assert self._http is not None
        target = url or (self.webhook.url if self.webhook else "")
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        body = {"ok": True, "result": update} if wrapped else update
        async with self._http.post(target, json=body, headers=headers) as response:
            status = response.status
        message = update.get("message") or {}
        self.state.deliveries.append(WebhookDelivery(message.get("message_id", ""), status))
        return status

    # ---- the Bot API ----------------------------------------------------------------------

    async def _on_call(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            params = await request.json() if request.can_read_body else {}
        except ValueError:
            params = {}
        status, body = await self._answer(request.match_info["token"], method, params or {})
        self.state.calls.append(ApiCall(method, params or {}, status))
        return web.json_response(body, status=status)

    async def _answer(self, token: str, method: str, params: JsonDict) -> tuple[int, JsonDict]:
        if token != self.token:
            return _error(401, "Unauthorized")
        queued = self.state.failures.get(method)
        if queued:
            failure = queued.pop(0)
            body = _error(failure.status, failure.description)[1]
            if failure.retry_after is not None:
                body["parameters"] = {"retry_after": failure.retry_after}
            return failure.status, body
        handler = getattr(self, f"_{method}", None)
        if handler is None:
            return _error(404, f"method {method} not found")
        result: tuple[int, JsonDict] = await handler(params)
        return result

    async def _getMe(self, params: JsonDict) -> tuple[int, JsonDict]:
        return _ok(BOT_INFO)

    async def _setWebhook(self, params: JsonDict) -> tuple[int, JsonDict]:
        url, secret = params.get("url"), params.get("secret_token")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return _error(400, "url is invalid")
        if not isinstance(secret, str) or not 8 <= len(secret) <= 256:
            return _error(400, "secret_token must have 8 to 256 characters")
        self.webhook = _Webhook(url, secret)
        return _ok({"url": url, "updated_at": int(time.time() * 1000)})

    async def _deleteWebhook(self, params: JsonDict) -> tuple[int, JsonDict]:
        self.webhook = None
        return _ok({"url": "", "updated_at": int(time.time() * 1000)})

    async def _getWebhookInfo(self, params: JsonDict) -> tuple[int, JsonDict]:
        return _ok({"url": self.webhook.url if self.webhook else "", "updated_at": 0})

    async def _getUpdates(self, params: JsonDict) -> tuple[int, JsonDict]:
        if self.webhook is not None:
            return _error(409, "webhook is set: use deleteWebhook first")
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: bool(self.state.updates)), self.poll_wait
                )
            except TimeoutError:
                return _error(408, "Request timeout")
            return _ok(self.state.updates.pop(0))

    async def _sendMessage(self, params: JsonDict) -> tuple[int, JsonDict]:
        text = params.get("text")
        if not isinstance(text, str) or not 1 <= len(text) <= MAX_TEXT_LENGTH:
            return _error(400, f"text must have 1 to {MAX_TEXT_LENGTH} characters")
        return self._store(params, SentMessage(str(params.get("chat_id")), "", text=text))

    async def _sendPhoto(self, params: JsonDict) -> tuple[int, JsonDict]:
        url = params.get("photo")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return _error(400, "photo must be a URL")
        caption = params.get("caption", "")
        if not isinstance(caption, str) or len(caption) > MAX_TEXT_LENGTH:
            return _error(400, f"caption must have at most {MAX_TEXT_LENGTH} characters")
        assert self._http is not None
        async with self._http.get(url) as response:
            fetched = response.status
        if fetched != 200:
            return _error(400, "photo could not be fetched")
        sent = SentMessage(str(params.get("chat_id")), "", caption, photo_url=url)
        sent.photo_status = fetched
        return self._store(params, sent)

    async def _sendChatAction(self, params: JsonDict) -> tuple[int, JsonDict]:
        if params.get("action") not in CHAT_ACTIONS:
            return _error(400, "action is invalid")
        return 200, {"ok": True}

    def _store(self, params: JsonDict, sent: SentMessage) -> tuple[int, JsonDict]:
        if not params.get("chat_id"):
            return _error(400, "chat_id is required")
        sent.message_id = uuid.uuid4().hex[:20]
        self.state.sent.setdefault(sent.chat_id, []).append(sent)
        return _ok({"message_id": sent.message_id, "date": int(time.time() * 1000)})

    # ---- the CDN --------------------------------------------------------------------------

    async def _on_cdn(self, request: web.Request) -> web.Response:
        photo = self.state.photos.get(request.match_info["name"])
        if photo is None or photo.expired:
            return web.Response(status=404, text="link expired")
        return web.Response(body=photo.data, content_type="image/jpeg")


class ZaloUser:
    """Someone who talks to the bot in their private Zalo chat."""

    def __init__(self, fake: FakeZalo, user_id: str, name: str) -> None:
        self._fake = fake
        self.id = user_id
        self.name = name
        self._seen = len(self.inbox)

    @property
    def inbox(self) -> list[SentMessage]:
        return list(self._fake.state.sent.get(self.id, []))

    async def wait_for_messages(self, count: int = 1, timeout: float = 15.0) -> list[SentMessage]:
        """The next `count` messages the bot sends to this chat since the previous call."""
        wanted = self._seen + count
        await self._fake.wait_until(
            lambda: len(self.inbox) >= wanted,
            timeout,
            what=f"{count} message(s) to {self.id}; inbox: {[m.text[:60] for m in self.inbox]}",
        )
        messages = self.inbox[self._seen : wanted]
        self._seen = wanted
        return messages

    async def reply(self, text: str) -> str:
        """Send `text` and return the text of the bot's one answer."""
        await self.send_text(text)
        [answer] = await self.wait_for_messages(1)
        return answer.text

    def update(self, event: str, **fields: Any) -> JsonDict:
        return {
            "event_name": event,
            "message": {
                "from": {"id": self.id, "display_name": self.name, "is_bot": False},
                "chat": {"id": self.id, "chat_type": "PRIVATE"},
                "message_id": uuid.uuid4().hex[:20],
                "date": int(time.time() * 1000),
                **fields,
            },
        }

    def event(self, event: str) -> JsonDict:
        """An event that is not a message: a follow, an unfollow, one Zalo adds later."""
        return {
            "event_name": event,
            "follower": {"id": self.id, "display_name": self.name},
            "timestamp": int(time.time() * 1000),
        }

    async def send(self, update: JsonDict) -> JsonDict:
        await self._fake.push(update)
        return update

    async def send_text(self, text: str) -> JsonDict:
        return await self.send(self.update("message.text.received", text=text))

    async def send_photo(
        self, data: bytes, key: str = "photo_url", *, expired: bool = False
    ) -> JsonDict:
        """A photo on Zalo's CDN; `key` is "photo_url" or, as some documents say, "photo".

        `expired`: its link no longer works by the time the bot fetches it.
        """
        url = self._fake._register_photo(data)
        self._fake.state.photos[url.rpartition("/")[2]].expired = expired
        return await self.send(self.update("message.image.received", **{key: url}))

    async def send_sticker(self) -> JsonDict:
        return await self.send(
            self.update("message.sticker.received", sticker="0e078a2fb66a5f34067b")
        )

    async def send_unsupported(self) -> JsonDict:
        return await self.send(self.update("message.unsupported.received"))


def _ok(result: JsonDict) -> tuple[int, JsonDict]:
    return 200, {"ok": True, "result": result}


def _error(status: int, description: str) -> tuple[int, JsonDict]:
    return status, {"ok": False, "error_code": status, "description": description}
