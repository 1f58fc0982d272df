"""Per-person message-rate limit, kept in memory: it protects one process from one flooder.

What costs the service is counted: typed messages and uploads. Button presses are not
(a moderator works through fifty cards in a few minutes), and a photo album counts once,
however many photos it holds. Each person has a bucket of `per_minute` messages that
refills at `per_minute` a minute, so a burst is fine and a steady human pace never runs
dry. A restart forgets the buckets, which is harmless for a limit measured in a minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from handlers.messages import Inbound, InboundKind

_PRUNE_EVERY = 1024
QUIET_SECONDS = 10.0
"""After the notice, messages are not read until the bucket has refilled this long: one
notice for a whole flood, and the notice can say how long to wait."""


class Verdict(Enum):
    ALLOW = "allow"
    WARN = "warn"
    """Over the limit for the first time since the last allowed message: tell the person."""
    DROP = "drop"
    """Still over the limit: stay silent rather than flood back."""


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    warned: bool = False


class FloodGuard:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, _Bucket] = {}
        self._albums: dict[str, str | None] = {}
        """Each person's media group of their last upload: its other photos are free."""
        self._calls = 0

    def check_inbound(self, inbound: Inbound, now: float) -> Verdict:
        """Count `inbound` against its sender's limit, if it is something that counts."""
        key = f"{inbound.channel}:{inbound.user_id}"
        if inbound.kind is InboundKind.BUTTON:
            return self._verdict(key, now, counts=False)
        album = inbound.attachment.group_id if inbound.attachment is not None else None
        later_photo = album is not None and self._albums.get(key) == album
        self._albums[key] = album
        return self._verdict(key, now, counts=not later_photo)

    def check(self, key: str, now: float) -> Verdict:
        """Count one event of `key` (a person, an address) at `now`, in seconds."""
        return self._verdict(key, now, counts=True)

    def _verdict(self, key: str, now: float, *, counts: bool) -> Verdict:
        self._calls += 1
        if self._calls % _PRUNE_EVERY == 0:
            self._prune(now)
        bucket = self._buckets.setdefault(key, _Bucket(float(self.per_minute), now))
        refill_per_second = self.per_minute / 60.0
        bucket.tokens = min(
            float(self.per_minute), bucket.tokens + (now - bucket.updated) * refill_per_second
        )
        bucket.updated = now
        if not counts:
            return Verdict.ALLOW
        if bucket.warned and bucket.tokens < QUIET_SECONDS * refill_per_second:
            return Verdict.DROP
        bucket.warned = False
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return Verdict.ALLOW
        bucket.warned = True
        return Verdict.WARN

    def _prune(self, now: float) -> None:
        full_after = 60.0
        idle = [key for key, b in self._buckets.items() if now - b.updated >= full_after]
        for key in idle:
            del self._buckets[key]
            self._albums.pop(key, None)
