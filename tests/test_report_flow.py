"""The report flow, driven through the router as a user would, on SQLite and PostgreSQL."""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image
from sqlmodel import select

from handlers.context import Services
from handlers.drafts import expire_drafts
from handlers.messages import Capabilities
from handlers.router import SessionFactory
from models.pending import expect_input
from models.people import grant_role
from models.tables import (
    Conversation,
    OutboxMessage,
    PendingInput,
    Person,
    Report,
    ReportPhoto,
    Role,
)
from tests.fakes.chat import FakeChat
from tests.images import PDF, jpeg, png

STORY = "Anh đã lao xuống suối cứu hai em nhỏ bị nước cuốn trôi chiều ngày 3/11."


@pytest.fixture
def chat(services: Services, sessions: SessionFactory) -> FakeChat:
    return FakeChat(services, sessions)


async def reports(sessions: SessionFactory) -> list[Report]:
    async with sessions() as session:
        return list((await session.exec(select(Report))).all())


def payloads(chat: FakeChat) -> list[str]:
    return [b.payload for o in chat.last for row in o.buttons for b in row]


async def fill_until_photos(chat: FakeChat, name: str = "Hoàng Văn Minh") -> None:
    await chat.send("/report")
    await chat.press("r:kind:individual")
    await chat.send(name)
    await chat.press("r:group:militia")
    await chat.send("dong dang")
    await chat.press("r:commune:6184")
    await chat.send(STORY)


async def test_start_greets_in_vietnamese_with_a_menu(chat: FakeChat) -> None:
    await chat.send("/start")
    assert "Chào mừng" in chat.said()
    assert "Gương Sáng" in chat.said()
    assert "r:" not in chat.said()
    assert payloads(chat) == [
        "menu:report",
        "menu:myreports",
        "menu:movements",
        "menu:subscribe",
        "menu:help",
        "menu:lang",
    ]


async def test_full_anonymous_report_with_photos(chat: FakeChat, sessions: SessionFactory) -> None:
    await fill_until_photos(chat)
    await chat.photo(jpeg(gps=True))
    await chat.photo(png(), as_document=True, mime_type="image/png", file_name="a.png")
    assert "2/10" in chat.said()
    await chat.press("r:photos:done")
    await chat.press("r:identity:anonymous")
    summary = chat.said()
    assert "Hoàng Văn Minh" in summary and "Xã Đồng Đăng" in summary and "biên giới" in summary
    await chat.press("r:summary:confirm")
    [report] = await reports(sessions)
    assert report.code == f"GS-{datetime.now(UTC).year}-{report.id:06d}"
    assert report.code in chat.said()
    assert report.status == "submitted"
    assert report.anonymous and report.reporter_name is None and report.reporter_phone is None
    assert report.nominee_group == "militia" and report.commune_code == 6184
    assert "border" in report.area_tags and not report.by_officer
    async with sessions() as session:
        photos = (await session.exec(select(ReportPhoto))).all()
    assert len(photos) == 2
    for photo in photos:
        stored = chat.services.media.path_of(photo.sha256)
        assert b"SecretPhoneMaker" not in stored.read_bytes()
        assert not Image.open(stored).getexif()


async def test_named_report_records_consent_and_phone(
    chat: FakeChat, sessions: SessionFactory
) -> None:
    await fill_until_photos(chat)
    await chat.press("r:photos:skip")
    await chat.press("r:identity:named")
    assert "2026-01" in chat.said()
    await chat.press("r:consent:yes")
    await chat.send("Nguyễn Thị Lan")
    await chat.contact("+84912345678", own=False)
    assert "của chính bạn" in chat.said()
    await chat.contact("0912 345 678")
    await chat.press("r:summary:confirm")
    [report] = await reports(sessions)
    assert report.reporter_name == "Nguyễn Thị Lan"
    assert report.reporter_phone == "+84912345678"
    assert report.consent_version == "2026-01" and report.consent_at is not None
    assert not report.anonymous


async def test_declining_consent_keeps_the_report_anonymous(
    chat: FakeChat, sessions: SessionFactory
) -> None:
    await fill_until_photos(chat)
    await chat.press("r:photos:skip")
    await chat.press("r:identity:named")
    await chat.press("r:consent:no")
    await chat.press("r:summary:confirm")
    [report] = await reports(sessions)
    assert report.anonymous and report.consent_at is None


async def test_commune_search_ignores_diacritics_and_unicode_form(chat: FakeChat) -> None:
    await chat.send("/report")
    await chat.press("r:kind:collective")
    await chat.send("Tổ bảo vệ dân phố số 3")
    await chat.press("r:group:neighbourhood_guard")
    for query in (
        "Đồng Đăng",
        unicodedata.normalize("NFD", "Đồng Đăng"),
        "DONG DANG",
        "dong  dang",
    ):
        await chat.send(query)
        assert any(label.startswith("Xã Đồng Đăng") for label in chat.labels()), query
    await chat.send("zzzz")
    assert "Không tìm thấy" in chat.said()


async def test_commune_typed_with_a_typo_offers_the_look_alike(chat: FakeChat) -> None:
    await chat.send("/report")
    await chat.press("r:kind:individual")
    await chat.send("Lò Văn Páo")
    await chat.press("r:group:farmer")
    for typo, commune in (("dong dag", "Xã Đồng Đăng"), ("Huu-Lung", "Xã Hữu Lũng")):
        await chat.send(typo)
        assert chat.labels()[0].startswith(commune), typo
    await chat.send("tan")  # a fragment several names contain: no guessing beyond them
    assert all("Tân" in label for label in chat.labels() if label.startswith("Xã"))


async def test_length_limits_are_explained(chat: FakeChat, sessions: SessionFactory) -> None:
    await chat.send("/report")
    await chat.press("r:kind:individual")
    await chat.send("A")
    assert "ít nhất 2" in chat.said()
    await chat.send("x" * 121)
    assert "121" in chat.said()
    await chat.send("   ")
    assert "ít nhất 2" in chat.said()


async def test_html_and_sql_in_names_are_stored_verbatim_and_escaped(
    chat: FakeChat, sessions: SessionFactory
) -> None:
    name = "<b>Bobby'); DROP TABLE report;--</b> & 🌟"
    await fill_until_photos(chat, name=name)
    await chat.press("r:photos:skip")
    await chat.press("r:identity:anonymous")
    assert "&lt;b&gt;Bobby'); DROP TABLE report;--&lt;/b&gt; &amp; 🌟" in chat.said()
    await chat.press("r:summary:confirm")
    [report] = await reports(sessions)
    assert report.nominee_name == name


async def test_nfd_text_is_stored_in_nfc(chat: FakeChat, sessions: SessionFactory) -> None:
    await fill_until_photos(chat, name=unicodedata.normalize("NFD", "Hoàng Thị Hướng"))
    await chat.press("r:photos:skip")
    await chat.press("r:identity:anonymous")
    await chat.press("r:summary:confirm")
    [report] = await reports(sessions)
    assert report.nominee_name == unicodedata.normalize("NFC", "Hoàng Thị Hướng")


async def test_wrong_files_get_a_clear_message_and_the_step_goes_on(
    chat: FakeChat, sessions: SessionFactory
) -> None:
    await fill_until_photos(chat)
    await chat.photo(PDF, as_document=True, mime_type="application/pdf", file_name="x.pdf")
    assert "không phải là ảnh" in chat.said()
    await chat.photo(PDF, as_document=True, mime_type="image/jpeg", file_name="fake.jpg")
    assert "không phải là ảnh" in chat.said()
    for what in ("sticker", "video", "voice"):
        await chat.unsupported(what)
        assert "Xin lỗi" in chat.said()
        assert "r:photos:done" in payloads(chat)
    await chat.photo(jpeg())
    assert "1/10" in chat.said()


async def test_at_most_ten_photos(chat: FakeChat) -> None:
    await fill_until_photos(chat)
    for index in range(11):
        await chat.photo(jpeg(color=(index * 20, 10, 10)))  # type: ignore[arg-type]
    assert "10" in chat.said() and "tối đa" in chat.said()


async def test_double_pressed_confirm_creates_one_report(
    chat: FakeChat, sessions: SessionFactory
) -> None:
    await fill_until_photos(chat)
    await chat.press("r:photos:skip")
    await chat.press("r:identity:anonymous")
    await chat.press_payload("r:summary:confirm")
    await chat.press_payload("r:summary:confirm")
    assert "không còn dùng được" in chat.said()
    assert len(await reports(sessions)) == 1


async def test_edit_any_field_from_the_summary(chat: FakeChat, sessions: SessionFactory) -> None:
    await fill_until_photos(chat)
    await chat.press("r:photos:skip")
    await chat.press("r:identity:anonymous")
    await chat.press("r:summary:edit")
    await chat.press("r:edit:commune")
    await chat.send("mau son")
    await chat.press("r:commune:6541")
    assert "Xã Mẫu Sơn" in chat.said()
    await chat.press("r:summary:edit")
    await chat.press("r:edit:nominee")
    await chat.press("r:kind:collective")
    await chat.send("Đội dân quân xã Mẫu Sơn")
    assert "Xã Mẫu Sơn" in chat.said() and "Đội dân quân" in chat.said()
    await chat.press("r:summary:confirm")
    [report] = await reports(sessions)
    assert report.commune_code == 6541 and report.nominee_kind == "collective"


async def test_no_step_asks_to_press_or_reply_where_there_are_no_buttons(
    services: Services, sessions: SessionFactory
) -> None:
    """Every text of the report flow, as a channel with numbered menus (Zalo) shows it."""
    chat = FakeChat(services, sessions, capabilities=Capabilities(inline_buttons=False))
    await fill_until_photos(chat)
    await chat.photo(jpeg())
    await chat.photo(PDF, as_document=True, mime_type="application/pdf", file_name="x.pdf")
    await chat.unsupported("sticker")
    await chat.send("xong")
    await chat.press_payload("r:kind:individual")  # an option of an earlier menu
    await chat.send("khong biet")
    await chat.send("/cancel")
    await chat.send("khong")
    await chat.send("de lai ten")
    await chat.press("r:consent:yes")
    await chat.send("Nguyễn Thị Lan")
    await chat.send("12")
    await chat.send("0912 345 678")
    await chat.press("r:summary:edit")
    await chat.press("r:edit:photos")
    await chat.photo(jpeg())
    await chat.press("r:photos:done")
    await chat.send("/report")
    await chat.press("r:resume:continue")
    await chat.press("r:summary:confirm")
    assert "GS-" in chat.said()
    for text in chat.texts():
        assert not [w for w in ("bấm", "nút", "trả lời tin nhắn") if w in text.lower()], text


async def test_typed_answers_work_where_buttons_are_offered(chat: FakeChat) -> None:
    await chat.send("/report")
    await chat.send("ca nhan")
    await chat.send("Lò Văn Páo")
    await chat.send("nong dan")
    assert "xã hoặc phường" in chat.said()


async def test_a_menu_item_typed_without_diacritics_runs_it(chat: FakeChat) -> None:
    await chat.send("bao cao viec tot")
    assert "Bước 1/7" in chat.said()
    await chat.send("/cancel")
    await chat.send("Báo cáo của tôi")
    assert "Bạn chưa gửi báo cáo nào" in chat.said()
    await chat.send("bao cao")  # fits two items: the menu, and nothing starts
    assert "Chọn việc bạn muốn làm" in chat.said()
    await chat.send("xin chào 👋")
    assert "Chọn việc bạn muốn làm" in chat.said()


async def fill_until_summary(chat: FakeChat) -> None:
    await fill_until_photos(chat)
    await chat.photo(jpeg())
    await chat.press("r:photos:done")
    await chat.press("r:identity:anonymous")


async def test_a_menu_item_typed_inside_a_report_starts_nothing(
    chat: FakeChat, sessions: SessionFactory
) -> None:
    await chat.send("/report")
    await chat.press("r:kind:individual")
    await chat.send("Hướng dẫn")  # a menu item's words, where a name is expected
    assert "thuộc đối tượng nào" in chat.said() and "/cancel" not in chat.said()
    await chat.send("🔔 Đăng ký nhận tin")  # where the options are groups: not one of them
    assert "Vui lòng chọn một trong các mục" in chat.said()
    await chat.press("r:group:farmer")
    await chat.send("Báo cáo của tôi")  # a commune is expected: searched, not run
    assert "Không tìm thấy" in chat.said() and "Bạn chưa gửi báo cáo nào" not in chat.said()
    await chat.send("dong dang")
    await chat.press("r:commune:6184")
    await chat.send("bao cao viec tot")  # the story: too short, not a new report
    assert "ít nhất 30" in chat.said() and "r:kind:individual" not in payloads(chat)
    await chat.press_payload("menu:report")  # the menu of an earlier message
    assert payloads(chat) == ["r:resume:continue", "r:resume:new"]
    await chat.press("r:resume:continue")
    assert "làm việc tốt gì" in chat.said()
    assert await reports(sessions) == []


async def test_cancel_asks_before_discarding_the_draft(
    chat: FakeChat, sessions: SessionFactory
) -> None:
    await fill_until_photos(chat)
    await chat.send("/cancel")
    assert "bỏ báo cáo" in chat.said() and payloads(chat) == ["r:discard:yes", "r:discard:no"]
    await chat.press("Không, giữ lại")
    assert "vẫn được giữ" in chat.said() and "r:photos:skip" in payloads(chat)
    await chat.send("/cancel")
    await chat.send("khong")  # typed, as on a channel without buttons
    assert "Bước 5/7" in chat.said()
    await chat.send("/cancel")
    await chat.send("co")
    assert "Đã bỏ báo cáo" in chat.said()
    await chat.send("some text")
    assert "Chọn việc bạn muốn làm" in chat.said()
    await chat.send("/cancel")
    assert "Không có việc gì để hủy" in chat.said()
    assert await reports(sessions) == []


async def test_cancel_at_the_first_question_leaves_at_once(chat: FakeChat) -> None:
    await chat.send("/report")
    await chat.send("/cancel")
    assert "Đã hủy" in chat.said() and "menu:report" in payloads(chat)


async def test_cancel_while_editing_returns_to_the_unchanged_summary(
    chat: FakeChat, sessions: SessionFactory
) -> None:
    await fill_until_summary(chat)
    await chat.press("r:summary:edit")
    await chat.press("r:edit:commune")
    await chat.send("mau son")
    await chat.send("/cancel")
    assert "báo cáo của bạn vẫn như trước" in chat.said()
    assert "Xã Đồng Đăng" in chat.said() and "r:summary:confirm" in payloads(chat)
    await chat.press("r:summary:edit")
    await chat.press("r:edit:photos")
    await chat.send("/cancel")
    assert "Số ảnh: 1" in chat.said()
    await chat.press("r:summary:edit")
    await chat.press("r:edit:reporter")
    await chat.press("r:identity:named")
    await chat.press("r:consent:yes")
    await chat.send("Nguyễn Thị Lan")
    await chat.send("/cancel")
    assert "Người báo cáo: ẩn danh" in chat.said()
    await chat.press("r:summary:edit")
    await chat.send("/cancel")
    assert "r:summary:confirm" in payloads(chat)
    await chat.press("r:summary:confirm")
    [report] = await reports(sessions)
    assert report.commune_code == 6184 and report.anonymous and report.consent_at is None


async def test_the_summarys_cancel_button_asks_first(
    chat: FakeChat, sessions: SessionFactory
) -> None:
    await fill_until_summary(chat)
    await chat.press("r:summary:cancel")
    assert payloads(chat) == ["r:discard:yes", "r:discard:no"]
    await chat.send("/cancel")  # leaving the question keeps the report
    assert "vẫn được giữ" in chat.said() and "r:summary:confirm" in payloads(chat)
    await chat.press("r:summary:cancel")
    await chat.send("/report")
    assert "r:resume:continue" in payloads(chat)
    await chat.press("r:resume:continue")
    assert "r:summary:confirm" in payloads(chat)
    await chat.press("r:summary:cancel")
    await chat.press("r:discard:yes")
    await chat.press_payload("r:discard:no")
    assert "không còn dùng được" in chat.said()
    assert await reports(sessions) == []


async def await_a_reason(sessions: SessionFactory, user_id: str, age: timedelta) -> None:
    """A moderator's prompt for a reason, asked `age` ago in this person's chat."""
    async with sessions() as session, session.begin():
        [report] = (await session.exec(select(Report))).all()
        person = (await session.exec(select(Person).where(Person.external_id == user_id))).one()
        assert report.id is not None and person.id is not None
        await expect_input(session, person.id, user_id, "reject", report.id, report.version)
        prompt = await session.get(PendingInput, (person.id, user_id))
        assert prompt is not None
        prompt.created_at = datetime.now(UTC) - age


async def test_cancel_leaves_a_moderators_prompt_before_the_draft(
    chat: FakeChat, sessions: SessionFactory
) -> None:
    await fill_until_summary(chat)
    await chat.press("r:summary:confirm")
    await fill_until_photos(chat)
    await await_a_reason(sessions, chat.user_id, timedelta(0))
    await chat.send("/cancel")
    assert chat.said() == "Đã hủy. Chưa có gì được gửi đi."
    await chat.send("/cancel")
    assert payloads(chat) == ["r:discard:yes", "r:discard:no"]
    await chat.press("r:discard:no")
    await await_a_reason(sessions, chat.user_id, timedelta(hours=1))
    await chat.send("/cancel")  # the forgotten prompt is gone; /cancel means the draft
    assert payloads(chat) == ["r:discard:yes", "r:discard:no"]


async def test_help_tells_what_cancel_does_and_how_long_drafts_are_kept(
    chat: FakeChat, services: Services
) -> None:
    await chat.send("/help")
    hours = round(services.config.draft_ttl.total_seconds() / 3600)
    assert f"giữ {hours} giờ" in chat.said() and "khi bạn xác nhận" in chat.said()


async def test_help_and_language_at_any_step(chat: FakeChat) -> None:
    await fill_until_photos(chat)
    await chat.send("/lang en")
    assert "Language set to English" in chat.said()
    await chat.send("/help")
    assert "/report" in chat.said()
    await chat.photo(jpeg())
    assert "Photo received (1/10)" in chat.said()


async def test_officer_names_their_unit(
    chat: FakeChat, services: Services, sessions: SessionFactory
) -> None:
    async with sessions() as session, session.begin():
        await grant_role(session, "test", chat.user_id, Role.OFFICER, granted_by="test")
    await fill_until_photos(chat)
    await chat.press("r:photos:skip")
    await chat.press("r:identity:anonymous")
    assert "đơn vị" in chat.said()
    await chat.send("UBND xã Đồng Đăng")
    await chat.press("r:summary:confirm")
    [report] = await reports(sessions)
    assert report.by_officer and report.officer_unit == "UBND xã Đồng Đăng"


async def test_daily_limit(chat: FakeChat, services: Services, sessions: SessionFactory) -> None:
    services.flood.per_minute = 1000
    for _ in range(services.config.reports_per_day):
        await fill_until_photos(chat)
        await chat.press("r:photos:skip")
        await chat.press("r:identity:anonymous")
        await chat.press("r:summary:confirm")
    await chat.send("/report")
    assert "giới hạn" in chat.said()
    assert len(await reports(sessions)) == services.config.reports_per_day


async def test_my_reports_and_status_show_only_ones_own(
    services: Services, sessions: SessionFactory
) -> None:
    lan, minh = FakeChat(services, sessions, "1"), FakeChat(services, sessions, "2")
    await fill_until_photos(lan)
    await lan.press("r:photos:skip")
    await lan.press("r:identity:anonymous")
    await lan.press("r:summary:confirm")
    [report] = await reports(sessions)
    await lan.send("/myreports")
    assert report.code in lan.said() and "chờ xét duyệt" in lan.said()
    await lan.send(f"/status {report.code.lower()}")
    assert "Hoàng Văn Minh" in lan.said()
    await minh.send(f"/status {report.code}")
    assert "Hoàng Văn Minh" not in minh.said() and "Không tìm thấy" in minh.said()
    await minh.send("/myreports")
    assert report.code not in minh.said()
    await minh.press_payload(f"my:{report.code}")  # a forged press of Lan's report button
    assert "Hoàng Văn Minh" not in minh.said() and "Không tìm thấy" in minh.said()


async def test_my_reports_offers_a_button_per_recent_report(
    services: Services, sessions: SessionFactory
) -> None:
    services.flood.per_minute = 1000
    prolific = replace(services, config=replace(services.config, reports_per_day=20))
    chat = FakeChat(prolific, sessions)
    for name in [f"Người tốt {number}" for number in range(11)]:
        await fill_until_photos(chat, name)
        await chat.press("r:photos:skip")
        await chat.press("r:identity:anonymous")
        await chat.press("r:summary:confirm")
    [listing] = await chat.send("/myreports")
    labels = [button.label for row in listing.buttons for button in row]
    assert len(labels) == 10
    assert labels[0].endswith("Người tốt 10") and labels[-1].endswith("Người tốt 1")
    await chat.press(labels[0])
    assert "Người tốt 10" in chat.said() and "Tình trạng" in chat.said()


async def test_unfinished_draft_resumes_or_restarts(chat: FakeChat) -> None:
    await fill_until_photos(chat)
    await chat.send("/report")
    await chat.press("r:resume:continue")
    assert "ảnh" in chat.said()
    await chat.send("/report")
    await chat.press("r:resume:new")
    assert "r:kind:individual" in payloads(chat)


async def test_abandoned_draft_expires_with_a_notice(
    chat: FakeChat, services: Services, sessions: SessionFactory
) -> None:
    await fill_until_photos(chat)
    later = datetime.now(UTC) + services.config.draft_ttl + timedelta(minutes=1)
    assert await expire_drafts(services, sessions, datetime.now(UTC)) == 0
    assert await expire_drafts(services, sessions, later) == 1
    async with sessions() as session:
        [notice] = (await session.exec(select(OutboxMessage))).all()
        state = await session.get(Conversation, 1)
    assert notice.chat_id == chat.user_id and "Hoàng Văn Minh" in notice.payload["text"]
    assert state is not None and state.flow == ""


async def test_flood_gets_one_polite_warning(chat: FakeChat, services: Services) -> None:
    limit = services.config.messages_per_minute
    for _ in range(limit):
        await chat.send("xin chào")
    warning = await chat.send("xin chào")
    assert "nhanh hơn mức tôi kịp đọc" in chat.said() and len(warning) == 1
    assert await chat.send("xin chào") == []
