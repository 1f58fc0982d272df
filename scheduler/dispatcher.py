"""Delivering the outbox: claim due messages in batches, send them paced, record outcomes.

One dispatcher runs in the deployment, in the process holding the leader lock. Each
channel has its own budget of messages in flight (a slow Zalo queue never starves
Telegram), each chat its own queue (its messages go out in order; one slow chat delays
no other), and every send is paced by the channel's `RateLimiter`. Outcomes are written
in batches. A 429 reschedules only that chat's messages; a recipient who blocked the bot
loses their subscription; a database error is logged and the loop goes on.

Killed at any moment, the rows it had claimed stay `sending` under its run token; the
next leader takes them back as it starts (its lock proves this run gone), and any
dispatcher releases them after a lease (`models.outbox.release`). Only those whose send
had gone out but whose outcome was not yet written can reach a recipient twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog
from sqlmodel.ext.asyncio.session import AsyncSession

from models.outbox import Claimed, Outcome, broadcast_payloads, claim_due, record, release
from models.subscriptions import end_subscriptions_of
from scheduler.limiter import RateLimiter

log = structlog.get_logger(__name__)

UNEXPECTED_RETRY = 60.0
"""Seconds before retrying a message whose send failed in an unforeseen way (logged)."""
STOP_GRACE_SECONDS = 2.0
MAX_BUDGET = 2000
FAILURE_PAUSE_SECONDS = 2.0
"""After an unexpected error (the database went away), the loop waits this long and goes on."""
MAX_BACKOFF_SECONDS = 600.0


class DeliveryFailed(Exception):
    """A send did not go through. `retry_in` seconds to try again, or None to give up.

    `backoff`: a transient failure (5xx, timeout): each further attempt waits twice as long.
    A 429 is not one: its `retry_after` is the platform's word, honoured as given.
    `recipient_gone`: the person blocked the bot or no longer exists; stop writing to them.
    `parts_sent`: calls of a several-call message that went through (a retry skips them).
    `maybe_sent`: the request left and no answer came (a timeout): the platform may have
    sent the message, and then its retry is a duplicate.
    """

    def __init__(
        self,
        reason: str,
        retry_in: float | None,
        *,
        backoff: bool = False,
        recipient_gone: bool = False,
        parts_sent: int = 0,
        maybe_sent: bool = False,
    ) -> None:
        super().__init__(reason)
        self.retry_in = retry_in
        self.backoff = backoff
        self.recipient_gone = recipient_gone
        self.maybe_sent = maybe_sent
        self.parts_sent = parts_sent
        """Platform calls of the message that went through before this failure."""

    def delay(self, attempts: int) -> float | None:
        """Seconds before the next attempt, after `attempts` earlier ones."""
        if self.retry_in is None or not self.backoff:
            return self.retry_in
        return min(self.retry_in * 2**attempts, MAX_BACKOFF_SECONDS)


class Sender(Protocol):
    async def __call__(self, channel: str, chat_id: str, payload: dict[str, Any]) -> str:
        """Send one message; return the platform's message id or raise DeliveryFailed."""
        ...


ApiCalls = Callable[[str, dict[str, Any]], int]
"""How many platform API calls sending this payload on this channel takes (album + text…)."""


@dataclass(slots=True)
class DispatchStats:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    released: int = 0


class Dispatcher:
    def __init__(
        self,
        sessions: Callable[[], AsyncSession],
        send: Sender,
        limiters: Mapping[str, RateLimiter],
        *,
        is_group: Callable[[str, str], bool],
        api_calls: ApiCalls = lambda channel, payload: 1,
        lease_seconds: float = 60.0,
        concurrency: int = 64,
        flush_every: float = 0.1,
        poll_every: float = 0.5,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.token = uuid.uuid4().hex
        """This run's mark on the rows it claims."""
        self._sessions = sessions
        self._send = send
        self._limiters = limiters
        self._is_group = is_group
        self._api_calls = api_calls
        self._lease = timedelta(seconds=lease_seconds)
        self._poll_every = poll_every
        self._flush_every = flush_every
        self._now = now
        self._budget = {
            name: min(max(20, int(lim.limits.per_second)), MAX_BUDGET)
            for name, lim in limiters.items()
        }
        """Messages of each channel in flight at most: about a second's worth."""
        self._in_flight = dict.fromkeys(limiters, 0)
        self._slots = asyncio.Semaphore(concurrency)
        self._queues: dict[tuple[str, str], deque[Claimed]] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._sending: set[asyncio.Task[Any]] = set()
        """Workers whose request is on its way to the platform right now."""
        self._room = asyncio.Event()
        self._flush_now = asyncio.Event()
        self._stopped = asyncio.Event()
        self._outcomes: list[Outcome] = []
        self._gone: list[tuple[str, str]] = []
        self._payloads: dict[int, dict[str, Any]] = {}
        self._payload_lock = asyncio.Lock()
        self._stopping = False
        self._next_release = 0.0
        self.stats = DispatchStats()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; then finish the sends under way and write outcomes.

        The run begins by taking back every row left `sending` (`_release_stale`): it runs in
        the leader, whose lock proves the run that claimed them gone.
        """
        flusher = asyncio.create_task(self._flush_loop())
        try:
            while not stop.is_set():
                try:
                    await self._release_stale()
                    if not await self.claim_batch():
                        self._room.clear()
                        await _wait(self._room, self._poll_every)
                except Exception:
                    log.exception("outbox.dispatch_failed")
                    await _wait(stop, FAILURE_PAUSE_SECONDS)
        finally:
            self._stopping = True
            await self._finish_workers()
            self._stopped.set()
            await flusher
            await self._flush()
            with contextlib.suppress(Exception):
                async with self._sessions() as session, session.begin():
                    await release(session, token=self.token)

    async def send_now(self, channel: str, chat_id: str, payload: dict[str, Any]) -> str:
        """Send outside the outbox (the live progress message), within the channel's limits."""
        limiter = self._limiters.get(channel)
        if limiter is not None:
            await limiter.acquire(chat_id, self._is_group(channel, chat_id))
        return await self._send(channel, chat_id, payload)

    async def _finish_workers(self) -> None:
        """Let sends under way finish (a few seconds at most); stop those still waiting."""
        if not self._workers:
            return
        for worker in self._workers - self._sending:
            worker.cancel()  # only waiting for its slot: its message stays claimed, released
        _, waiting = await asyncio.wait(set(self._workers), timeout=STOP_GRACE_SECONDS)
        for worker in waiting:
            worker.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)

    async def drain(self) -> int:
        """Send everything due now and wait for it (for the CLI and tests); returns sends."""
        before = self.stats.sent
        while await self.claim_batch():
            await asyncio.gather(*list(self._workers), return_exceptions=True)
            await self._flush()
        return self.stats.sent - before

    async def claim_batch(self) -> int:
        """Claim, for every channel with room for half its budget, enough to fill it."""
        claimed = 0
        for channel, budget in self._budget.items():
            room = budget - self._in_flight[channel]
            if room < budget // 2:
                continue
            async with self._sessions() as session, session.begin():
                messages = await claim_due(session, channel, self.token, self._now(), room)
            for message in messages:
                self._enqueue(message)
            claimed += len(messages)
        return claimed

    async def _release_stale(self) -> None:
        """Take back what other runs claimed: all of it at first, since the run leads (its
        lock proves the runs that claimed them gone); later, only claims past the lease (a
        deposed leader's: it finishes its own sends within that time)."""
        if time.monotonic() < self._next_release:
            return
        first = self._next_release == 0.0
        async with self._sessions() as session, session.begin():
            released = await release(session, before=None if first else self._now() - self._lease)
        self._next_release = time.monotonic() + self._lease.total_seconds() / 4
        if released:
            self.stats.released += released
            log.warning("outbox.released_in_flight", count=released)

    def _enqueue(self, message: Claimed) -> None:
        key = (message.channel, message.chat_id)
        self._in_flight[message.channel] += 1
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(message)
            return
        self._queues[key] = deque([message])
        worker = asyncio.create_task(self._work(key))
        self._workers.add(worker)
        worker.add_done_callback(self._workers.discard)

    async def _work(self, key: tuple[str, str]) -> None:
        """Send one chat's messages in order; on stop, leave the rest to be released."""
        queue = self._queues[key]
        limiter = self._limiters[key[0]]
        try:
            while queue and not self._stopping:
                message = queue[0]
                outcome = await self._deliver(message, limiter)
                queue.popleft()
                self._done(outcome)
                if not outcome.sent and outcome.retry_in is not None:
                    self._defer(queue, outcome)
        finally:
            if not queue:
                del self._queues[key]

    def _defer(self, queue: deque[Claimed], failed: Outcome) -> None:
        """The chat's later messages wait for the one to retry: their order is kept."""
        while queue:
            later = queue.popleft()
            reason = f"after {failed.message.id}, which will be retried"
            self._done(Outcome(later, error=reason, retry_in=failed.retry_in, counts=False))

    async def _deliver(self, message: Claimed, limiter: RateLimiter) -> Outcome:
        try:
            payload = message.payload
            if message.broadcast_id is not None:
                payload = await self._broadcast_payload(message.broadcast_id, message.locale)
            if message.parts_sent:
                payload = {**payload, "skip_parts": message.parts_sent}
            cost = self._api_calls(message.channel, payload)
            group = self._is_group(message.channel, message.chat_id)
            await limiter.acquire(message.chat_id, group, cost)
            async with self._slots:
                worker = asyncio.current_task()
                assert worker is not None
                self._sending.add(worker)
                try:
                    platform_id = await self._send(message.channel, message.chat_id, payload)
                finally:
                    self._sending.discard(worker)
            limiter.sent(message.chat_id, group, cost)
        except DeliveryFailed as failure:
            if failure.recipient_gone:
                self._gone.append((message.channel, message.chat_id))
            retry_in = failure.delay(message.attempts)
            if retry_in is not None and not failure.backoff:
                limiter.hold(message.chat_id, retry_in)
            log.info(
                "outbox.failed",
                outbox_id=message.id,
                channel=message.channel,
                chat_id=message.chat_id,
                reason=str(failure),
                retry_in=retry_in,
            )
            rate_limited = retry_in is not None and not failure.backoff
            return Outcome(
                message,
                error=str(failure),
                retry_in=retry_in,
                counts=not rate_limited,
                parts_sent=max(failure.parts_sent, message.parts_sent),
            )
        except Exception as error:
            log.exception("outbox.failed_unexpectedly", outbox_id=message.id)
            return Outcome(message, error=repr(error), retry_in=UNEXPECTED_RETRY)
        return Outcome(message, platform_message_id=platform_id)

    def _done(self, outcome: Outcome) -> None:
        """Count the outcome; write it with the next batch, at once if someone waits on it.

        A message outside a broadcast (a moderation card, a notice) is written at once:
        a moderator may act on a card within a second, and its edit needs the card's id.
        """
        self._outcomes.append(outcome)
        if outcome.message.broadcast_id is None:
            self._flush_now.set()
        channel = outcome.message.channel
        self._in_flight[channel] -= 1
        if outcome.sent:
            self.stats.sent += 1
        elif outcome.retry_in is None:
            self.stats.failed += 1
        else:
            self.stats.retried += 1
        if self._in_flight[channel] < self._budget[channel] // 2:
            self._room.set()

    async def _broadcast_payload(self, broadcast_id: int, locale: str) -> dict[str, Any]:
        payloads = self._payloads.get(broadcast_id)
        if payloads is None:
            async with self._payload_lock:
                payloads = self._payloads.get(broadcast_id)
                if payloads is None:
                    async with self._sessions() as session:
                        payloads = await broadcast_payloads(session, broadcast_id)
                    if len(self._payloads) > 64:
                        self._payloads.clear()
                    self._payloads[broadcast_id] = payloads
        payload = payloads.get(locale) or next(iter(payloads.values()), None)
        if payload is None:
            raise DeliveryFailed(f"broadcast {broadcast_id} has no rendered message", None)
        return dict(payload)

    async def _flush_loop(self) -> None:
        while not self._stopped.is_set():
            await _wait(self._flush_now, self._flush_every)
            self._flush_now.clear()
            await self._flush()

    async def _flush(self) -> None:
        outcomes, self._outcomes = self._outcomes, []
        gone, self._gone = self._gone, []
        if not outcomes and not gone:
            return
        try:
            async with self._sessions() as session, session.begin():
                await record(session, self.token, outcomes, self._now())
                for channel, chat_id in gone:
                    await end_subscriptions_of(session, channel, chat_id, "blocked", self._now())
        except Exception:
            log.exception("outbox.record_failed", outcomes=len(outcomes))
            self._outcomes[:0] = outcomes
            self._gone[:0] = gone


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Wait until `event` is set, or `seconds` pass."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
