"""Pacing sends within a platform's limits, without letting one chat hold up the others.

Telegram allows about 30 messages a second per bot (1,000 with paid broadcasts), one a
second per chat and twenty a minute per group. python-telegram-bot's `AIORateLimiter`
is per process, has no per-chat limit and pauses everything on one 429, so the
dispatcher paces with this instead: a global schedule of evenly spaced slots (so the
platform never sees a burst above the rate), and a per-chat schedule on top.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    per_second: float
    """The platform's limit for this bot (TELEGRAM_BROADCAST_RATE)."""
    chat_interval: float = 1.0
    """Seconds between two messages to one private chat."""
    group_per_minute: int = 20
    headroom: float = 0.98
    """Share of `per_second` actually used. Sends leave evenly spaced but reach the platform
    with jitter (an event-loop pause releases several at once); paced at exactly the limit,
    a strict one-second window sometimes counts one too many and answers 429, and each 429
    costs that message a second. Measured in bench/broadcast.py: 0.98 removes them."""


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

    async def acquire(self, chat_id: str, group: bool = False, cost: int = 1) -> None:
        """Wait for the chat to be ready, then for the next global slot; both are reserved.

        `cost` is the number of platform calls the message takes (an album, then its text).
        """
        ready = self._chat_ready.get(chat_id, 0.0)
        if ready > self._clock():
            await self._sleep(ready - self._clock())
        now = self._clock()
        slot = max(now, self._next_slot)
        self._next_slot = slot + self._spacing * cost
        interval = 60.0 / self.limits.group_per_minute if group else self.limits.chat_interval
        self._chat_ready[chat_id] = slot + interval * cost
        if len(self._chat_ready) > self.PRUNE_ABOVE:
            self._prune(now)
        if slot > now:
            await self._sleep(slot - now)

    def _prune(self, now: float) -> None:
        self._chat_ready = {chat: t for chat, t in self._chat_ready.items() if t > now}
