"""Replies: in order, within each chat's limits, retried after a 429, never dropped.

Unit tests drive `ReplySender` with a scripted send; end-to-end tests run the real
python-telegram-bot Application against the fake Bot API enforcing per-chat limits with
a small burst (scaled by `time_scale`, the bot's pacing scaled alike unless a test says
otherwise), and measure what a person sees.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlmodel import select

from bot.app import Runtime
from bot.channels.base import ReplySender
from bot.settings import Settings
from handlers.flood import QUIET_SECONDS
from handlers.messages import Outbound
from models.tables import OutboxMessage, OutboxStatus
from scheduler.dispatcher import DeliveryFailed
from scheduler.limiter import Limits, RateLimiter
from tests.fakes.telegram_api import FakeTelegram, FakeUser
from tests.images import jpeg
from tests.test_telegram_e2e import STORY, bot_settings, started

SCALE = 0.1
"""Telegram's per-chat limits ten times faster: one message per 0.1 s after a burst of 3."""


class ScriptedSend:
    """A platform that answers each text with the failures scripted for it, then accepts."""

    def __init__(self, failures: dict[str, list[DeliveryFailed]] | None = None) -> None:
        self.failures = failures or {}
        self.sent: list[str] = []

    async def __call__(self, outbound: Outbound) -> str:
        pending = self.failures.get(outbound.text)
        if pending:
            raise pending.pop(0)
        self.sent.append(outbound.text)
        return str(len(self.sent))


class Kept:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, float]] = []

    async def __call__(self, chat_id: str, replies: list[Outbound], due_in: float) -> None:
        self.rows += [(chat_id, reply.text, due_in) for reply in replies]


def texts(*names: str, chat_id: str = "7") -> list[Outbound]:
    return [Outbound(chat_id=chat_id, text=name) for name in names]


async def settle(sender: ReplySender) -> None:
    for _ in range(200):
        await asyncio.sleep(0.01)
        if not sender._workers and not sender._coalescing:
            return


async def test_a_429_is_waited_out_and_the_order_kept() -> None:
    send = ScriptedSend({"b": [DeliveryFailed("429", retry_in=0.05)]})
    sender = ReplySender(send, limiter=RateLimiter(Limits(per_second=1000, chat_interval=0.01)))
    await sender.deliver(texts("a", "b", "c"))
    await settle(sender)
    assert send.sent == ["a", "b", "c"]


async def test_what_cannot_go_out_in_time_goes_to_the_outbox_in_order() -> None:
    send = ScriptedSend({"b": [DeliveryFailed("429", retry_in=60.0)]})
    kept = Kept()
    sender = ReplySender(send, keep=kept, patience=1.0)
    await sender.deliver(texts("a", "b", "c"))
    await settle(sender)
    await sender.deliver(texts("d"))
    await sender.deliver(texts("x", chat_id="8"))
    await settle(sender)
    assert send.sent == ["a", "x"], "chat 8 is not held up by chat 7"
    assert [(chat, text) for chat, text, _ in kept.rows] == [("7", "b"), ("7", "c"), ("7", "d")]
    assert kept.rows[0][2] == 60.0 and 59.0 < kept.rows[2][2] <= 60.0


async def test_transient_errors_are_retried_with_growing_waits() -> None:
    failures = [DeliveryFailed("502", retry_in=0.02, backoff=True) for _ in range(3)]
    send = ScriptedSend({"a": failures})
    sender = ReplySender(send)
    await sender.deliver(texts("a", "b"))
    await settle(sender)
    assert send.sent == ["a", "b"]


async def test_a_refused_reply_does_not_hold_up_the_next() -> None:
    send = ScriptedSend({"a": [DeliveryFailed("400 can't parse entities", retry_in=None)]})
    sender = ReplySender(send)
    await sender.deliver(texts("a", "b"))
    await settle(sender)
    assert send.sent == ["b"]


async def test_replies_still_queued_at_shutdown_are_kept() -> None:
    send = ScriptedSend()
    kept = Kept()
    slow = RateLimiter(Limits(per_second=1000, chat_interval=30.0, chat_burst=1))
    sender = ReplySender(send, limiter=slow, keep=kept)
    await sender.deliver(texts("a", "b", "c"))
    await sender.flush()
    assert send.sent == ["a"]
    assert [text for _, text, _ in kept.rows] == ["b", "c"]


# ---- end to end -----------------------------------------------------------------------


@pytest.fixture
async def strict() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(time_scale=SCALE) as server:
        yield server


@asynccontextmanager
async def bot_on(
    settings: Settings, fake: FakeTelegram, **overrides: object
) -> AsyncIterator[Runtime]:
    runtime = await started(bot_settings(settings, fake, **overrides))
    try:
        yield runtime
    finally:
        await runtime.stop()


async def menu_texts_in_order(user: FakeUser, count: int) -> list[str]:
    return [message.plain_text or "" for message in await user.wait_for_messages(count)]


async def test_a_burst_of_replies_arrives_whole_and_in_order(
    settings: Settings, strict: FakeTelegram
) -> None:
    """Twenty /help at once: twenty replies, paced within the chat's limit, none lost."""
    async with bot_on(settings, strict):
        user = strict.user(user_id=1201)
        for _ in range(20):
            await user.send_text("/help")
        replies = await menu_texts_in_order(user, 20)
        assert all("/report" in text for text in replies)
        assert all(call.status == 200 for call in strict.calls_to("sendMessage"))


async def test_a_bot_that_ignores_the_chat_limit_gets_429s_and_still_loses_nothing(
    settings: Settings, strict: FakeTelegram
) -> None:
    """Pacing off (as if Telegram tightened its limits): every 429 is waited out, in order."""
    async with bot_on(settings, strict, telegram_chat_interval=0.0):
        user = strict.user(user_id=1202)
        for number in range(8):
            await user.send_text(f"/status GS-2026-{number:06d}")
        replies = await menu_texts_in_order(user, 8)
        assert strict.chat_limited > 0, "the fake refused some sends with 429"
        assert [f"GS-2026-{n:06d}" in text for n, text in enumerate(replies)] == [True] * 8


async def test_a_flood_gets_one_notice_then_normal_answers(
    settings: Settings, strict: FakeTelegram
) -> None:
    async with bot_on(settings, strict):
        user = strict.user(user_id=1203)
        for _ in range(40):
            await user.send_text("xin chao")
        await strict.wait_until(
            lambda: any("kịp đọc" in (m.plain_text or "") for m in user.inbox), what="the notice"
        )
        await asyncio.sleep(1.0)  # the last of the forty have been handled (or dropped)
        notices = [m for m in user.inbox if "kịp đọc" in (m.plain_text or "")]
        assert len(notices) == 1 and len(user.inbox) == 31
        await asyncio.sleep(QUIET_SECONDS)
        before = len(user.inbox)
        await user.send_text("/help")
        await strict.wait_until(lambda: len(user.inbox) > before, what="an answer after the pause")
        assert "/report" in (user.inbox[-1].plain_text or "")


async def brisk_report(user: FakeUser, pace: float, latencies: dict[str, list[float]]) -> int:
    """One report at a brisk pace: every step answered before the next; returns the steps.

    `latencies` collects, per kind of step, the seconds from the person's message to the
    bot's answer ("album": its one acknowledgement waits for the album to end, by design).
    """

    async def step(kind: str, action: object, replies: int = 1) -> None:
        started_at = time.monotonic()
        await action  # type: ignore[misc]
        await user.wait_for_messages(replies)
        latencies.setdefault(kind, []).append(time.monotonic() - started_at)
        await asyncio.sleep(pace)

    await step("command", user.send_text("/report"))
    await step("button", user.press("r:kind:individual"))
    await step("text", user.send_text("Hoàng Thị Lan"))
    await step("button", user.press("Nông dân"))
    await step("text", user.send_text("huu lung"))
    await step("button", user.press("Xã Hữu Lũng"))
    await step("text", user.send_text(STORY))
    await step("album", user.send_album([jpeg(color="red"), jpeg(color="green")]))
    await step("button", user.press("r:photos:done"))
    await step("button", user.press("r:identity:anonymous"))
    await step("button", user.press("r:summary:confirm"))
    await step("command", user.send_text("/myreports"))
    await step("command", user.send_text("/movements"))
    await step("command", user.send_text("/help"))
    return 15  # the album is two updates


async def test_a_brisk_hour_of_reporting_loses_no_reply(
    settings: Settings, strict: FakeTelegram
) -> None:
    """Four reports and their look-ups: sixty interactions at one a (scaled) second."""
    async with bot_on(settings, strict, reports_per_day=10) as runtime:
        user = strict.user(user_id=1204)
        latencies: dict[str, list[float]] = {}
        interactions = 0
        for _ in range(4):
            interactions += await brisk_report(user, SCALE, latencies)
        assert interactions == 60
        assert not any("kịp đọc" in (m.plain_text or "") for m in user.inbox)
        assert sum("GS-2026-" in (m.plain_text or "") for m in user.inbox) >= 4
        async with runtime.sessions() as session:
            kept = (await session.exec(select(OutboxMessage))).all()
        assert [row for row in kept if row.status != OutboxStatus.SENT] == []
        answers = [
            value for kind, values in latencies.items() if kind != "album" for value in values
        ]
        print(
            f"\n{interactions} interactions, p50 {statistics.median(answers) * 1000:.0f} ms, "
            f"max {max(answers) * 1000:.0f} ms, 429s {strict.chat_limited}"
        )


async def test_replies_queued_at_shutdown_are_delivered_after_the_restart(
    settings: Settings, strict: FakeTelegram
) -> None:
    """Stopped while a slow chat still has replies to send: the outbox delivers them."""
    config = bot_settings(settings, strict, telegram_chat_interval=30.0)
    runtime = await started(config)
    user = strict.user(user_id=1205)
    try:
        for number in range(5):
            await user.send_text(f"/status GS-2026-{number:06d}")
        await user.wait_for_messages(3)  # the burst; the rest wait thirty seconds each
    finally:
        await runtime.stop()
    async with runtime.sessions() as session:
        kept = (await session.exec(select(OutboxMessage))).all()
    assert [row.purpose for row in kept] == ["reply", "reply"]
    second = await started(bot_settings(config, strict, telegram_chat_interval=SCALE))
    try:
        later = await menu_texts_in_order(user, 2)
        assert "GS-2026-000003" in later[0] and "GS-2026-000004" in later[1]
    finally:
        await second.stop()
