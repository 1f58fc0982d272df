"""Pacing sends within a platform's limits, without letting one chat hold up the others.

Telegram allows about 30 messages a second per bot (1,000 with paid broadcasts), one a
second per chat (after a short burst) and twenty a minute per group.
python-telegram-bot's `AIORateLimiter` is per process, has no per-chat limit and pauses
everything on one 429, so replies and the dispatcher pace with this instead: a global
schedule of evenly spaced slots, a per-chat token bucket on top, and a last check
against the sends of the past second. That check matters because slots are kept in
time, sends not always: when the event loop pauses (a batch claimed, outcomes written),
the sends whose slots passed leave together, and without it a strict one-second window
at the platform would count too many.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    per_second: float
    """The platform's limit for this bot (TELEGRAM_BROADCAST_RATE)."""
    chat_interval: float = 1.0
    """Seconds between two messages to one private chat, once its burst is spent."""
    chat_burst: int = 3
    """Messages one private chat may receive at once (a reply and the next question)."""
    group_interval: float = 3.0
    """Seconds between two messages to one group (twenty a minute; no burst)."""
    headroom: float = 0.98
    """Share of `per_second` actually used: requests reach the platform with some jitter,
    and at exactly the limit a strict one-second window sometimes counts one too many
    (each 429 costs that message a second). See docs/benchmarks.md."""


class RateLimiter:
    """Reserve a send slot with `await acquire(chat_id, group)`; one limiter per channel."""

    PRUNE_ABOVE = 50_000

    def __init__(
        self,
        limits: Limits,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limits = limits
        self._spacing = 1.0 / (limits.per_second * limits.headroom)
        self._clock = clock
        self._sleep = sleep
        self._next_slot = 0.0
        self._chat_ready: dict[str, float] = {}
        self._window = max(1, int(limits.per_second * limits.headroom))
        self._recent: deque[float] = deque()
        """When the sends of the past second left, oldest first."""

    async def acquire(self, chat_id: str, group: bool = False, cost: int = 1) -> None:
        """Wait for the chat's turn, then for the next global slot; both are reserved.

        `cost` is the number of platform calls the message takes (an album, then its text).
        Each chat is paced as a token bucket (a GCRA): `chat_ready` is when its bucket
        would be full again; a message may go once that is at most a burst ahead of now.
        """
        interval = self.limits.group_interval if group else self.limits.chat_interval
        burst = 1 if group else max(1, self.limits.chat_burst)
        now = self._clock()
        full_at = max(self._chat_ready.get(chat_id, now), now)
        turn = max(now, full_at - (burst - 1) * interval)
        self._chat_ready[chat_id] = max(full_at, turn) + interval * cost  # reserved before waiting
        if turn > now:
            await self._sleep(turn - now)
        now = self._clock()
        slot = max(now, self._next_slot)
        self._next_slot = slot + self._spacing * cost
        self._chat_ready[chat_id] = max(self._chat_ready[chat_id], slot + interval * cost)
        if len(self._chat_ready) > self.PRUNE_ABOVE:
            self._prune(now)
        if slot > now:
            await self._sleep(slot - now)
        await self._within_window(cost)

    def sent(self, chat_id: str, group: bool = False, cost: int = 1) -> None:
        """A send to the chat has just been answered: count it from now, not from its slot.

        The platform counts a message when it arrives, which is after its slot (network,
        the event loop); counting from the answer keeps our bucket behind the platform's.
        """
        interval = self.limits.group_interval if group else self.limits.chat_interval
        answered = self._clock() + interval * cost
        self._chat_ready[chat_id] = max(self._chat_ready.get(chat_id, 0.0), answered)

    def hold(self, chat_id: str, seconds: float, group: bool = False) -> None:
        """The platform asked for a pause in this chat (a 429): nothing goes there before."""
        burst = 1 if group else max(1, self.limits.chat_burst)
        interval = self.limits.group_interval if group else self.limits.chat_interval
        paused_until = self._clock() + seconds + (burst - 1) * interval
        self._chat_ready[chat_id] = max(self._chat_ready.get(chat_id, 0.0), paused_until)

    async def _within_window(self, cost: int) -> None:
        """Never more than the window's worth of sends in any second, however late they left."""
        while True:
            now = self._clock()
            while self._recent and now - self._recent[0] >= 1.0:
                self._recent.popleft()
            if len(self._recent) + cost <= self._window or not self._recent:
                break
            await self._sleep(1.0 - (now - self._recent[0]))
        self._recent.extend([now] * cost)

    def _prune(self, now: float) -> None:
        self._chat_ready = {chat: t for chat, t in self._chat_ready.items() if t > now}
