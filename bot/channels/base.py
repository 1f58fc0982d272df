"""What every channel adapter shares: the protocol, and sending replies in order."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import re
import unicodedata
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class _Piece:
    """One indivisible piece of a message: a character, a character reference or a tag."""

    raw: str
    shown: str
    """What the piece shows once parsed ("" for a tag)."""
    tag: str = ""
    """A tag's name, "/name" for a closing tag."""


_HTML_PIECE = re.compile(r"<(/?)([A-Za-z][\w-]*)[^>]*>|&(?:#[0-9]+|#[xX][0-9a-fA-F]+|\w+);|.", re.S)
_JOINER = "\u200d"
_REGIONAL_INDICATORS = range(0x1F1E6, 0x1F200)
_SKIN_TONES = range(0x1F3FB, 0x1F400)
_EMOJI_TAGS = range(0xE0020, 0xE0080)


def split_text(text: str, limit: int) -> list[str]:
    """Cut plain text into messages of at most `limit` UTF-16 code units.

    Cuts at a line break, else at a space, when one lies in the second half of the
    part; never inside a character's cluster (an emoji with its modifiers, a flag, a
    letter with its combining marks).
    """
    if text and _units(text) <= limit:
        return [text]  # most messages: one part, nothing to parse
    return _split([_Piece(char, char) for char in text], limit)


def split_html(text: str, limit: int) -> list[str]:
    """Cut text in Telegram's HTML parse mode into messages of at most `limit` characters
    as Telegram counts them: after parsing (tags show nothing, `&amp;` shows one
    character), in UTF-16 code units. Never cuts inside a tag or a character reference;
    a tag open at a cut is closed before it and opened again after it.
    """
    if text and _units(text) <= limit:
        return [text]  # the raw HTML fits, so what it shows fits: nothing to parse
    pieces = []
    for match in _HTML_PIECE.finditer(text):
        raw, closing, name = match.group(), match.group(1), match.group(2)
        if name:
            pieces.append(_Piece(raw, "", f"{closing}{name.lower()}"))
        else:
            pieces.append(_Piece(raw, html.unescape(raw)))
    return _split(pieces, limit)


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _split(pieces: list[_Piece], limit: int) -> list[str]:
    """Cut `pieces` into parts of at most `limit` UTF-16 code units shown."""
    safe = _safe_cuts(pieces)
    chunks: list[str] = []
    open_tags: list[_Piece] = []
    start = 0
    while True:
        end, resume = _next_cut(pieces, safe, start, limit)
        body = pieces[start:end]
        prefix = "".join(tag.raw for tag in open_tags)
        open_tags = _still_open(open_tags, body)
        suffix = "".join(f"</{tag.tag}>" for tag in reversed(open_tags))
        chunks.append(prefix + "".join(piece.raw for piece in body) + suffix)
        if not "".join(piece.shown for piece in pieces[resume:]).strip():
            return chunks  # nothing left to show (an empty message would be refused)
        start = resume


def _next_cut(pieces: list[_Piece], safe: list[bool], start: int, limit: int) -> tuple[int, int]:
    """Where the part from `start` ends, and where the next part begins.

    The latest line break in the part's second half, else its latest space (either is
    dropped, with the spaces after it), else the latest cut between two clusters.
    """
    used = 0
    line_break = space = cluster = None
    for index in range(start, len(pieces)):
        piece = pieces[index]
        if index > start and used * 2 > limit and safe[index]:
            cluster = index
            if piece.shown == "\n":
                line_break = index
            elif piece.shown.isspace():
                space = index
        used += _units(piece.shown)
        if used > limit:
            for gap in (line_break, space):
                if gap is not None:
                    return gap, _after_spaces(pieces, gap)
            cut = cluster if cluster is not None else max(index, start + 1)
            return cut, cut
    return len(pieces), len(pieces)


def _after_spaces(pieces: list[_Piece], index: int) -> int:
    while index < len(pieces) and pieces[index].shown.isspace():
        index += 1
    return index


def _safe_cuts(pieces: list[_Piece]) -> list[bool]:
    """For each piece, whether a part may end just before it (not inside a cluster)."""
    safe: list[bool] = []
    previous = _Piece("", "")
    flags = 0  # regional indicators in a row: a flag is a pair of them
    for piece in pieces:
        first = piece.shown[:1]
        flag = bool(first) and ord(first) in _REGIONAL_INDICATORS
        joined = (
            _continues(first)
            or previous.shown.endswith(_JOINER)
            or (bool(previous.tag) and not previous.tag.startswith("/"))
            or (flag and flags % 2 == 1)
        )
        safe.append(not joined)
        flags = flags + 1 if flag else 0
        previous = piece
    return safe


def _continues(char: str) -> bool:
    """`char` belongs to the cluster before it (a mark, a joiner, a skin tone, an emoji tag)."""
    if not char:
        return False
    code = ord(char)
    return (
        unicodedata.category(char).startswith("M")
        or char == _JOINER
        or code in _SKIN_TONES
        or code in _EMOJI_TAGS
    )


def _still_open(open_tags: list[_Piece], body: list[_Piece]) -> list[_Piece]:
    """The tags open after `body`, given those open before it."""
    still = list(open_tags)
    for piece in body:
        if piece.tag.startswith("/"):
            name = piece.tag[1:]
            for index in range(len(still) - 1, -1, -1):
                if still[index].tag == name:
                    del still[index]
                    break
        elif piece.tag:
            still.append(piece)
    return still


def secret_matches(request: web.Request, header: str, secret: str | None) -> bool:
    """The webhook request carries `secret` in `header` (compared in constant time)."""
    given = request.headers.get(header, "")
    return bool(secret) and hmac.compare_digest(given.encode(), (secret or "").encode())
