"""Moderation driven through the router as moderators and reporters would, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from babel.messages.pofile import read_po
from sqlalchemy import update
from sqlmodel import col, select

from bot.i18n import LOCALES, catalog_path, load_translations
from bot.settings import Settings
from handlers.broadcasting import publication_tick, start_due
from handlers.context import Services
from handlers.messages import Capabilities
from handlers.publications import render
from handlers.router import COMMAND_FLOWS, SessionFactory
from models.people import grant_role
from models.tables import (
    Broadcast,
    OutboxMessage,
    OutboxStatus,
    Report,
    ReportNote,
    ReportPhoto,
    ReportStatus,
    Role,
)
from tests.fakes.chat import FakeChat
from tests.images import jpeg
from tests.webchat import Browser, payloads, running_bot, text_of

STORY = "Chị đã đưa hai cụ già qua suối lũ về nơi an toàn trong đêm mưa lớn ngày 12/10."
HEADER = ("Project-Id-Version", "Content-Type:", "MIME-Version", "Plural-Forms")


@pytest.fixture
def reporter(services: Services, sessions: SessionFactory) -> FakeChat:
    return FakeChat(services, sessions, user_id="2001", display_name="Hoa")


@pytest.fixture
async def moderator(services: Services, sessions: SessionFactory) -> FakeChat:
    async with sessions() as session, session.begin():
        await grant_role(session, "test", "501", Role.ADMIN, granted_by="test")
    return FakeChat(services, sessions, user_id="501", display_name="Cán bộ Bình")


async def file_report(chat: FakeChat, name: str = "Hà Thị Mai") -> str:
    """A whole anonymous report with one photo; returns its code."""
    await chat.send("/report")
    await chat.press("r:kind:individual")
    await chat.send(name)
    await chat.press("r:group:farmer")
    await chat.send("dinh lap")
    await chat.press("r:commune:6613")
    await chat.send(STORY)
    await chat.photo(jpeg(color="green"))
    await chat.press("r:photos:done")
    await chat.press("r:identity:anonymous")
    await chat.press("r:summary:confirm")
    said = chat.said()
    return said[said.index("GS-") : said.index("GS-") + 14]


async def report_of(sessions: SessionFactory, code: str) -> Report:
    async with sessions() as session:
        return (await session.exec(select(Report).where(Report.code == code))).one()


async def deliver_outbox(sessions: SessionFactory) -> list[OutboxMessage]:
    """What the dispatcher would do: every pending message sent (its id as the platform's)."""
    async with sessions() as session, session.begin():
        query = select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.PENDING)
        pending = list((await session.exec(query.order_by(col(OutboxMessage.id)))).all())
        await session.exec(
            update(OutboxMessage)  # type: ignore[call-overload]
            .where(col(OutboxMessage.status) == OutboxStatus.PENDING)
            .values(status=OutboxStatus.SENT, platform_message_id=OutboxMessage.id)
        )
    return pending


def assert_no_header(chat: FakeChat) -> None:
    for outbound in chat.transcript:
        for text in (outbound.text, *(b.label for row in outbound.buttons for b in row)):
            assert not any(field in text for field in HEADER), text


# ---- item: nothing of a catalogue's header ever reaches a user -----------------------------


def test_the_translator_keeps_an_empty_message_empty() -> None:
    for locale, translate in load_translations().items():
        assert translate("") == "", locale
        assert translate("Cancelled. Nothing was sent.") != "", locale


async def test_every_typed_command_without_or_with_a_bad_code(
    moderator: FakeChat, reporter: FakeChat
) -> None:
    await file_report(reporter)
    for command in sorted(COMMAND_FLOWS):
        for args in ("", "GS-2026-999999", "<b>GS</b>"):
            await moderator.send(f"/{command} {args}".strip())
            await moderator.send("/cancel")
    assert_no_header(moderator)


@pytest.mark.parametrize("command", ["duyet", "approve", "tuchoi", "bosung", "history"])
async def test_a_staff_command_without_a_code_shows_its_usage(
    moderator: FakeChat, command: str
) -> None:
    await moderator.send(f"/{command}")
    assert f"/{command} GS-2026-000123" in moderator.said()
    assert_no_header(moderator)


@pytest.mark.parametrize("command", ["duyet", "tuchoi", "askmore", "history"])
async def test_an_unknown_code_is_not_found_and_echoed_escaped(
    moderator: FakeChat, command: str
) -> None:
    await moderator.send(f"/{command} GS-<b>9</b> lý do")
    said = moderator.said()
    assert "GS-&lt;b&gt;9&lt;/b&gt;" in said and "Không có báo cáo" in said
    assert "ví dụ" not in said


# ---- item: every copy of a card follows the decisions ------------------------------------


async def test_a_card_opened_from_the_queue_is_updated_after_a_decision(
    moderator: FakeChat, reporter: FakeChat, sessions: SessionFactory
) -> None:
    code = await file_report(reporter)
    [first_copy] = [m for m in await deliver_outbox(sessions) if m.chat_id == moderator.user_id]
    await moderator.send("/queue")
    await moderator.press(f"Mở {code}")
    [opened] = await deliver_outbox(sessions)
    assert opened.purpose == "card" and opened.chat_id == moderator.user_id
    assert code in opened.payload["text"] and opened.payload["photos"]
    await moderator.send(f"/duyet {code}")
    edits = await deliver_outbox(sessions)
    edited = {m.payload["edit_message_id"]: m.payload for m in edits if m.purpose == "card-edit"}
    assert set(edited) == {str(first_copy.id), str(opened.id)}
    for payload in edited.values():
        assert "đã được duyệt" in payload["text"] and "Cán bộ Bình" in payload["text"]
        assert [b["payload"] for row in payload["buttons"] for b in row] == [
            f"m:hi:{(await report_of(sessions, code)).id}:0"
        ]
        assert payload["photos"] == opened.payload["photos"], "the photos stay"


# ---- item: a moderator who arrives later learns what waits ----------------------------------


async def test_a_moderator_arriving_after_the_reports_is_shown_the_queue(
    services: Services, sessions: SessionFactory, reporter: FakeChat
) -> None:
    codes = [await file_report(reporter, name) for name in ("Hà Thị Mai", "Lò Văn Hùng")]
    async with sessions() as session, session.begin():
        await grant_role(session, "test", "777", Role.MODERATOR, granted_by="test")
    latecomer = FakeChat(services, sessions, user_id="777")
    await latecomer.send("/start")
    assert "Báo cáo đang chờ duyệt: 2" in latecomer.said()
    await latecomer.press("📋 Mở danh sách chờ duyệt")
    assert all(code in latecomer.said() for code in codes)
    await reporter.send("/start")
    assert "chờ duyệt" not in reporter.said(), "citizens are not told about the queue"


async def test_a_moderator_granted_later_is_told_what_waits(
    services: Services, sessions: SessionFactory, moderator: FakeChat, reporter: FakeChat
) -> None:
    await file_report(reporter)
    newcomer = FakeChat(services, sessions, user_id="888")
    await newcomer.send("/start")
    assert "chờ duyệt" not in newcomer.said()
    await deliver_outbox(sessions)
    await moderator.send("/grant test:888 moderator")
    [notice] = await deliver_outbox(sessions)
    assert notice.chat_id == "888" and "Báo cáo đang chờ duyệt: 1" in notice.payload["text"]
    await newcomer.press_payload(notice.payload["buttons"][0][0]["payload"])
    assert "Hà Thị Mai" in newcomer.said()


# ---- item: an answer typed without pressing "Answer" is not lost ----------------------------


async def answers_of(sessions: SessionFactory, code: str) -> tuple[list[str], int]:
    """The reporter's answers to the council about `code`, and how many photos it has."""
    report = await report_of(sessions, code)
    async with sessions() as session:
        notes = await session.exec(
            select(ReportNote.text).where(
                ReportNote.report_id == report.id, ReportNote.kind == "answer"
            )
        )
        photos = await session.exec(select(ReportPhoto).where(ReportPhoto.report_id == report.id))
        return list(notes.all()), len(photos.all())


async def test_text_and_a_photo_answer_the_one_waiting_question(
    moderator: FakeChat, reporter: FakeChat, sessions: SessionFactory
) -> None:
    code = await file_report(reporter)
    await moderator.send(f"/bosung {code} Ai đã chứng kiến?")
    await reporter.send("Cả bản <đều> thấy.")
    assert code in reporter.said() and "✅ Xong, gửi cho Hội đồng" in reporter.labels()
    await reporter.photo(jpeg(color="yellow"))
    await reporter.press("✅ Xong, gửi cho Hội đồng")
    assert (await report_of(sessions, code)).status == ReportStatus.SUBMITTED
    assert await answers_of(sessions, code) == (["Cả bản <đều> thấy."], 2)
    await reporter.send("Cảm ơn")
    assert await answers_of(sessions, code) == (["Cả bản <đều> thấy."], 2), "no question waits"


async def test_with_several_questions_the_reporter_picks_the_report(
    moderator: FakeChat, reporter: FakeChat, sessions: SessionFactory
) -> None:
    first = await file_report(reporter, "Hà Thị Mai")
    second = await file_report(reporter, "Lò Văn Hùng")
    for code in (first, second):
        await moderator.send(f"/bosung {code} Việc xảy ra ngày nào?")
    await reporter.send("Ngày 12 tháng 10.")
    assert f"{first} · Hà Thị Mai" in reporter.labels()
    assert f"{second} · Lò Văn Hùng" in reporter.labels()
    await reporter.photo(jpeg(color="blue"))
    assert f"{second} · Lò Văn Hùng" in reporter.labels(), "still asked which"
    await reporter.press(f"{second} · Lò Văn Hùng")
    assert second in reporter.said()
    await reporter.press("✅ Xong, gửi cho Hội đồng")
    assert await answers_of(sessions, second) == (["Ngày 12 tháng 10."], 2)
    assert await answers_of(sessions, first) == ([], 1)
    assert (await report_of(sessions, second)).status == ReportStatus.SUBMITTED
    assert (await report_of(sessions, first)).status == ReportStatus.NEEDS_INFO


# ---- item: prompts are right on channels without reply-to -----------------------------------

REPLY_WORDING = ("reply to this message", "replying to", "reply to my", "trả lời tin nhắn")


def test_no_text_asks_for_a_reply_to_a_message() -> None:
    for locale in LOCALES:
        with catalog_path(locale).open("rb") as po:
            for message in read_po(po, locale=locale):
                for text in (str(message.id), str(message.string)):
                    assert not any(w in text.lower() for w in REPLY_WORDING), text


@pytest.mark.parametrize("command", ["tuchoi", "bosung"])
async def test_a_typed_prompt_asks_for_the_next_message(
    moderator: FakeChat, reporter: FakeChat, sessions: SessionFactory, command: str
) -> None:
    code = await file_report(reporter)
    await moderator.send(f"/{command} {code}")
    assert "tin nhắn tiếp theo" in moderator.said()
    await moderator.send("   ")
    assert "tin nhắn tiếp theo" in moderator.said()
    await moderator.send("Sự việc chưa rõ ràng")
    assert (await report_of(sessions, code)).status != ReportStatus.SUBMITTED


# ---- item: editing for publication offers the current text, and fixes the name ---------------


async def test_edit_prefills_the_current_text_where_the_channel_can(
    services: Services, sessions: SessionFactory, moderator: FakeChat, reporter: FakeChat
) -> None:
    code = await file_report(reporter, "Hà Thị <Mai>")
    report = await report_of(sessions, code)
    editor = FakeChat(
        services, sessions, user_id="501", capabilities=Capabilities(text_prefill=True)
    )
    await editor.press_payload(f"m:ed:{report.id}:0")
    [prompt] = editor.last
    assert prompt.prefill == "Hà Thị <Mai>" and "<code>" not in prompt.text
    await editor.send("Hà Thị Mai")
    assert editor.last[0].prefill == "", "no headline yet"
    await editor.send("Người mẹ của bản")
    assert editor.last[0].prefill == STORY
    await editor.send("-")
    found = await report_of(sessions, code)
    assert (found.public_name, found.headline, found.public_story) == (
        "Hà Thị Mai",
        "Người mẹ của bản",
        None,
    )
    assert found.nominee_name == "Hà Thị <Mai>" and found.story == STORY

    await moderator.press_payload(f"m:ed:{report.id}:1")
    assert "<code>Hà Thị Mai</code>" in moderator.said(), "the corrected name, to copy"
    assert moderator.last[0].prefill == ""
    await moderator.send("-")
    assert "<code>Người mẹ của bản</code>" in moderator.said()
    await moderator.send("-")
    await moderator.send("-")
    assert "Không có gì" in moderator.said()
    assert (await report_of(sessions, code)).content_version == 1


async def test_the_published_story_carries_the_corrected_name(
    services: Services, sessions: SessionFactory, moderator: FakeChat, reporter: FakeChat
) -> None:
    code = await file_report(reporter, "Ha Thi Mai")
    report = await report_of(sessions, code)
    await moderator.press_payload(f"m:ed:{report.id}:0")
    for answer in ("Hà Thị Mai", "-", "-"):
        await moderator.send(answer)
    await moderator.send(f"/duyet {code}")
    await moderator.send("/publish")
    async with sessions() as session:
        [broadcast] = (await session.exec(select(Broadcast))).all()
        payloads = await render(session, services, broadcast)
    assert "Hà Thị Mai" in payloads["vi"]["text"] and "Ha Thi Mai" not in payloads["vi"]["text"]


async def test_web_sandbox_moderator_arriving_late_finds_the_queue_and_edits_prefilled(
    settings: Settings,
) -> None:
    async with running_bot(settings) as runtime:
        code = await file_report(FakeChat(runtime.services, runtime.sessions), "Hà Thị Mai")
        moderator = Browser(runtime, persona="moderator")
        try:
            await moderator.open()
            await moderator.say("/start")
            waiting = await moderator.next_message()
            assert "Báo cáo đang chờ duyệt: 1" in text_of(waiting)
            queue = await moderator.press(payloads(waiting)[0])
            assert code in text_of(queue)
            report = await report_of(runtime.sessions, code)
            await moderator.send({"type": "button", "payload": f"m:ed:{report.id}:0"})
            assert moderator.socket is not None
            prompt = await moderator.socket.receive_json(timeout=5)
            assert prompt["prefill"] == "Hà Thị Mai" and "<code>" not in text_of(prompt["message"])
        finally:
            await moderator.close()


# ---- item: the reporter learns when the story is really published ---------------------------


def notices_to(messages: list[OutboxMessage], chat: FakeChat) -> list[str]:
    return [m.payload["text"] for m in messages if m.chat_id == chat.user_id]


async def test_the_reporter_is_told_when_the_story_is_published_now(
    services: Services, sessions: SessionFactory, moderator: FakeChat, reporter: FakeChat
) -> None:
    code = await file_report(reporter)
    await deliver_outbox(sessions)
    await moderator.send(f"/duyet {code}")
    [approval] = notices_to(await deliver_outbox(sessions), reporter)
    assert "dự kiến" in approval and "sẽ được báo" in approval
    await moderator.send("/publish")
    assert notices_to(await deliver_outbox(sessions), reporter) == [], "not before it starts"
    await start_due(services, sessions, datetime.now(UTC))
    sent = await deliver_outbox(sessions)
    [published] = notices_to(sent, reporter)
    assert code in published and "đã được đăng" in published
    [card] = [m for m in sent if m.purpose == "card-edit"]
    assert "đã đăng công khai" in card.payload["text"]


async def test_the_reporter_is_told_when_a_slot_publishes_the_story(
    services: Services, sessions: SessionFactory, moderator: FakeChat, reporter: FakeChat
) -> None:
    code = await file_report(reporter)
    await moderator.send(f"/duyet {code}")
    await deliver_outbox(sessions)
    later = datetime.now(UTC) + timedelta(days=1)
    assert await publication_tick(services, sessions, later) == 1
    await start_due(services, sessions, later)
    [published] = notices_to(await deliver_outbox(sessions), reporter)
    assert code in published and "đã được đăng" in published


# ---- item: /history speaks the moderator's language ----------------------------------------

INTERNAL_NAMES = ("needs_info", "submitted", "claimed", "approve", "reject", "ask ", "refused")


async def test_history_is_in_words_not_internal_names(
    services: Services, sessions: SessionFactory, moderator: FakeChat, reporter: FakeChat
) -> None:
    code = await file_report(reporter)
    report = await report_of(sessions, code)
    intruder = FakeChat(services, sessions, user_id="666")
    await intruder.press_payload(f"m:ap:{report.id}:0")
    await moderator.press_payload(f"m:cl:{report.id}:0")
    await moderator.send(f"/bosung {code} Ai <đã> chứng kiến?")
    await reporter.send("Cả bản đều thấy.")
    await reporter.press("✅ Xong, gửi cho Hội đồng")
    await moderator.send(f"/tuchoi {code} Chưa xác minh được")
    await moderator.send(f"/history {code}")
    history = moderator.said()
    for line in (
        "Cán bộ Bình · nhận xử lý: đang chờ xét duyệt → đang được xem xét",
        "Cán bộ Bình · hỏi thêm người báo cáo: đang được xem xét → cần bổ sung thông tin · "
        "Ai &lt;đã&gt; chứng kiến?",
        "người báo cáo · trả lời: cần bổ sung thông tin → đang chờ xét duyệt",
        "Cán bộ Bình · từ chối: đang chờ xét duyệt → không được duyệt · Chưa xác minh được",
        "bị chặn, không có quyền: duyệt",
    ):
        assert line in history, history
    assert not any(name in history for name in INTERNAL_NAMES), history
