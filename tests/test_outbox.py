"""The outbox's rules of ownership and order, and a dispatcher that outlives errors."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.router import SessionFactory
from models.outbox import Outcome, claim_due, enqueue, record, release
from models.receipts import first_delivery, forget_receipts
from models.tables import Broadcast, BroadcastKind, InboundReceipt, OutboxMessage, OutboxStatus
from scheduler.dispatcher import DeliveryFailed, Dispatcher
from scheduler.limiter import Limits, RateLimiter

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


async def rows(sessions: SessionFactory) -> list[OutboxMessage]:
    async with sessions() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id)  # type: ignore[arg-type]
        return list((await session.exec(query)).all())


async def test_cards_and_notices_go_before_a_broadcast(sessions: SessionFactory) -> None:
    async with sessions() as session, session.begin():
        broadcast = Broadcast(key="big", kind=BroadcastKind.ANNOUNCEMENT, announcements=True)
        session.add(broadcast)
        await session.flush()
        for chat in range(30):
            session.add(
                OutboxMessage(
                    broadcast_id=broadcast.id, channel="telegram", chat_id=str(chat), payload={}
                )
            )
        enqueue(session, "telegram", "-100", {"text": "card"}, purpose="card")
    async with sessions() as session, session.begin():
        first = await claim_due(session, "telegram", "run-a", datetime.now(UTC), 5)
    assert first[0].chat_id == "-100", "the card is claimed before the broadcast's rows"
    assert len(first) == 5


async def test_only_the_run_that_claimed_a_message_records_or_releases_it(
    sessions: SessionFactory,
) -> None:
    async with sessions() as session, session.begin():
        enqueue(session, "telegram", "7", {"text": "hello"})
    async with sessions() as session, session.begin():
        [claimed] = await claim_due(session, "telegram", "run-a", datetime.now(UTC), 10)
    async with sessions() as session, session.begin():
        assert await release(session, token="run-b") == 0
        await record(session, "run-b", [Outcome(claimed, platform_message_id="1")], NOW)
    [row] = await rows(sessions)
    assert row.status == OutboxStatus.SENDING and row.claimed_by == "run-a"

    async with sessions() as session, session.begin():
        assert await release(session, before=datetime.now(UTC) - timedelta(minutes=1)) == 0
        assert await release(session, before=datetime.now(UTC) + timedelta(seconds=1)) == 1
    [row] = await rows(sessions)
    assert row.status == OutboxStatus.PENDING and row.claimed_by is None


async def test_waiting_for_a_429_uses_up_no_attempt(sessions: SessionFactory) -> None:
    async with sessions() as session, session.begin():
        enqueue(session, "telegram", "7", {"text": "hello"})
    for _ in range(12):
        async with sessions() as session, session.begin():
            [claimed] = await claim_due(
                session, "telegram", "run", datetime.now(UTC) + timedelta(hours=1), 1
            )
            limited = Outcome(claimed, error="429", retry_in=1.0, counts=False)
            await record(session, "run", [limited], NOW)
    [row] = await rows(sessions)
    assert row.status == OutboxStatus.PENDING and row.attempts == 0


class FlakySessions:
    """A session factory whose first `failures` sessions cannot reach the database."""

    def __init__(self, sessions: SessionFactory, failures: int) -> None:
        self._sessions = sessions
        self.failures = failures

    def __call__(self) -> AsyncSession:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("the database went away")
        return self._sessions()


async def test_the_dispatcher_outlives_a_database_outage(sessions: SessionFactory) -> None:
    async with sessions() as session, session.begin():
        enqueue(session, "telegram", "7", {"text": "after the outage"})
    sent: list[str] = []

    async def send(channel: str, chat_id: str, payload: dict[str, Any]) -> str:
        sent.append(payload["text"])
        return "42"

    flaky = FlakySessions(sessions, failures=2)
    dispatcher = Dispatcher(
        flaky,  # type: ignore[arg-type]
        send,
        {"telegram": RateLimiter(Limits(per_second=100))},
        is_group=lambda channel, chat: False,
        poll_every=0.05,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(dispatcher.run(stop))
    for _ in range(200):
        if (await rows(sessions))[0].status == OutboxStatus.SENT:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await running
    [row] = await rows(sessions)
    assert sent == ["after the outage"] and row.status == OutboxStatus.SENT
    assert row.platform_message_id == "42" and flaky.failures == 0


async def test_a_chat_keeps_its_order_when_one_message_must_wait(sessions: SessionFactory) -> None:
    async with sessions() as session, session.begin():
        for text in ("first", "second", "third"):
            enqueue(session, "telegram", "7", {"text": text})
    attempts: list[str] = []

    async def send(channel: str, chat_id: str, payload: dict[str, Any]) -> str:
        attempts.append(payload["text"])
        if len(attempts) == 1:
            raise DeliveryFailed("429", retry_in=0.2)
        return str(len(attempts))

    dispatcher = Dispatcher(
        sessions,
        send,
        {"telegram": RateLimiter(Limits(per_second=100, chat_interval=0.0))},
        is_group=lambda channel, chat: False,
    )
    await dispatcher.drain()
    await asyncio.sleep(0.25)
    await dispatcher.drain()
    assert attempts == ["first", "first", "second", "third"]
    assert [row.attempts for row in await rows(sessions)] == [1, 1, 1]


async def test_old_inbound_receipts_are_forgotten(sessions: SessionFactory) -> None:
    async with sessions() as session, session.begin():
        assert await first_delivery(session, "zalo", "old", NOW - timedelta(days=8))
        assert await first_delivery(session, "zalo", "new", NOW - timedelta(days=1))
        assert not await first_delivery(session, "zalo", "new", NOW)
    async with sessions() as session, session.begin():
        assert await forget_receipts(session, NOW - timedelta(days=7)) == 1
    async with sessions() as session:
        kept = (await session.exec(select(InboundReceipt.message_id))).all()
    assert kept == ["new"]
