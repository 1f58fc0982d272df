"""Moderation in chat, end to end: the real Application, the fake Bot API, both databases.

Citizens report in private chats; cards reach the moderators' group
(TELEGRAM_MODERATION_CHAT_ID) through the outbox; moderators press the cards' buttons.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from bot.app import Runtime
from bot.settings import Settings
from models.people import grant_role
from models.tables import AuditEntry, Report, ReportNote, ReportPhoto, ReportStatus, Role
from tests.fakes.telegram_api import TEST_TIME_SCALE, FakeTelegram, FakeUser, SentMessage
from tests.images import jpeg
from tests.webchat import running_bot

GROUP = -100500
STORY = "Anh đã dũng cảm dập tắt đám cháy rừng ở đầu bản, cứu được nhiều hộ dân lân cận."


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(time_scale=TEST_TIME_SCALE) as server:
        yield server


async def start_bot(settings: Settings, fake: FakeTelegram, **overrides: object) -> Runtime:
    context = running_bot(
        settings, telegram_bot_token="42:TOKEN", telegram_api_base_url=fake.base_url,
        telegram_moderation_chat_id=str(GROUP), **{**fake.pacing, **overrides},
    )  # fmt: skip
    runtime = await context.__aenter__()
    runtime.__dict__["_context"] = context
    return runtime


async def stop_bot(runtime: Runtime) -> None:
    await runtime.__dict__["_context"].__aexit__(None, None, None)


@pytest.fixture
async def bot(settings: Settings, fake: FakeTelegram) -> AsyncIterator[Runtime]:
    runtime = await start_bot(settings, fake)
    yield runtime
    await stop_bot(runtime)


async def make_moderator(runtime: Runtime, user_id: int, role: Role = Role.MODERATOR) -> None:
    async with runtime.sessions() as session, session.begin():
        await grant_role(session, "telegram", str(user_id), role, granted_by="test")


async def submit_report(user: FakeUser, name: str = "Lường Văn Thắng", photos: int = 1) -> str:
    """A citizen's whole report in their private chat; returns the code the bot gave."""
    steps: list[tuple[str, str]] = [
        ("text", "/report"), ("press", "r:kind:individual"), ("text", name),
        ("press", "r:group:militia"), ("text", "dinh lap"), ("press", "r:commune:6613"),
        ("text", STORY),
    ]  # fmt: skip
    for kind, value in steps:
        await (user.send_text(value) if kind == "text" else user.press(value))
        await user.wait_for_messages(1)
    for index in range(photos):
        await user.send_photo(jpeg(color=("red", "blue", "green")[index % 3]))
    if photos:
        await user.wait_for_messages(1)
        await user.press("r:photos:done")
    else:
        await user.press("r:photos:skip")
    await user.wait_for_messages(1)
    await user.press("r:identity:named")
    await user.wait_for_messages(1)
    await user.press("r:consent:yes")
    await user.wait_for_messages(1)
    await user.send_text("Nông Thị Hoa")
    await user.wait_for_messages(1)
    await user.send_contact("0912345678")
    await user.wait_for_messages(2)
    await user.press("r:summary:confirm")
    [done] = await user.wait_for_messages(1)
    text = done.plain_text or ""
    return text[text.index("GS-") : text.index("GS-") + 14]


async def card_in(fake: FakeTelegram, chat_id: int, code: str, containing: str = "") -> SentMessage:
    """The newest card of `code` in `chat_id` (waiting for the outbox to deliver it)."""

    def find() -> SentMessage | None:
        cards = [
            m for m in fake.user(user_id=1, chat_id=chat_id).inbox
            if code in (m.plain_text or "") and containing in (m.plain_text or "") and m.buttons
        ]  # fmt: skip
        return cards[-1] if cards else None

    await fake.wait_until(lambda: find() is not None, timeout=30, what=f"a card of {code}")
    card = find()
    assert card is not None
    return card


async def press(fake: FakeTelegram, user: FakeUser, data: str, message_id: int = 0) -> str:
    """Press a button and wait for Telegram's answer to that press; returns the pop-up's text."""
    update = await (user.press_data(data, message_id) if message_id else user.press(data))
    query_id = str(update["callback_query"]["id"])

    def answer() -> str | None:
        for call in fake.calls_to("answerCallbackQuery"):
            if str(call.params.get("callback_query_id")) == query_id:
                return str(call.params.get("text", ""))
        return None

    await fake.wait_until(lambda: answer() is not None, what=f"the answer to {data}")
    return answer() or ""


def data_of(card: SentMessage, prefix: str) -> str:
    return next(b["callback_data"] for b in card.buttons if b["callback_data"].startswith(prefix))


async def report(runtime: Runtime, code: str) -> Report:
    async with runtime.sessions() as session:
        found = (await session.exec(select(Report).where(Report.code == code))).one()
        return found


async def audit_actions(runtime: Runtime, report_id: int | None) -> list[str]:
    async with runtime.sessions() as session:
        query = select(AuditEntry.action).where(AuditEntry.report_id == report_id)
        return list((await session.exec(query.order_by(col(AuditEntry.id)))).all())


async def last_text(user: FakeUser, timeout: float = 8) -> str:
    [message] = await user.wait_for_messages(1, timeout=timeout)
    return message.plain_text or ""


async def test_full_cycle_card_approve_and_reporter_told(bot: Runtime, fake: FakeTelegram) -> None:
    await make_moderator(bot, 501)
    citizen = fake.user(user_id=2001, first_name="Hoa")
    code = await submit_report(citizen)
    card = await card_in(fake, GROUP, code)
    group_messages = fake.user(user_id=1, chat_id=GROUP).inbox
    assert any(m.media for m in group_messages), "the photos come before the card"
    text = card.plain_text or ""
    assert "Lường Văn Thắng" in text and "Xã Đình Lập" in text and "biên giới" in text
    assert "Nông Thị Hoa" in text and "+84912345678" in text

    moderator = fake.user(user_id=501, first_name="Cán bộ Bình", chat_id=GROUP)
    await moderator.press(data_of(card, "m:ap:"))
    await fake.wait_until(lambda: card.edited, timeout=20, what="the card edited")
    assert "Cán bộ Bình" in (card.plain_text or "")
    assert [b["callback_data"] for b in card.buttons] == [f"m:hi:{card_report_id(card)}:0"]
    told = await last_text(citizen)
    assert code in told and "đăng" in told
    assert (await report(bot, code)).status == ReportStatus.APPROVED
    assert await audit_actions(bot, (await report(bot, code)).id) == ["approve"]


def card_report_id(card: SentMessage) -> int:
    return int(data_of(card, "m:").split(":")[2])


async def test_reject_with_a_typed_reason(bot: Runtime, fake: FakeTelegram) -> None:
    await make_moderator(bot, 502)
    citizen = fake.user(user_id=2002)
    code = await submit_report(citizen, photos=0)
    card = await card_in(fake, GROUP, code)
    moderator = fake.user(user_id=502, first_name="Minh", chat_id=GROUP)
    await moderator.press(data_of(card, "m:rj:"))
    [menu] = await moderator.wait_for_messages(1)
    await moderator.press(next(b["callback_data"] for b in menu.buttons
                               if b["callback_data"].startswith("m:ro:")))  # fmt: skip
    [prompt] = await moderator.wait_for_messages(1)
    assert prompt.reply_markup == {"force_reply": True}
    await moderator.send_text("Sự việc <đã được> khen thưởng & biểu dương năm ngoái")
    await fake.wait_until(lambda: card.edited, timeout=20, what="the card edited")
    found = await report(bot, code)
    assert found.status == ReportStatus.REJECTED
    assert found.reject_reason == "Sự việc <đã được> khen thưởng & biểu dương năm ngoái"
    told = await last_text(citizen)
    assert "Sự việc <đã được> khen thưởng & biểu dương năm ngoái" in told


async def test_ask_for_more_and_the_answer_returns_to_the_queue(
    bot: Runtime, fake: FakeTelegram
) -> None:
    await make_moderator(bot, 503)
    citizen = fake.user(user_id=2003)
    code = await submit_report(citizen, photos=0)
    card = await card_in(fake, GROUP, code)
    stale_approve = data_of(card, "m:ap:")
    moderator = fake.user(user_id=503, chat_id=GROUP)
    await moderator.press(data_of(card, "m:aq:"))
    await moderator.wait_for_messages(1)
    await moderator.send_text("Sự việc xảy ra ngày nào?")
    question = await citizen.wait_for_messages(1, timeout=20)
    assert "Sự việc xảy ra ngày nào?" in (question[0].plain_text or "")
    assert (await report(bot, code)).status == ReportStatus.NEEDS_INFO

    await citizen.send_text("/report")  # busy with a new report: its text is no answer
    await citizen.wait_for_messages(1)
    await citizen.send_text("Tôi đang viết một báo cáo khác")
    await citizen.wait_for_messages(1)
    await citizen.press(f"a:start:{card_report_id(card)}")
    await citizen.wait_for_messages(1)
    await citizen.send_text("Ngày 12 tháng 10, lúc 4 giờ chiều.")
    await citizen.wait_for_messages(1)
    await citizen.send_photo(jpeg(color="yellow"))
    await citizen.wait_for_messages(1)
    await citizen.press(f"a:done:{card_report_id(card)}")
    await citizen.wait_for_messages(1)
    found = await report(bot, code)
    assert found.status == ReportStatus.SUBMITTED and found.content_version == 1
    async with bot.sessions() as session:
        notes = (await session.exec(select(ReportNote.kind, ReportNote.text))).all()
        photos = (
            await session.exec(select(ReportPhoto).where(ReportPhoto.report_id == found.id))
        ).all()
    assert ("answer", "Ngày 12 tháng 10, lúc 4 giờ chiều.") in notes
    assert ("answer", "Tôi đang viết một báo cáo khác") not in notes
    assert len(photos) == 1
    fresh = await card_in(fake, GROUP, code, containing="Ngày 12 tháng 10")
    assert data_of(fresh, "m:ap:").endswith(":1")
    assert "cũ" in await press(fake, moderator, stale_approve, card.message_id)
    assert (await report(bot, code)).status == ReportStatus.SUBMITTED


async def test_duplicate_by_code_and_duplicate_hints(bot: Runtime, fake: FakeTelegram) -> None:
    await make_moderator(bot, 504)
    first = await submit_report(fake.user(user_id=2004), name="Hoàng Văn Sơn")
    second = await submit_report(fake.user(user_id=2005), name="hoang van  son")
    card = await card_in(fake, GROUP, second)
    assert first in (card.plain_text or ""), "the same nominee in the same commune is hinted"
    moderator = fake.user(user_id=504, chat_id=GROUP)
    await moderator.press(data_of(card, "m:du:"))
    await moderator.wait_for_messages(1)
    await moderator.send_text(first.lower())
    await fake.wait_until(lambda: card.edited, timeout=20, what="the card edited")
    found = await report(bot, second)
    assert found.status == ReportStatus.DUPLICATE
    assert found.duplicate_of_id == (await report(bot, first)).id


async def test_claim_locks_then_expires(bot: Runtime, fake: FakeTelegram) -> None:
    await make_moderator(bot, 505)
    await make_moderator(bot, 506)
    code = await submit_report(fake.user(user_id=2006), photos=0)
    card = await card_in(fake, GROUP, code)
    first = fake.user(user_id=505, first_name="An", chat_id=GROUP)
    second = fake.user(user_id=506, first_name="Bảo", chat_id=GROUP)
    await press(fake, first, data_of(card, "m:cl:"))
    await fake.wait_until(lambda: card.edited, timeout=20, what="the card edited")
    assert "An" in (card.plain_text or "")
    assert "An" in await press(fake, second, data_of(card, "m:ap:"))
    assert (await report(bot, code)).status == ReportStatus.CLAIMED

    async with bot.sessions() as session, session.begin():
        await session.exec(update(Report).where(col(Report.code) == code).values(
            claimed_until=datetime.now(UTC) - timedelta(seconds=1)))  # fmt: skip
    await press(fake, second, data_of(card, "m:ap:"))
    found = await report(bot, code)
    assert found.status == ReportStatus.APPROVED and found.decided_by_id is not None


async def test_quorum_of_two_and_no_self_moderation(settings: Settings, fake: FakeTelegram) -> None:
    runtime = await start_bot(settings, fake, approvals_required=2)
    try:
        for moderator_id in (507, 508):
            await make_moderator(runtime, moderator_id)
        await make_moderator(runtime, 2007)  # a moderator who also reports
        reporter = fake.user(user_id=2007)
        code = await submit_report(reporter, photos=0)
        card = await card_in(fake, GROUP, code)
        approve = data_of(card, "m:ap:")
        own = await press(fake, fake.user(user_id=2007, chat_id=GROUP), approve)
        assert "chính mình" in own
        assert (await report(runtime, code)).status == ReportStatus.SUBMITTED

        first = fake.user(user_id=507, chat_id=GROUP)
        assert "1/2" in await press(fake, first, approve)
        await fake.wait_until(lambda: "1/2" in (card.plain_text or ""), timeout=20)
        twice = await press(fake, first, approve)  # the same moderator twice counts once
        assert "đã duyệt" in twice
        assert (await report(runtime, code)).status == ReportStatus.SUBMITTED
        await press(fake, fake.user(user_id=508, chat_id=GROUP), approve)
        await fake.wait_until(lambda: "m:hi:" in str(card.buttons), timeout=20)
        assert (await report(runtime, code)).status == ReportStatus.APPROVED
        actions = await audit_actions(runtime, (await report(runtime, code)).id)
        assert actions == ["approve (1/2)", "approve (2/2)"]
    finally:
        await stop_bot(runtime)


async def test_two_moderators_racing_one_wins(bot: Runtime, fake: FakeTelegram) -> None:
    await make_moderator(bot, 509)
    await make_moderator(bot, 510)
    code = await submit_report(fake.user(user_id=2008), photos=0)
    card = await card_in(fake, GROUP, code)
    approve = data_of(card, "m:ap:")
    answered = len(fake.calls_to("answerCallbackQuery"))
    await asyncio.gather(
        fake.user(user_id=509, first_name="Một", chat_id=GROUP).press(approve),
        fake.user(user_id=510, first_name="Hai", chat_id=GROUP).press(approve),
    )
    await fake.wait_until(lambda: len(fake.calls_to("answerCallbackQuery")) >= answered + 2)
    found = await report(bot, code)
    assert found.status == ReportStatus.APPROVED
    assert await audit_actions(bot, found.id) == ["approve"]
    texts = [c.params.get("text", "") for c in fake.calls_to("answerCallbackQuery")[answered:]]
    assert sum("đã" in text and ("Một" in text or "Hai" in text) for text in texts) == 1


async def test_forged_callback_from_a_citizen_is_refused_and_logged(
    bot: Runtime, fake: FakeTelegram
) -> None:
    code = await submit_report(fake.user(user_id=2009), photos=0)
    found = await report(bot, code)
    intruder = fake.user(user_id=6666, first_name="Kẻ giả mạo")
    await intruder.send_text("/start")
    [greeting] = await intruder.wait_for_messages(1)
    assert await press(fake, intruder, f"m:ap:{found.id}:0", greeting.message_id)
    assert (await report(bot, code)).status == ReportStatus.SUBMITTED
    assert await audit_actions(bot, found.id) == ["refused"]
    await intruder.send_text(f"/history {code}")
    assert code not in await last_text(intruder)


async def test_banned_reporter_is_refused_politely(bot: Runtime, fake: FakeTelegram) -> None:
    await make_moderator(bot, 511, Role.ADMIN)
    citizen = fake.user(user_id=2010)
    code = await submit_report(citizen, photos=0)
    admin = fake.user(user_id=511)
    await admin.send_text(f"/ban {code} spam nhiều lần")
    assert code in await last_text(admin)
    await citizen.send_text("/report")
    refusal = await last_text(citizen)
    assert "không còn nhận báo cáo" in refusal
    async with bot.sessions() as session:
        bans = (await session.exec(select(AuditEntry.action))).all()
    assert "ban" in bans


async def test_moderators_get_their_command_menu(bot: Runtime, fake: FakeTelegram) -> None:
    await make_moderator(bot, 512, Role.ADMIN)
    await bot.sync_staff_menus()
    admin_menu = [c["command"] for c in fake.commands_for(scope={"type": "chat", "chat_id": 512})]
    assert {"queue", "history", "ban", "grant"} <= set(admin_menu)
    group_menu = [c["command"] for c in fake.commands_for(scope={"type": "chat", "chat_id": GROUP})]
    assert group_menu == ["queue", "history"]
    assert "queue" not in [c["command"] for c in fake.commands_for()]


async def test_queue_and_history(bot: Runtime, fake: FakeTelegram) -> None:
    await make_moderator(bot, 513)
    codes = [await submit_report(fake.user(user_id=2100 + i), name=f"Người số {i}", photos=0)
             for i in range(6)]  # fmt: skip
    moderator = fake.user(user_id=513)
    await moderator.send_text("/queue")
    [page] = await moderator.wait_for_messages(1)
    assert all(code in (page.plain_text or "") for code in codes[:5])
    assert codes[5] not in (page.plain_text or "")
    await moderator.press(next(b["callback_data"] for b in page.buttons
                               if b["callback_data"].startswith("m:q:1")))  # fmt: skip
    [second] = await moderator.wait_for_messages(1)
    assert codes[5] in (second.plain_text or "")
    await moderator.send_text(f"/history {codes[0]}")
    assert codes[0] in await last_text(moderator)


async def test_group_migration_is_followed(bot: Runtime, fake: FakeTelegram) -> None:
    await make_moderator(bot, 514)
    await bot.remember_migration("telegram", str(GROUP), "-100999")
    code = await submit_report(fake.user(user_id=2011), photos=0)
    card = await card_in(fake, -100999, code)
    assert code in (card.plain_text or "")


async def test_similar_photo_is_hinted(bot: Runtime, fake: FakeTelegram) -> None:
    await make_moderator(bot, 515)
    first = await submit_report(fake.user(user_id=2012), name="Hà Thị Mến", photos=1)
    second = await submit_report(fake.user(user_id=2013), name="Vi Văn Tâm", photos=1)
    card = await card_in(fake, GROUP, second)
    assert first in (card.plain_text or "") and "ảnh tương tự" in (card.plain_text or "")


async def test_edit_for_publication_keeps_the_original(bot: Runtime, fake: FakeTelegram) -> None:
    await make_moderator(bot, 516)
    code = await submit_report(fake.user(user_id=2014), photos=0)
    card = await card_in(fake, GROUP, code)
    moderator = fake.user(user_id=516, chat_id=GROUP)
    await moderator.press(data_of(card, "m:ed:"))
    [name_prompt] = await moderator.wait_for_messages(1)
    assert "<code>Lường Văn Thắng</code>" in (name_prompt.text or ""), "ready to copy"
    await moderator.send_text("Lương Văn Thắng")
    [headline_prompt] = await moderator.wait_for_messages(1)
    assert "<code>" not in (headline_prompt.text or ""), "no headline yet"
    await moderator.send_text("Người dân quân dũng cảm nơi biên giới")
    await moderator.wait_for_messages(1)
    await moderator.send_text("Anh Thắng đã dập tắt đám cháy rừng, cứu bản làng.")
    await moderator.wait_for_messages(1)
    found = await report(bot, code)
    assert found.headline == "Người dân quân dũng cảm nơi biên giới"
    assert found.public_story == "Anh Thắng đã dập tắt đám cháy rừng, cứu bản làng."
    assert found.public_name == "Lương Văn Thắng" and found.nominee_name == "Lường Văn Thắng"
    assert found.story == STORY and found.content_version == 1
    assert found.status == ReportStatus.SUBMITTED


async def test_admin_grants_a_role_in_chat(bot: Runtime, fake: FakeTelegram) -> None:
    await make_moderator(bot, 517, Role.ADMIN)
    admin = fake.user(user_id=517)
    await admin.send_text("/grant telegram:518 moderator")
    assert "telegram:518" in await last_text(admin)
    newcomer = fake.user(user_id=518)
    await newcomer.send_text("/queue")
    assert "đang chờ" in await last_text(newcomer)
    citizen = fake.user(user_id=519)
    await citizen.send_text("/grant telegram:519 admin")
    assert "quản trị" in await last_text(citizen)
    async with bot.sessions() as session:
        actions = (await session.exec(select(AuditEntry.action))).all()
    assert actions.count("grant") == 1


async def test_group_upgraded_to_supergroup_is_followed(bot: Runtime, fake: FakeTelegram) -> None:
    await make_moderator(bot, 520)
    await fake.push_update(
        {
            "message": {
                "message_id": 99, "date": 0, "chat": {"id": GROUP, "type": "group"},
                "from": {"id": 520, "is_bot": False, "first_name": "Mod"},
                "migrate_to_chat_id": -1007770001,
            }
        }
    )  # fmt: skip
    await fake.wait_until(lambda: not fake.pending_updates)
    code = await submit_report(fake.user(user_id=2015), photos=0)
    card = await card_in(fake, -1007770001, code)
    assert code in (card.plain_text or "")


async def test_history_never_names_the_reporter(bot: Runtime, fake: FakeTelegram) -> None:
    await make_moderator(bot, 521)
    citizen = fake.user(user_id=2016, first_name="Tên Thật Của Người Báo Cáo")
    code = await submit_report(citizen, photos=0)
    card = await card_in(fake, GROUP, code)
    moderator = fake.user(user_id=521, chat_id=GROUP)
    await moderator.press(data_of(card, "m:aq:"))
    await moderator.wait_for_messages(1)
    await moderator.send_text("Ai đã chứng kiến?")
    await moderator.wait_for_messages(1)
    await citizen.wait_for_messages(1)
    await citizen.press(f"a:start:{card_report_id(card)}")
    await citizen.wait_for_messages(1)
    await citizen.send_text("Cả bản đều thấy.")
    await citizen.wait_for_messages(1)
    await citizen.press(f"a:done:{card_report_id(card)}")
    await citizen.wait_for_messages(1)
    await moderator.send_text(f"/history {code}")
    await fake.wait_until(lambda: "Lịch sử" in (moderator.inbox[-1].plain_text or ""))
    history = moderator.inbox[-1].plain_text or ""
    assert "người báo cáo · trả lời" in history
    assert "Tên Thật" not in history and "2016" not in history


async def test_cancel_abandons_a_prompt_and_needs_info_can_be_rejected(
    bot: Runtime, fake: FakeTelegram
) -> None:
    await make_moderator(bot, 522)
    code = await submit_report(fake.user(user_id=2017), photos=0)
    card = await card_in(fake, GROUP, code)
    moderator = fake.user(user_id=522)  # a moderator working in a private chat
    await moderator.send_text("/queue")
    await moderator.wait_for_messages(1)
    await moderator.press_data(f"m:ro:{card_report_id(card)}:0", moderator.inbox[-1].message_id)
    await moderator.wait_for_messages(1)
    await moderator.send_text("/cancel")
    await moderator.wait_for_messages(1)
    await moderator.send_text("Hoàng Văn Nam")  # not a reason any more
    await moderator.wait_for_messages(1)
    assert (await report(bot, code)).status == ReportStatus.SUBMITTED

    await moderator.press_data(f"m:aq:{card_report_id(card)}:0", moderator.inbox[-1].message_id)
    await moderator.wait_for_messages(1)
    await moderator.send_text("x" * 1200)
    assert "1200" in await last_text(moderator)
    await moderator.send_text("Có ảnh không?")
    await moderator.wait_for_messages(1)
    assert (await report(bot, code)).status == ReportStatus.NEEDS_INFO
    rejected = await press(
        fake, moderator, f"m:rr:{card_report_id(card)}:0:0", moderator.inbox[-1].message_id
    )
    assert code in rejected
    assert (await report(bot, code)).status == ReportStatus.REJECTED


async def test_moderation_stays_out_of_other_groups(bot: Runtime, fake: FakeTelegram) -> None:
    await make_moderator(bot, 522)
    code = await submit_report(fake.user(user_id=2017), photos=0)
    found = await report(bot, code)
    village = fake.user(user_id=2018, chat_id=-100777, chat_title="Hội nông dân xã")
    moderator = fake.user(user_id=522).in_chat(-100777)
    await village.send_text("/queue")
    await moderator.send_text("/queue")
    [refusal] = await moderator.wait_for_messages(1)
    assert "chỉ làm trong nhóm kiểm duyệt" in (refusal.plain_text or "")
    await moderator.send_text(f"/history {code}")
    await moderator.wait_for_messages(1)
    opened = await press(fake, moderator, f"m:op:{found.id}:{found.content_version}", 1)
    assert "chỉ làm trong nhóm kiểm duyệt" in opened
    in_moderators_group = moderator.in_chat(GROUP)
    await in_moderators_group.send_text("/queue")
    assert code in await last_text(in_moderators_group)
    leaked = [m.plain_text or "" for m in village.inbox]
    assert len(leaked) == 2
    assert not [text for text in leaked if code in text or "Nông Thị Hoa" in text]
