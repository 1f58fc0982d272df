"""What every channel adapter shares: the protocol, and sending replies in order."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog
from aiohttp import web

from handlers.messages import Capabilities, Inbound, Outbound
from scheduler.dispatcher import DeliveryFailed
from scheduler.limiter import RateLimiter

InboundHandler = Callable[[Inbound, Capabilities], Awaitable[list[Outbound]]]

COALESCE_DELAY_SECONDS = 0.8

log = structlog.get_logger(__name__)


class Channel(Protocol):
    """A platform adapter: translates inbound updates and renders outbound messages."""

    name: str
    capabilities: Capabilities

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, outbound: Outbound) -> str:
        """Render and send one message; return its platform id or raise DeliveryFailed."""
        ...

    def is_group(self, chat_id: str) -> bool:
        """Whether `chat_id` is a group or channel (platforms limit those more tightly)."""
        ...

    def api_calls(self, outbound: Outbound) -> int:
        """How many platform calls sending `outbound` takes (each counts against limits)."""
        ...


Keep = Callable[[str, list[Outbound], float], Awaitable[None]]
"""Store replies to a chat that cannot go out now in the outbox, due in so many seconds."""

REPLY_PATIENCE_SECONDS = 20.0
"""How long a chat's replies wait in memory (429s, transient errors) before the outbox."""
DEFER_MARGIN_SECONDS = 30.0
"""After replies to a chat went to the outbox, its next replies follow them there this much
longer than the platform's wait, so that they stay in order."""
STOP_GRACE_SECONDS = 2.0


class ReplySender:
    """Sends a flow's replies to each chat in order, within the platform's per-chat limits.

    Each chat has a queue and a worker: a reply waits for its turn in the channel's
    `RateLimiter` (shared with the outbox dispatcher, so the two never exceed a chat's
    limit together); a 429 or a transient error waits as long as the platform asks and
    sends again. What cannot go out within `REPLY_PATIENCE_SECONDS`, or is still queued when
    the process stops, is kept in the outbox and delivered by the dispatcher: no reply is
    dropped. One slow chat holds up no other.

    An album arrives as several updates; each stores its photo and acknowledges it with
    the same `coalesce_key`. Only the last acknowledgement is sent, shortly after the
    burst ends. Any other reply to that chat supersedes a pending acknowledgement.
    """

    def __init__(
        self,
        send: Callable[[Outbound], Awaitable[str]],
        *,
        limiter: RateLimiter | None = None,
        is_group: Callable[[str], bool] = lambda chat_id: False,
        api_calls: Callable[[Outbound], int] = lambda outbound: 1,
        keep: Keep | None = None,
        delay: float = COALESCE_DELAY_SECONDS,
        patience: float = REPLY_PATIENCE_SECONDS,
    ) -> None:
        self._send = send
        self._limiter = limiter
        self._is_group = is_group
        self._api_calls = api_calls
        self._keep = keep
        self._delay = delay
        self._patience = patience
        self._coalescing: dict[str, asyncio.Task[None]] = {}
        self._queues: dict[str, deque[Outbound]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._deferred: dict[str, float] = {}
        """Chats whose replies go to the outbox until this loop time (order behind kept ones)."""

    async def deliver(self, replies: list[Outbound]) -> None:
        """Queue `replies` for their chats; returns at once (workers send them)."""
        for outbound in replies:
            previous = self._coalescing.pop(outbound.chat_id, None)
            if previous is not None:
                previous.cancel()
            if outbound.coalesce_key:
                self._coalescing[outbound.chat_id] = asyncio.create_task(self._later(outbound))
            else:
                await self._enqueue(outbound)

    async def _later(self, outbound: Outbound) -> None:
        await asyncio.sleep(self._delay)
        self._coalescing.pop(outbound.chat_id, None)
        await self._enqueue(outbound)

    async def _enqueue(self, outbound: Outbound) -> None:
        chat_id = outbound.chat_id
        wait = self._deferred.get(chat_id, 0.0) - asyncio.get_running_loop().time()
        if wait > 0:
            await self._keep_in_outbox(chat_id, [outbound], max(wait - DEFER_MARGIN_SECONDS, 0))
            return
        self._queues.setdefault(chat_id, deque()).append(outbound)
        if chat_id not in self._workers:
            self._workers[chat_id] = asyncio.create_task(self._drain(chat_id))

    async def _drain(self, chat_id: str) -> None:
        queue = self._queues[chat_id]
        try:
            while queue:
                retry_in = await self._send_first(chat_id, queue)
                if retry_in is not None:
                    self._deferred[chat_id] = (
                        asyncio.get_running_loop().time() + retry_in + DEFER_MARGIN_SECONDS
                    )
                    kept = list(queue)
                    queue.clear()
                    await self._keep_in_outbox(chat_id, kept, retry_in)
        finally:
            self._workers.pop(chat_id, None)
            if not queue:
                self._queues.pop(chat_id, None)

    async def _send_first(self, chat_id: str, queue: deque[Outbound]) -> float | None:
        """Send the chat's oldest reply, waiting out 429s and transient errors.

        Returns None once it is sent (or refused for good), else the seconds the platform
        asks to wait when that would exceed the patience: the queue then goes to the outbox.
        """
        outbound = queue[0]
        group = self._is_group(chat_id)
        cost = self._api_calls(outbound)
        waited, attempts = 0.0, 0
        while True:
            if self._limiter is not None:
                await self._limiter.acquire(chat_id, group, cost)
            try:
                await self._send(outbound)
            except DeliveryFailed as failure:
                outbound.skip_parts = failure.parts_sent
                retry_in = failure.delay(attempts)
                if retry_in is None:
                    log.warning("reply.refused", chat_id=chat_id, reason=str(failure))
                    queue.popleft()
                    return None
                attempts += 1 if failure.backoff else 0
                if waited + retry_in > self._patience:
                    return retry_in
                log.info("reply.retry", chat_id=chat_id, retry_in=retry_in, reason=str(failure))
                waited += retry_in
                await self._pause(chat_id, group, retry_in)
            else:
                if self._limiter is not None:
                    self._limiter.sent(chat_id, group, cost)
                queue.popleft()
                return None

    async def _pause(self, chat_id: str, group: bool, seconds: float) -> None:
        if self._limiter is not None:
            self._limiter.hold(chat_id, seconds, group)  # the next acquire waits it out
        else:
            await asyncio.sleep(seconds)

    async def _keep_in_outbox(self, chat_id: str, replies: list[Outbound], due_in: float) -> None:
        if self._keep is None:
            log.error("reply.lost", chat_id=chat_id, count=len(replies))
            return
        try:
            await self._keep(chat_id, replies, due_in)
        except Exception:
            log.exception("reply.lost", chat_id=chat_id, count=len(replies))
        else:
            log.info("reply.kept", chat_id=chat_id, count=len(replies), due_in=due_in)

    async def flush(self) -> None:
        """At shutdown: let queued replies go out for a moment, then keep the rest."""
        pending = [*self._coalescing.values(), *self._workers.values()]
        if pending:
            await asyncio.wait(pending, timeout=STOP_GRACE_SECONDS)
        for chat_id in list(self._queues):
            worker = self._workers.pop(chat_id, None)
            if worker is not None:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
            kept = list(self._queues.pop(chat_id, ()))
            if kept:
                await self._keep_in_outbox(chat_id, kept, 0.0)


def split_text(text: str, limit: int) -> list[str]:
    """Cut text into messages of at most `limit` characters, at line breaks where possible."""
    chunks: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        cut = cut if cut > limit // 2 else limit
        chunks.append(text[:cut])
        text = text[cut:].lstrip("\n")
    chunks.append(text)
    return chunks


def secret_matches(request: web.Request, header: str, secret: str | None) -> bool:
    """The webhook request carries `secret` in `header` (compared in constant time)."""
    given = request.headers.get(header, "")
    return bool(secret) and hmac.compare_digest(given.encode(), (secret or "").encode())
