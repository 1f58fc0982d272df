"""Per-person message-rate limit, kept in memory: it protects one process from one flooder.

A restart forgets the counts, which is harmless for a limit measured in a minute.
"""

from __future__ import annotations

from collections import deque
from enum import Enum

WINDOW_SECONDS = 60.0
_PRUNE_EVERY = 1024


class Verdict(Enum):
    ALLOW = "allow"
    WARN = "warn"
    """Over the limit for the first time in this window: tell the person once."""
    DROP = "drop"
    """Still over the limit: stay silent rather than flood back."""


class FloodGuard:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}
        self._warned: set[str] = set()
        self._calls = 0

    def check(self, key: str, now: float) -> Verdict:
        """Count a message from `key` at `now` (in seconds) against the limit."""
        self._calls += 1
        if self._calls % _PRUNE_EVERY == 0:
            self._prune(now)
        stamps = self._seen.setdefault(key, deque())
        while stamps and now - stamps[0] >= WINDOW_SECONDS:
            stamps.popleft()
        if len(stamps) < self.per_minute:
            stamps.append(now)
            self._warned.discard(key)
            return Verdict.ALLOW
        if key in self._warned:
            return Verdict.DROP
        self._warned.add(key)
        return Verdict.WARN

    def _prune(self, now: float) -> None:
        idle = [key for key, s in self._seen.items() if not s or now - s[-1] >= WINDOW_SECONDS]
        for key in idle:
            del self._seen[key]
            self._warned.discard(key)
