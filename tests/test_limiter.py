"""The dispatcher's pacing and retry rules, on a clock the test controls."""

from __future__ import annotations

import asyncio
import itertools

from scheduler.dispatcher import MAX_BACKOFF_SECONDS, DeliveryFailed
from scheduler.limiter import Limits, RateLimiter

UNBOUNDED_BOT = Limits(per_second=1e9)
"""No limit for the bot as a whole, to see the per-chat pacing alone."""


class Clock:
    """Time that passes only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


async def send_times(
    limiter: RateLimiter, clock: Clock, chats: list[tuple[str, bool]]
) -> list[float]:
    times = []
    for chat, group in chats:
        await limiter.acquire(chat, group)
        times.append(round(clock.now, 6))
    return times


async def test_global_slots_are_evenly_spaced() -> None:
    clock = Clock()
    limiter = RateLimiter(Limits(per_second=4, headroom=1.0), clock=clock, sleep=clock.sleep)
    times = await send_times(limiter, clock, [(str(n), False) for n in range(6)])
    assert times == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]
    spaced = RateLimiter(Limits(per_second=4), clock=clock, sleep=clock.sleep)
    clock.now = 10.0
    times = await send_times(spaced, clock, [(str(n), False) for n in range(3)])
    assert times == [10.0, round(10 + 1 / 3.92, 6), round(10 + 2 / 3.92, 6)]


async def test_one_message_a_second_per_chat_and_twenty_a_minute_per_group() -> None:
    clock = Clock()
    limiter = RateLimiter(Limits(per_second=100, chat_burst=1), clock=clock, sleep=clock.sleep)
    assert await send_times(limiter, clock, [("7", False)] * 3) == [0.0, 1.0, 2.0]
    clock.now = 10.0
    assert await send_times(limiter, clock, [("-100", True)] * 3) == [10.0, 13.0, 16.0]


async def test_a_private_chat_gets_a_short_burst_then_one_a_second() -> None:
    clock = Clock()
    limiter = RateLimiter(UNBOUNDED_BOT, clock=clock, sleep=clock.sleep)
    assert await send_times(limiter, clock, [("7", False)] * 5) == [0.0, 0.0, 0.0, 1.0, 2.0]
    clock.now = 10.0
    assert await send_times(limiter, clock, [("7", False)] * 4) == [10.0, 10.0, 10.0, 11.0]
    clock.now = 20.0
    assert await send_times(limiter, clock, [("-100", True)] * 2) == [20.0, 23.0]


async def test_a_429_holds_the_chat_for_its_retry_after() -> None:
    clock = Clock()
    limiter = RateLimiter(UNBOUNDED_BOT, clock=clock, sleep=clock.sleep)
    limiter.hold("7", 5.0)
    assert await send_times(limiter, clock, [("7", False), ("8", False)]) == [5.0, 5.0]


async def test_two_senders_to_one_chat_share_its_budget() -> None:
    """A reply and an outbox message to the same chat at once: still one per interval after
    the burst, whoever asks (real time, a short interval)."""
    limiter = RateLimiter(Limits(per_second=1e9, chat_interval=0.05, chat_burst=1))
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def send() -> None:
        await limiter.acquire("7")
        times.append(loop.time())

    await asyncio.gather(send(), send(), send())
    gaps = [later - earlier for earlier, later in itertools.pairwise(sorted(times))]
    assert min(gaps) >= 0.045, gaps


async def test_a_waiting_chat_does_not_hold_up_the_others() -> None:
    limiter = RateLimiter(Limits(per_second=100, chat_interval=0.3, chat_burst=1))
    await limiter.acquire("busy")
    order: list[str] = []

    async def send(chat: str) -> None:
        await limiter.acquire(chat)
        order.append(chat)

    await asyncio.gather(send("busy"), send("a"), send("b"))
    assert order == ["a", "b", "busy"], "others go while 'busy' waits for its next slot"


def test_transient_failures_back_off_and_429_is_honoured_as_given() -> None:
    transient = DeliveryFailed("502 Bad Gateway", retry_in=5.0, backoff=True)
    assert [transient.delay(n) for n in range(4)] == [5.0, 10.0, 20.0, 40.0]
    assert transient.delay(20) == MAX_BACKOFF_SECONDS
    too_many = DeliveryFailed("429", retry_in=7.0)
    assert [too_many.delay(n) for n in range(3)] == [7.0, 7.0, 7.0]
    assert DeliveryFailed("403", retry_in=None, recipient_gone=True).delay(3) is None
