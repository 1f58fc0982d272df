"""Broadcasts end to end: the real Application, the fake Bot API server, both databases.

Time is controlled where the schedule decides (the publication slot is passed in as
`now`); the dispatcher runs for real, paced by its limiter, against the fake server.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from bot.app import Runtime
from bot.settings import Settings
from handlers.broadcasting import latest_slot, publication_tick, report_progress, start_due
from models.broadcasts import create_broadcast
from models.tables import (
    Broadcast,
    BroadcastKind,
    BroadcastStatus,
    OutboxMessage,
    OutboxStatus,
    Person,
    Report,
    ReportStatus,
    Subscription,
)
from tests.fakes.telegram_api import TEST_TIME_SCALE, ApiCall, FakeTelegram
from tests.images import jpeg
from tests.test_moderation_e2e import (
    GROUP,
    card_in,
    data_of,
    make_moderator,
    start_bot,
    stop_bot,
    submit_report,
)

CHANNEL = -1001234
SEND_METHODS = ("sendMessage", "sendPhoto", "sendMediaGroup")


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(time_scale=TEST_TIME_SCALE) as server:
        yield server


@pytest.fixture
async def bot(settings: Settings, fake: FakeTelegram) -> AsyncIterator[Runtime]:
    runtime = await start_bot(
        settings, fake, telegram_channel_id=str(CHANNEL), telegram_broadcast_rate=30.0
    )
    yield runtime
    await stop_bot(runtime)


def delivered(
    fake: FakeTelegram, chat_id: int, method: str = "sendMessage", containing: str = ""
) -> list[ApiCall]:
    """Successful sends of `method` to `chat_id` (whose text contains `containing`)."""
    return [
        call
        for call in fake.calls_to(method)
        if call.status == 200
        and str(call.params.get("chat_id")) == str(chat_id)
        and containing in str(call.params.get("text", ""))
    ]


async def approve(fake: FakeTelegram, bot: Runtime, code: str) -> None:
    card = await card_in(fake, GROUP, code)
    moderator = fake.user(user_id=501, first_name="Bình", chat_id=GROUP)
    await moderator.press(data_of(card, "m:ap:"))

    await eventually(lambda: report_status(bot, code), ReportStatus.APPROVED)


async def approved_at(bot: Runtime, code: str, when: datetime) -> None:
    async with bot.sessions() as session, session.begin():
        await session.exec(update(Report).where(col(Report.code) == code).values(decided_at=when))


async def report_status(bot: Runtime, code: str) -> ReportStatus:
    async with bot.sessions() as session:
        report = (await session.exec(select(Report).where(Report.code == code))).one()
    return ReportStatus(report.status)


async def eventually(probe: Callable[[], Awaitable[object]], expected: object) -> None:
    """Poll `probe()` until it returns `expected` (10 seconds at most)."""
    for _ in range(100):
        if await probe() == expected:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never became {expected!r}")


async def test_subscriber_gets_the_story_once_at_the_slot_without_the_reporter(
    bot: Runtime, fake: FakeTelegram
) -> None:
    fake.user(user_id=1, chat_id=CHANNEL, chat_type="channel", chat_title="Gương Sáng")
    subscriber = fake.user(user_id=3001, first_name="Đào")
    await subscriber.send_text("/start subscribe")
    await subscriber.wait_for_messages(2)
    await make_moderator(bot, 501)
    citizen = fake.user(user_id=2001, first_name="Hoa")
    code = await submit_report(citizen, photos=2)
    await approve(fake, bot, code)

    now = datetime.now(UTC)
    assert await publication_tick(bot.services, bot.sessions, now) == 0, "not before the slot"
    # The slot comes: seen from the next slot, the approval happened before it. (The
    # dispatcher runs on the real clock, so the approval moves back rather than the
    # clock forward.)
    slot = latest_slot(bot.services, now)
    await approved_at(bot, code, slot - timedelta(minutes=1))
    assert await publication_tick(bot.services, bot.sessions, now) == 1
    assert await publication_tick(bot.services, bot.sessions, now + timedelta(minutes=5)) == 0
    assert await start_due(bot.services, bot.sessions, now) == 1

    stories = lambda chat: delivered(fake, chat, containing="GS-")  # noqa: E731
    await fake.wait_until(lambda: len(stories(3001)) == 1, what="the story")
    await fake.wait_until(lambda: len(stories(CHANNEL)) == 1, what="the channel's copy")
    [album] = delivered(fake, 3001, "sendMediaGroup")
    [story] = stories(3001)
    text = str(story.params["text"])
    assert "Lường Văn Thắng" in text and "Xã Đình Lập" in text and code in text
    assert "Nông Thị Hoa" not in text and "0912" not in text and "84912345678" not in text
    assert [item["type"] for item in album.params["media"]] == ["photo", "photo"]
    assert len(delivered(fake, CHANNEL, "sendMediaGroup")) == 1

    # The progress message in the moderators' group ends with the final report.
    async def status() -> BroadcastStatus:
        await report_progress(bot.services, bot.sessions, bot.send_payload, datetime.now(UTC))
        async with bot.sessions() as session:
            return BroadcastStatus((await session.exec(select(Broadcast))).one().status)

    await eventually(status, BroadcastStatus.DONE)
    await report_progress(bot.services, bot.sessions, bot.send_payload, datetime.now(UTC))
    group_texts = [str(c.params.get("text")) for c in fake.calls_to("editMessageText")]
    group_texts += [str(c.params.get("text")) for c in delivered(fake, GROUP)]
    assert any("✅" in t and "đã xong" in t for t in group_texts)

    # Unsubscribed, the next story does not come.
    await subscriber.send_text("/unsubscribe")
    await subscriber.wait_for_messages(1)
    code2 = await submit_report(fake.user(user_id=2002), name="Hoàng Thị Lan", photos=0)
    await approve(fake, bot, code2)
    await approved_at(bot, code2, slot - timedelta(minutes=1))
    assert await publication_tick(bot.services, bot.sessions, datetime.now(UTC)) == 1
    assert await start_due(bot.services, bot.sessions, datetime.now(UTC)) == 1
    await fake.wait_until(lambda: len(stories(CHANNEL)) == 2, what="the second story")
    assert len(stories(3001)) == 1, "nothing more after /unsubscribe"


async def add_subscribers(bot: Runtime, fake: FakeTelegram, user_ids: range) -> None:
    async with bot.sessions() as session, session.begin():
        for user_id in user_ids:
            fake.user(user_id=user_id)
            person = Person(channel="telegram", external_id=str(user_id), locale="vi")
            session.add(person)
            await session.flush()
            assert person.id is not None
            session.add(Subscription(person_id=person.id, channel="telegram", chat_id=str(user_id)))


async def announce(bot: Runtime, text: str, photos: list[str] | None = None) -> int:
    async with bot.sessions() as session, session.begin():
        broadcast = await create_broadcast(
            session,
            Broadcast(
                key=f"test:{text}",
                kind=BroadcastKind.ANNOUNCEMENT,
                announcements=True,
                text=text,
                title=text,
                photos=photos or [],
            ),
        )
        assert broadcast is not None
        await session.flush()
        assert broadcast.id is not None
        return broadcast.id


async def test_a_storm_of_429s_and_blocked_users_lose_nothing_and_repeat_nothing(
    bot: Runtime, fake: FakeTelegram
) -> None:
    users = range(4000, 4060)
    await add_subscribers(bot, fake, users)
    blocked = {4003, 4031}
    for user_id in blocked:
        fake.block(user_id)
    fake.fail_next("sendMessage", status=429, retry_after=1, times=25)
    fake.fail_next("sendMessage", status=502, description="Bad Gateway", times=3)
    broadcast_id = await announce(bot, "Thông báo thử nghiệm về phong trào thi đua")
    assert await start_due(bot.services, bot.sessions, datetime.now(UTC)) == 1

    def received() -> Counter[int]:
        return Counter(
            int(call.params["chat_id"])
            for call in fake.calls_to("sendMessage")
            if call.status == 200 and int(call.params["chat_id"]) in users
        )

    expected = set(users) - blocked
    await fake.wait_until(lambda: set(received()) == expected, timeout=30, what="every user")
    rate_limited = [c for c in fake.calls_to("sendMessage") if c.status == 429]
    assert len(rate_limited) == 25
    assert max(received().values()) == 1, "nobody receives it twice"
    async with bot.sessions() as session:
        query = select(Subscription.chat_id).where(Subscription.active == False)  # noqa: E712
        inactive = set((await session.exec(query)).all())
        failed = (
            await session.exec(
                select(OutboxMessage.chat_id).where(
                    OutboxMessage.broadcast_id == broadcast_id,
                    OutboxMessage.status == OutboxStatus.FAILED,
                )
            )
        ).all()
    assert inactive == {str(u) for u in blocked}
    assert set(failed) == {str(u) for u in blocked}


async def test_the_dispatcher_keeps_to_the_configured_rate(
    settings: Settings, fake: FakeTelegram
) -> None:
    """With the fake enforcing 20/s and the bot set to 20/s, nothing is refused."""
    runtime = await start_bot(settings, fake, telegram_broadcast_rate=20.0)
    try:
        await add_subscribers(runtime, fake, range(5000, 5060))
        fake.limit_rate(20)
        await announce(runtime, "Nhịp gửi đều")
        assert await start_due(runtime.services, runtime.sessions, datetime.now(UTC)) == 1
        sent = lambda: [c for c in fake.calls_to("sendMessage") if c.status == 200]  # noqa: E731
        await fake.wait_until(lambda: len(sent()) >= 60, timeout=30, what="60 messages")
        assert fake.rate_limited <= 2, f"{fake.rate_limited} sends refused at the exact limit"
    finally:
        await stop_bot(runtime)


async def test_a_retry_after_the_album_sends_only_the_text(
    bot: Runtime, fake: FakeTelegram
) -> None:
    """The album went through, its text got a 429: the retry sends the text alone."""
    await add_subscribers(bot, fake, range(6000, 6001))
    images = [await bot.services.media.ingest(jpeg(color=c)) for c in ("red", "blue")]
    for image in images:
        await bot.services.media.keep(image)
    photos = [image.sha256 for image in images]
    fake.fail_next("sendMessage", status=429, retry_after=1)
    await announce(bot, "Ảnh ngày hội thi đua ở bản Khuổi Ky", photos)
    assert await start_due(bot.services, bot.sessions, datetime.now(UTC)) == 1
    await fake.wait_until(lambda: len(delivered(fake, 6000)) == 1, timeout=20, what="the text")
    assert len(delivered(fake, 6000, "sendMediaGroup")) == 1, "the album went out once"
    to_subscriber = [c for c in fake.calls_to("sendMessage") if c.params["chat_id"] == 6000]
    assert [c.status for c in to_subscriber] == [429, 200]
