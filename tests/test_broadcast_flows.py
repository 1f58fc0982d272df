"""Subscriptions, movements, announcements and the publication schedule, as flows.

Time is controlled: every tick is called with the `now` the test chooses.
"""

from __future__ import annotations

import argparse
import re
import unicodedata
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from bot import operations
from handlers.broadcasting import (
    digest_tick,
    latest_slot,
    progress_text,
    publication_tick,
    schedule_movement,
    start_due,
)
from handlers.cards import render_card
from handlers.context import Services
from handlers.publications import MOVEMENT_EVENTS
from handlers.router import SessionFactory
from models.broadcasts import materialize
from models.movements import MovementSpec, save_movement
from models.people import grant_role, revoke_role
from models.tables import (
    Broadcast,
    BroadcastKind,
    BroadcastStatus,
    Movement,
    OutboxMessage,
    OutboxStatus,
    Person,
    Report,
    ReportStatus,
    Role,
    Subscription,
)
from tests.fakes.chat import FakeChat
from tests.images import jpeg

STORY = "Chị đã đưa hai cụ già qua suối lũ về nơi an toàn trong đêm mưa lớn ngày 12/10."
MOVEMENT_YAML = """\
movements:
  - name: Phong trào "Dân vận khéo" năm 2026
    short_name: Dân vận khéo 2026
    slogan: Dân biết, dân bàn, dân làm, dân kiểm tra
    description: Biểu dương cách làm hay trong công tác dân vận ở thôn, bản.
    criteria:
      - Có cách làm mới, hiệu quả, được nhân dân đồng tình
      - Có kết quả cụ thể, kiểm chứng được
    starts_on: 2026-11-01
    ends_on: 2027-10-31
    target_groups: [village_officer, farmer]
    reminders: [2027-02-01, 2027-05-01]
    interim_review_on: 2027-04-15
    final_review_on: 2027-10-15
"""
MOVEMENT_NAME = 'Phong trào "Dân vận khéo" năm 2026'


@pytest.fixture
def chat(services: Services, sessions: SessionFactory) -> FakeChat:
    return FakeChat(services, sessions)


async def grant(sessions: SessionFactory, user_id: str, role: Role) -> None:
    async with sessions() as session, session.begin():
        await grant_role(session, "test", user_id, role, granted_by="test")


async def subscription(sessions: SessionFactory, user_id: str) -> Subscription | None:
    async with sessions() as session:
        query = (
            select(Subscription)
            .join(Person, col(Person.id) == col(Subscription.person_id))
            .where(Person.external_id == user_id)
        )
        return (await session.exec(query)).first()


async def import_movements(services: Services, sessions: SessionFactory, tmp_path: Path) -> None:
    path = tmp_path / "movements.yaml"
    path.write_text(MOVEMENT_YAML, encoding="utf-8")
    args = argparse.Namespace(command="movement", file=path)
    async with sessions() as session, session.begin():
        now = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
        assert await operations.import_movements(session, services, args, now) == 0


async def file_report(chat: FakeChat, *, movement_button: str | None = None) -> None:
    await chat.press("r:kind:individual")
    await chat.send("Hà Thị Mai")
    await chat.press("r:group:farmer")
    await chat.send("dinh lap")
    await chat.press("r:commune:6613")
    await chat.send(STORY)
    await chat.photo(jpeg(color="green"))
    await chat.press("r:photos:done")
    await chat.press("r:identity:anonymous")
    if movement_button:
        await chat.press("r:summary:edit")
        await chat.press("r:edit:movement")
        await chat.press(movement_button)
    await chat.press("r:summary:confirm")


# ---- subscriptions -----------------------------------------------------------------------


async def test_subscribe_by_deep_link_then_settings(
    chat: FakeChat, sessions: SessionFactory
) -> None:
    await chat.send("/start subscribe")
    assert "đăng ký" in chat.said().lower()
    assert "✅ Gương người tốt được biểu dương" in chat.labels()
    await chat.press("s:stories")
    assert "⬜ Gương người tốt được biểu dương" in chat.labels()
    await chat.press("s:announcements")
    assert "ít nhất" in chat.said(), "the last topic cannot be turned off"
    found = await subscription(sessions, chat.user_id)
    assert found is not None and found.active and not found.stories and found.announcements

    await chat.press("s:commune")
    await chat.send(unicodedata.normalize("NFD", "đình lập"))
    await chat.press("s:c:6613")
    assert "Xã Đình Lập" in chat.said()
    found = await subscription(sessions, chat.user_id)
    assert found is not None and found.commune_code == 6613

    await chat.send("/unsubscribe")
    found = await subscription(sessions, chat.user_id)
    assert found is not None and not found.active and found.ended_reason == "unsubscribed"
    await chat.press("s:on")
    found = await subscription(sessions, chat.user_id)
    assert found is not None and found.active and found.commune_code == 6613


async def test_unsubscribe_when_not_subscribed_and_stale_buttons(chat: FakeChat) -> None:
    await chat.send("/unsubscribe")
    assert "chưa đăng ký" in chat.said()
    await chat.press_payload("s:stories")
    assert "chưa đăng ký" in chat.said()
    await chat.send("/subscribe")
    await chat.press_payload("s:c:99999999")
    assert "không còn dùng được" in chat.said()


async def test_materialize_respects_topics_and_communes(
    services: Services, sessions: SessionFactory
) -> None:
    now = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    wishes = {  # user: (stories, announcements, commune)
        "1": (True, True, None),
        "2": (True, False, 6613),
        "3": (False, True, 6613),
        "4": (True, True, 6184),
        "5": (True, True, None),
    }
    async with sessions() as session, session.begin():
        for user, (stories, announcements, commune) in wishes.items():
            person = Person(channel="test", external_id=user, locale="vi")
            session.add(person)
            await session.flush()
            assert person.id is not None
            session.add(
                Subscription(
                    person_id=person.id,
                    channel="test",
                    chat_id=user,
                    stories=stories,
                    announcements=announcements,
                    commune_code=commune,
                    active=user != "5",
                )
            )
        story = Broadcast(
            key="story:x", kind=BroadcastKind.STORY, stories=True, commune_codes=[6613]
        )
        local = Broadcast(
            key="a:1", kind=BroadcastKind.ANNOUNCEMENT, announcements=True, commune_codes=[6613]
        )
        everyone = Broadcast(key="a:2", kind=BroadcastKind.ANNOUNCEMENT, announcements=True)
        session.add_all([story, local, everyone])
        await session.flush()
        counts = [await materialize(session, b, [], now) for b in (story, local, everyone)]
        again = await materialize(session, everyone, [("telegram", "-100777", "vi")], now)
    assert counts == [2, 1, 3]  # story: 1 (province) + 2 (its commune); local: 3; all: 1, 3, 4
    assert again == 1, "a second materialisation adds nobody twice, only the new chat"

    async with sessions() as session:
        rows = (await session.exec(select(OutboxMessage.broadcast_id, OutboxMessage.chat_id))).all()
    by_broadcast: dict[int | None, set[str]] = {}
    for broadcast_id, chat_id in rows:
        by_broadcast.setdefault(broadcast_id, set()).add(chat_id)
    assert by_broadcast[story.id] == {"1", "2"}
    assert by_broadcast[local.id] == {"3"}
    assert by_broadcast[everyone.id] == {"1", "3", "4", "-100777"}


# ---- the publication schedule --------------------------------------------------------------


async def approve_all(sessions: SessionFactory, at: datetime) -> None:
    async with sessions() as session, session.begin():
        await session.exec(
            update(Report).values(status=ReportStatus.APPROVED, decided_at=at)  # type: ignore[call-overload]
        )


async def test_slots_publish_once_and_coalesce_after_downtime(
    chat: FakeChat, services: Services, sessions: SessionFactory
) -> None:
    await chat.send("/report")
    await file_report(chat)
    # Approved at 10:00 local (03:00 UTC): the next slot is 19:00 local (12:00 UTC).
    approved = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    await approve_all(sessions, approved)
    assert latest_slot(services, approved) == datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
    assert await publication_tick(services, sessions, approved + timedelta(hours=1)) == 0
    # The bot was down over two slots; back a day later, it publishes once.
    back = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
    assert await publication_tick(services, sessions, back) == 1
    assert await publication_tick(services, sessions, back + timedelta(minutes=1)) == 0
    async with sessions() as session:
        report = (await session.exec(select(Report))).one()
        [broadcast] = (await session.exec(select(Broadcast))).all()
    assert report.status == ReportStatus.PUBLISHED and report.published_at == back
    assert broadcast.key == f"story:{report.id}" and broadcast.status == BroadcastStatus.SCHEDULED


async def test_story_payload_never_names_the_reporter(
    chat: FakeChat, services: Services, sessions: SessionFactory
) -> None:
    await chat.send("/report")
    await chat.press("r:kind:individual")
    await chat.send("Hà Thị Mai <b>& Co</b>")
    await chat.press("r:group:farmer")
    await chat.send("dinh lap")
    await chat.press("r:commune:6613")
    await chat.send(STORY)
    await chat.press("r:photos:skip")
    await chat.press("r:identity:named")
    await chat.press("r:consent:yes")
    await chat.send("Nguyễn Văn Báo")
    await chat.send("0912 345 678")
    await chat.press("r:summary:confirm")
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    await approve_all(sessions, now - timedelta(hours=2))
    assert await publication_tick(services, sessions, now) == 1
    assert await start_due(services, sessions, now) == 1
    async with sessions() as session:
        broadcast = (await session.exec(select(Broadcast))).one()
    for payload in broadcast.payloads.values():
        assert "Hà Thị Mai &lt;b&gt;&amp; Co&lt;/b&gt;" in payload["text"]
        for secret in ("Nguyễn Văn Báo", "0912", "345 678", "ẩn danh", "anonymous"):
            assert secret not in payload["text"]
    assert broadcast.status == BroadcastStatus.RUNNING


async def test_weekly_digest_lists_the_week(
    chat: FakeChat, services: Services, sessions: SessionFactory
) -> None:
    await chat.send("/report")
    await file_report(chat)
    published = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # Tuesday
    await approve_all(sessions, published - timedelta(hours=1))
    assert await publication_tick(services, sessions, published) == 1
    sunday_evening = datetime(2026, 11, 29, 12, 31, tzinfo=UTC)  # 19:31 local
    assert not await digest_tick(services, sessions, sunday_evening - timedelta(hours=1))
    assert await digest_tick(services, sessions, sunday_evening)
    assert not await digest_tick(services, sessions, sunday_evening + timedelta(minutes=5))
    assert await start_due(services, sessions, sunday_evening) == 2  # the story, the digest
    async with sessions() as session:
        digest = (
            await session.exec(select(Broadcast).where(Broadcast.kind == BroadcastKind.DIGEST))
        ).one()
    assert "Hà Thị Mai" in digest.payloads["vi"]["text"]
    assert "Hà Thị Mai" in digest.payloads["en"]["text"]


# ---- movements ---------------------------------------------------------------------------


async def test_imported_movement_deep_link_report_and_card(
    chat: FakeChat, services: Services, sessions: SessionFactory, tmp_path: Path
) -> None:
    await import_movements(services, sessions, tmp_path)
    async with sessions() as session:
        movement = (await session.exec(select(Movement))).one()
        keys = sorted((await session.exec(select(Broadcast.key))).all())
    assert movement.slug == "dan-van-kheo-2026"
    # The launch (1 November) is long past: not announced late. The rest is ahead.
    assert [k.split(":", 2)[2] for k in keys] == [
        "final:2027-10-15",
        "interim:2027-04-15",
        "reminder:2027-02-01",
        "reminder:2027-05-01",
    ]

    await chat.send("/movements")
    assert MOVEMENT_NAME in chat.texts()[-1]
    await chat.send("/start movement_dan-van-kheo-2026")
    assert MOVEMENT_NAME in chat.texts()[-2]
    await file_report(chat)
    async with sessions() as session:
        report = (await session.exec(select(Report))).one()
        card = await render_card(
            session, services, report, services.translator("vi"), report.created_at
        )
    assert report.movement_id == movement.id
    assert "Có kết quả cụ thể, kiểm chứng được" in card.text

    await grant(sessions, "900", Role.MODERATOR)
    moderator = FakeChat(services, sessions, user_id="900")
    await moderator.send("/queue dan van kheo 2026")
    assert report.code in moderator.said()
    await moderator.send("/queue nong dan")
    assert report.code in moderator.said()


async def test_attach_a_report_to_a_running_movement_from_the_summary(
    chat: FakeChat, services: Services, sessions: SessionFactory, tmp_path: Path
) -> None:
    await import_movements(services, sessions, tmp_path)
    await chat.send("/report")
    await file_report(chat, movement_button=f"🚩 {MOVEMENT_NAME}")
    async with sessions() as session:
        report = (await session.exec(select(Report))).one()
    assert report.movement_id is not None


async def test_unknown_or_closed_movement_links(
    chat: FakeChat, services: Services, sessions: SessionFactory
) -> None:
    await chat.send("/start movement_khong-co")
    assert "không biết phong trào" in chat.texts()[-2]
    async with sessions() as session, session.begin():
        spec = MovementSpec(
            name="Phong trào đã kết thúc",
            short_name="Da ket thuc",
            criteria=["Một tiêu chí"],
            starts_on=date(2020, 1, 1),
            ends_on=date(2020, 12, 31),
        )
        await save_movement(session, spec, datetime.now(UTC))
    await chat.send("/start movement_da-ket-thuc")
    assert "không mở" in chat.said()


async def test_admin_creates_a_movement_in_chat(
    chat: FakeChat, services: Services, sessions: SessionFactory
) -> None:
    await chat.send("/newmovement")
    assert "quản trị" in chat.said(), "only administrators"
    await chat.press_payload("ma:save")
    assert "quản trị" in chat.said(), "a forged button carries no authority"

    await grant(sessions, chat.user_id, Role.ADMIN)
    await chat.send("/newmovement")
    await chat.send("Phong trào “Nông dân sản xuất, kinh doanh giỏi”")
    await chat.send("Nông dân giỏi 2027")
    await chat.press("ma:skip")  # slogan
    await chat.send("Tôn vinh nông dân làm giàu chính đáng và giúp nhau thoát nghèo.")
    await chat.send("- Thu nhập cao từ sản xuất\n- Giúp đỡ hộ nghèo trong thôn")
    await chat.press("ma:cdone")
    await chat.send("01/01/2027")
    await chat.send("31/12/2026")
    assert "không được trước" in chat.said()
    await chat.send("31.12.2027")
    await chat.press("ma:g:farmer")
    await chat.press("ma:gdone")
    await chat.send("30 tháng 6")
    assert "25/12/2026" in chat.said(), "a clear example of a date"
    await chat.send("30/06/2027")
    await chat.press("ma:skip")  # final review
    await chat.send("01/03/2027, 2027-09-01")
    assert "Nông dân giỏi 2027" in chat.said()
    await chat.press("ma:edit")
    await chat.press("ma:f:slogan")
    await chat.send("Nông dân Việt Nam xuất sắc")
    assert "xuất sắc" in chat.said()
    await chat.press("ma:save")
    assert "/start movement_nong-dan-gioi-2027" in chat.said()
    async with sessions() as session:
        movement = (await session.exec(select(Movement))).one()
        keys = sorted((await session.exec(select(Broadcast.key))).all())
    assert movement.criteria == ["Thu nhập cao từ sản xuất", "Giúp đỡ hộ nghèo trong thôn"]
    assert movement.target_groups == ["farmer"] and movement.slogan.endswith("xuất sắc")
    assert [k.split(":")[2] for k in keys] == ["interim", "launch", "reminder", "reminder"]

    await chat.send("/editmovement nong-dan-gioi-2027")
    await chat.press("ma:edit")
    await chat.press("ma:f:reminders")
    await chat.send("01/04/2027")
    await chat.press("ma:save")
    async with sessions() as session:
        keys = sorted((await session.exec(select(Broadcast.key))).all())
    assert [k.split(":")[2] for k in keys] == ["interim", "launch", "reminder"]


# ---- announcements -----------------------------------------------------------------------


async def test_admin_announces_previews_schedules_and_cancels(
    chat: FakeChat, services: Services, sessions: SessionFactory, tmp_path: Path
) -> None:
    await import_movements(services, sessions, tmp_path)
    await grant(sessions, chat.user_id, Role.ADMIN)
    await chat.send("/announce")
    await chat.send("ngắn")
    assert "10" in chat.said()
    text = "Mời bà con tham gia <phong trào> & gửi gương tốt về Hội đồng trước 31/12."
    await chat.send(text)
    await chat.photo(jpeg(color="orange"))
    await chat.press(f"🚩 {MOVEMENT_NAME}")
    await chat.press("an:a:announcements")
    await chat.send("dinh lap")
    await chat.press("an:c:6613")
    await chat.press("an:cdone")
    preview = chat.last[1]
    assert "&lt;phong trào&gt; &amp;" in preview.text and len(preview.photos) == 1
    await chat.press("an:later")
    await chat.send("25/13/2026 08:00")
    assert "19:30" in chat.said()
    await chat.send("20:15")
    assert "#" in chat.said()
    async with sessions() as session:
        broadcast = (
            await session.exec(
                select(Broadcast).where(Broadcast.kind == BroadcastKind.ANNOUNCEMENT)
            )
        ).one()
    assert broadcast.text == text and broadcast.commune_codes == [6613]
    assert broadcast.announcements and not broadcast.stories and broadcast.movement_id
    local = broadcast.scheduled_at.astimezone(services.config.timezone)
    assert (local.hour, local.minute) == (20, 15)

    citizen = FakeChat(services, sessions, user_id="555")
    await citizen.press_payload(f"bc:x:{broadcast.id}")
    assert "quản trị" in citizen.said()
    await chat.send("/broadcasts")
    await chat.press(f"bc:x:{broadcast.id}")
    await chat.press_payload(f"bc:x:{broadcast.id}")
    assert "đã bắt đầu" in chat.said()
    async with sessions() as session:
        cancelled = await session.get(Broadcast, broadcast.id)
    assert cancelled is not None and cancelled.status == BroadcastStatus.CANCELLED


async def test_schedule_movement_replaces_only_what_is_not_sent(
    services: Services, sessions: SessionFactory
) -> None:
    now = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    spec = MovementSpec(
        name="Thi đua yêu nước",
        short_name="Yeu nuoc",
        criteria=["Một tiêu chí rõ ràng"],
        starts_on=date(2026, 11, 25),
        ends_on=date(2027, 6, 30),
        final_review_on=date(2027, 6, 20),
    )
    async with sessions() as session, session.begin():
        movement, _ = await save_movement(session, spec, now)
        assert await schedule_movement(session, services, movement, now) == 2
    assert await start_due(services, sessions, now + timedelta(hours=2)) == 1  # the launch
    async with sessions() as session, session.begin():
        movement = (await session.exec(select(Movement))).one()
        movement.final_review_on = date(2027, 6, 25)
        assert await schedule_movement(session, services, movement, now) == 1
    async with sessions() as session:
        rows = (await session.exec(select(Broadcast.key, Broadcast.status))).all()
    assert sorted(status for _, status in rows) == ["running", "scheduled"]
    assert any(key.endswith("final:2027-06-25") for key, _ in rows)


async def test_a_revoked_admin_cannot_finish_by_typing(
    chat: FakeChat, services: Services, sessions: SessionFactory
) -> None:
    await grant(sessions, chat.user_id, Role.ADMIN)
    await chat.send("/announce")
    await chat.send("Thông báo quan trọng gửi toàn tỉnh về phong trào thi đua.")
    await chat.press("an:nophoto")
    await chat.press("an:a:all")
    await chat.press("an:cdone")
    await chat.press("an:later")
    async with sessions() as session, session.begin():
        await revoke_role(session, "test", chat.user_id, Role.ADMIN)
    await chat.send("23:59")
    assert "quản trị" in chat.said()
    async with sessions() as session:
        assert (await session.exec(select(Broadcast))).all() == []


@pytest.mark.parametrize("typed", ["99999999999999999999/1/1", "31/02/2027", "0/0/0", "1/1/1999"])
async def test_impossible_dates_get_a_clear_message(
    chat: FakeChat, sessions: SessionFactory, typed: str
) -> None:
    await grant(sessions, chat.user_id, Role.ADMIN)
    await chat.send("/newmovement")
    await chat.send("Phong trào thử nghiệm ngày tháng")
    await chat.send("Thu ngay")
    await chat.press("ma:skip")
    await chat.press("ma:skip")
    await chat.send("Một tiêu chí")
    await chat.press("ma:cdone")
    await chat.send(typed)
    assert "25/12/2026" in chat.said()
    await chat.send("1/1/27")
    assert "Ngày kết thúc" in chat.said(), "two-digit years are this century's"


async def test_a_movement_link_during_an_unfinished_report_keeps_the_movement(
    chat: FakeChat, services: Services, sessions: SessionFactory, tmp_path: Path
) -> None:
    await import_movements(services, sessions, tmp_path)
    await chat.send("/report")
    await chat.press("r:kind:individual")
    await chat.send("Lý Văn Páo")
    await chat.send("/start movement_dan-van-kheo-2026")
    assert MOVEMENT_NAME in chat.texts()[-2]
    await chat.press("r:resume:new")
    await file_report(chat)
    async with sessions() as session:
        report = (await session.exec(select(Report))).one()
    assert report.movement_id is not None and report.nominee_name == "Hà Thị Mai"


async def test_subscribers_of_a_channel_that_no_longer_runs_are_left_out(
    services: Services, sessions: SessionFactory
) -> None:
    """A Zalo subscriber, on a deployment whose Zalo token was removed, is not waited for."""
    async with sessions() as session, session.begin():
        for channel in ("web", "zalo"):
            person = Person(channel=channel, external_id=f"{channel}-1", locale="vi")
            session.add(person)
            await session.flush()
            assert person.id is not None
            session.add(Subscription(person_id=person.id, channel=channel, chat_id=f"{channel}-1"))
        session.add(Broadcast(key="a:1", kind=BroadcastKind.ANNOUNCEMENT, announcements=True))
    assert services.config.channels == frozenset({"web"})
    assert await start_due(services, sessions, datetime.now(UTC)) == 1
    async with sessions() as session:
        chats = (await session.exec(select(OutboxMessage.chat_id))).all()
    assert chats == ["web-1"]


async def test_an_admin_publishes_the_approved_stories_now(
    chat: FakeChat, services: Services, sessions: SessionFactory
) -> None:
    await chat.send("/report")
    await file_report(chat)
    await chat.send("/publish")
    assert "quản trị" in chat.said(), "only administrators"
    await grant(sessions, "900", Role.ADMIN)
    admin = FakeChat(services, sessions, user_id="900")
    await admin.send("/publish")
    assert "Không có" in admin.said(), "nothing approved yet"
    await approve_all(sessions, datetime.now(UTC))
    await admin.send("/publish")
    assert "Đã đăng 1" in admin.said()
    async with sessions() as session:
        report = (await session.exec(select(Report))).one()
        broadcast = (await session.exec(select(Broadcast))).one()
    assert report.status == ReportStatus.PUBLISHED and broadcast.report_id == report.id


# ---- issue #13: names users read, dates that fit, criteria on a phone --------------------

INTERNAL_NAMES = re.compile(
    r"\b(?:{})\b".format(
        "|".join(
            [*BroadcastKind, *BroadcastStatus, *MOVEMENT_EVENTS, "digest"],
        )
    ),
    re.IGNORECASE,
)


async def test_broadcasts_and_their_progress_name_every_kind_in_vietnamese(
    chat: FakeChat, services: Services, sessions: SessionFactory
) -> None:
    await chat.send("/report")
    await file_report(chat)
    published = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    await approve_all(sessions, published - timedelta(hours=1))
    assert await publication_tick(services, sessions, published) == 1
    sunday_evening = datetime(2026, 11, 29, 12, 31, tzinfo=UTC)
    assert await digest_tick(services, sessions, sunday_evening)
    assert await start_due(services, sessions, sunday_evening) == 2  # the story, the digest
    spec = MovementSpec(
        name="Thi đua yêu nước năm 2027",
        short_name="yeu-nuoc",
        criteria=["Một tiêu chí rõ ràng"],
        starts_on=date(2027, 1, 1),
        ends_on=date(2027, 12, 31),
        reminders=[date(2027, 3, 1)],
        interim_review_on=date(2027, 6, 30),
        final_review_on=date(2027, 12, 20),
    )
    async with sessions() as session, session.begin():
        movement, _ = await save_movement(session, spec, sunday_evening)
        assert await schedule_movement(session, services, movement, sunday_evening) == 4
        session.add(
            Broadcast(
                key="announcement:1",
                kind=BroadcastKind.ANNOUNCEMENT,
                announcements=True,
                title="Mời bà con tham gia",
                scheduled_at=sunday_evening + timedelta(days=1),
            )
        )
    await grant(sessions, chat.user_id, Role.ADMIN)
    await chat.send("/broadcasts")
    listing = chat.said()
    assert len(chat.last) == 7
    for label in ("gương người tốt", "bản tin tuần · 29/11/2026", "thông báo", "đang gửi"):
        assert label in listing
    for event in ("phát động", "nhắc nhở", "sơ kết", "tổng kết", "đã lên lịch"):
        assert event in listing
    assert not INTERNAL_NAMES.search(listing), listing

    vietnamese = services.translator("vi")
    counts = dict.fromkeys(OutboxStatus, 3)
    async with sessions() as session:
        broadcasts = (await session.exec(select(Broadcast))).all()
    for broadcast in broadcasts:
        broadcast.started_at = sunday_evening
        for status in (BroadcastStatus.RUNNING, BroadcastStatus.DONE):
            broadcast.status = status
            text = progress_text(
                broadcast, counts, sunday_evening + timedelta(seconds=30), vietnamese
            )
            assert not INTERNAL_NAMES.search(text), text


def everything(chat: FakeChat) -> list[str]:
    """Every text and button label the bot showed in this chat."""
    labels = [b.label for o in chat.transcript for row in o.buttons for b in row]
    return chat.texts() + labels


def outside_links(texts: list[str], slug: str) -> str:
    """What the user read, without the links and commands where the short name belongs."""
    return "\n".join(texts).replace(f"movement_{slug}", "")


async def test_citizens_see_a_movement_by_its_title(
    chat: FakeChat, services: Services, sessions: SessionFactory
) -> None:
    today = datetime.now(UTC).astimezone(services.config.timezone).date()
    title = "Phong trào Dân vận khéo"
    spec = MovementSpec(
        name=title,
        short_name="dan-van-kheo",
        criteria=["Có cách làm mới"],
        starts_on=today,
        ends_on=today + timedelta(days=300),
    )
    async with sessions() as session, session.begin():
        movement, _ = await save_movement(session, spec, datetime.now(UTC))
        assert await schedule_movement(session, services, movement, datetime.now(UTC)) == 1
    await chat.send("/movements")
    assert f"📝 Báo cáo cho {title}" in chat.labels()
    await chat.press("ℹ️ Chi tiết")
    await chat.send("/start movement_dan-van-kheo")
    await file_report(chat, movement_button=f"🚩 {title}")
    shown = outside_links(everything(chat), "dan-van-kheo")
    assert title in shown and "dan-van-kheo" not in shown

    await approve_all(sessions, datetime.now(UTC) - timedelta(days=1))
    await grant(sessions, "900", Role.ADMIN)
    admin = FakeChat(services, sessions, user_id="900")
    await admin.send("/announce")
    await admin.send("Mời bà con gửi gương tốt của phong trào về Hội đồng.")
    await admin.press("an:nophoto")
    assert f"🚩 {title}" in admin.labels()
    await admin.press(f"🚩 {title}")
    await admin.press("an:a:all")
    await admin.press("an:cdone")
    await admin.press("an:now")
    await admin.send("/publish")
    assert await start_due(services, sessions, datetime.now(UTC) + timedelta(days=1)) == 3
    async with sessions() as session:
        broadcasts = (await session.exec(select(Broadcast))).all()
    assert {b.kind for b in broadcasts} == {"movement", "announcement", "story"}
    for broadcast in broadcasts:
        for payload in broadcast.payloads.values():
            assert title in payload["text"]
            assert "dan-van-kheo" not in outside_links([payload["text"]], "dan-van-kheo")
    assert "dan-van-kheo" not in outside_links(everything(admin), "dan-van-kheo")


async def start_movement_in_chat(chat: FakeChat, sessions: SessionFactory) -> None:
    """An administrator's /newmovement up to the start date's question."""
    await grant(sessions, chat.user_id, Role.ADMIN)
    await chat.send("/newmovement")
    await chat.send("Phong trào thi đua kiểm tra ngày")
    await chat.send("Kiem tra ngay")
    await chat.press("ma:skip")  # slogan
    await chat.press("ma:skip")  # description


async def test_movement_dates_are_checked_against_each_other_in_chat(
    chat: FakeChat, services: Services, sessions: SessionFactory
) -> None:
    await start_movement_in_chat(chat, sessions)
    await chat.send("Một tiêu chí; Hai tiêu chí")
    await chat.send("xong")
    await chat.send("01/03/2027")
    await chat.send("31/12/2027")
    await chat.press("ma:gdone")
    answers = [  # (typed, what the bot says is wrong, or None when accepted)
        ("01/01/2027", "ngày sơ kết (01/01/2027) không được trước ngày bắt đầu (01/03/2027)"),
        ("01/01/2028", "ngày sơ kết (01/01/2028) không được sau ngày kết thúc (31/12/2027)"),
        ("30/06/2027", None),
        ("28/02/2027", "ngày tổng kết (28/02/2027) không được trước ngày bắt đầu (01/03/2027)"),
        ("01/06/2027", "ngày tổng kết (01/06/2027) không được trước ngày sơ kết (30/06/2027)"),
        ("15/01/2028", None),
        ("01/02/2027, 01/05/2027", "ngày nhắc nhở (01/02/2027) không được trước ngày bắt đầu"),
        ("01/05/2027, 01/01/2028", "ngày nhắc nhở (01/01/2028) không được sau ngày kết thúc"),
        ("01/05/2027", None),
    ]
    for typed, problem in answers:
        asked = chat.texts()[-1]
        await chat.send(typed)
        if problem is not None:
            assert problem in chat.said()
            assert chat.last[-1].text == asked, "the same question is asked again"
    assert "Xin kiểm tra lại phong trào" in chat.said(), "all dates accepted: the summary"

    await chat.press("ma:edit")
    await chat.press("ma:f:starts_on")
    await chat.send("01/07/2027")
    assert "ngày sơ kết (30/06/2027) không được trước ngày bắt đầu (01/07/2027)" in chat.said()
    await chat.send("01/04/2027")
    await chat.press("ma:save")
    async with sessions() as session:
        movement = (await session.exec(select(Movement))).one()
    assert (movement.starts_on, movement.interim_review_on) == (date(2027, 4, 1), date(2027, 6, 30))


async def test_a_stored_movement_with_wrong_dates_is_corrected_when_saved(
    chat: FakeChat, sessions: SessionFactory
) -> None:
    async with sessions() as session, session.begin():
        session.add(
            Movement(
                slug="cu",
                name="Phong trào cũ",
                short_name="cu",
                criteria=["Một tiêu chí"],
                starts_on=date(2027, 3, 1),
                ends_on=date(2027, 12, 31),
                interim_review_on=date(2027, 1, 1),
            )
        )
    await grant(sessions, chat.user_id, Role.ADMIN)
    await chat.send("/editmovement cu")
    await chat.press("ma:save")
    assert "ngày sơ kết (01/01/2027) không được trước ngày bắt đầu (01/03/2027)" in chat.said()
    await chat.send("01/06/2027")
    await chat.press("ma:save")
    async with sessions() as session:
        movement = (await session.exec(select(Movement))).one()
        keys = (await session.exec(select(Broadcast.key))).all()
    assert movement.interim_review_on == date(2027, 6, 1) and len(keys) == 2


@pytest.mark.parametrize(
    ("field", "wrong"),
    [
        ("ends_on", "ends_on: 2026-10-01"),
        ("interim_review_on", "interim_review_on: 2026-10-01"),
        ("interim_review_on", "interim_review_on: 2027-12-01"),
        ("final_review_on", "final_review_on: 2026-10-31"),
        ("reminders", "reminders: [2027-02-01, 2027-11-30]"),
    ],
)
async def test_import_refuses_a_file_with_dates_that_do_not_fit(
    services: Services,
    sessions: SessionFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    field: str,
    wrong: str,
) -> None:
    second = MOVEMENT_YAML.split("\n", 1)[1].replace("Dân vận khéo 2026", "Sai ngay")
    second = re.sub(rf"^    {field}: .*$", f"    {wrong}", second, flags=re.MULTILINE)
    path = tmp_path / "movements.yaml"
    path.write_text(MOVEMENT_YAML + second, encoding="utf-8")
    args = argparse.Namespace(command="movement", file=path)
    async with sessions() as session, session.begin():
        now = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
        assert await operations.import_movements(session, services, args, now) == 2
    printed = capsys.readouterr().out
    assert "movement 2 (Sai ngay)" in printed and f"{field} (" in printed, printed
    async with sessions() as session:
        assert (await session.exec(select(Movement))).all() == []
        assert (await session.exec(select(Broadcast))).all() == []


async def test_criteria_by_line_semicolon_or_one_message_each(
    chat: FakeChat, sessions: SessionFactory
) -> None:
    await start_movement_in_chat(chat, sessions)
    assert "chấm phẩy" in chat.said() and "xong" in chat.said(), "the prompt says how"
    await chat.press("ma:cdone")
    assert "ít nhất một tiêu chí" in chat.said()
    await chat.send("Giúp đỡ hộ nghèo; Giữ gìn <b>vệ sinh</b> ;")
    assert "2. Giữ gìn &lt;b&gt;vệ sinh&lt;/b&gt;" in chat.said()
    await chat.send("- Tham gia xây dựng đường thôn\n- Đoàn kết")
    await chat.send("Xong.")
    assert "Ngày bắt đầu" in chat.said()
    await chat.send("01/01/2027")
    await chat.send("31/12/2027")
    await chat.press("ma:gdone")
    for _ in range(3):
        await chat.press("ma:skip")
    await chat.press("ma:edit")
    await chat.press("ma:f:criteria")
    await chat.send("Chỉ một tiêu chí")
    await chat.press("Xong")
    await chat.press("ma:save")
    async with sessions() as session:
        movement = (await session.exec(select(Movement))).one()
    assert movement.criteria == ["Chỉ một tiêu chí"]


async def test_cancel_leaves_each_flow_saying_what_it_left(
    chat: FakeChat, sessions: SessionFactory
) -> None:
    await chat.send("/subscribe")
    await chat.press("s:commune")
    await chat.send("/cancel")
    assert "xã, phường của bạn không thay đổi" in chat.said()
    found = await subscription(sessions, chat.user_id)
    assert found is not None and found.active and found.commune_code is None

    await grant(sessions, chat.user_id, Role.ADMIN)
    await chat.send("/newmovement")
    await chat.send("Phong trào thử hủy giữa chừng")
    await chat.send("/cancel")
    assert "Chưa có gì được lưu" in chat.said()
    await chat.send("/announce")
    await chat.send("Thông báo sẽ bị hủy trước khi gửi đi cho mọi người.")
    await chat.send("/cancel")
    assert "Chưa có gì được gửi đi" in chat.said()
    async with sessions() as session:
        assert (await session.exec(select(Movement))).all() == []
        assert (await session.exec(select(Broadcast))).all() == []
    await chat.send("/cancel")
    assert "Không có việc gì để hủy" in chat.said()
