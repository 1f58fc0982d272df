"""End to end: the real python-telegram-bot Application, over HTTP, against the fake Bot API.

The bot is built by the same composition root as production (`bot.app.build_runtime`),
with TELEGRAM_API_BASE_URL pointing at the fake server; the tests act as Telegram users.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlmodel import select
from structlog.testing import capture_logs

from bot.app import Runtime, build_runtime
from bot.channels import telegram_lean
from bot.channels.telegram import WEBHOOK_SECRET_HEADER
from bot.settings import Settings
from models.tables import Report, ReportPhoto
from tests.fakes.telegram_api import TEST_TIME_SCALE, FakeTelegram, FakeUser
from tests.images import PDF, jpeg

TOKEN = "123456:TEST-TOKEN"
SECRET = "s3cret-webhook-token-for-tests"
STORY = "Chị đã nhặt được ví tiền và trả lại cho người đánh rơi ngay trong buổi chiều."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(time_scale=TEST_TIME_SCALE) as server:
        yield server


def bot_settings(settings: Settings, fake: FakeTelegram, **overrides: object) -> Settings:
    values = {
        **settings.model_dump(),
        "telegram_bot_token": TOKEN,
        "telegram_api_base_url": fake.base_url,
        "http_port": free_port(),
        **fake.pacing,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def started(settings: Settings) -> Runtime:
    runtime = build_runtime(settings)
    await runtime.start()
    return runtime


@pytest.fixture
async def bot(settings: Settings, fake: FakeTelegram) -> AsyncIterator[Runtime]:
    runtime = await started(bot_settings(settings, fake))
    yield runtime
    await runtime.stop()


async def last_text(user: FakeUser) -> str:
    [message] = await user.wait_for_messages(1)
    return message.plain_text or ""


async def stored_reports(runtime: Runtime) -> list[Report]:
    async with runtime.sessions() as session:
        return list((await session.exec(select(Report))).all())


async def test_start_sets_commands_and_greets(bot: Runtime, fake: FakeTelegram) -> None:
    vietnamese = [c["command"] for c in fake.commands_for()]
    assert vietnamese[:3] == ["start", "report", "myreports"]
    assert "cancel" in vietnamese and "lang" in vietnamese
    english = {c["command"]: c["description"] for c in fake.commands_for(language_code="en")}
    assert english["help"] == "Help"
    user = fake.user(user_id=1001, first_name="Lan")
    await user.send_text("/start")
    [greeting] = await user.wait_for_messages(1)
    assert "Chào mừng bạn Lan" in (greeting.plain_text or "")
    assert next(b["callback_data"] for b in greeting.buttons) == "menu:report"


async def test_report_with_album_document_and_contact(bot: Runtime, fake: FakeTelegram) -> None:
    user = fake.user(user_id=2002, first_name="<b>Minh</b> & co")
    await user.send_text("/start report")
    await user.wait_for_messages(1)
    await user.press("r:kind:individual")
    await user.wait_for_messages(1)
    await user.send_text("Lò Thị <i>Mai</i> & 🌸")
    await user.wait_for_messages(1)
    await user.press("Nông dân")
    await user.wait_for_messages(1)
    await user.send_text("that khe")
    await user.wait_for_messages(1)
    await user.press("r:commune:6040")
    await user.wait_for_messages(1)
    await user.send_text(STORY)
    await user.wait_for_messages(1)

    await user.send_album([jpeg(color="red"), jpeg(color="blue"), jpeg(color="white")])
    [ack] = await user.wait_for_messages(1)
    assert "3/10" in (ack.plain_text or "")
    await user.send_document(PDF, file_name="giay-khen.pdf", mime_type="application/pdf")
    assert "không phải là ảnh" in await last_text(user)
    await user.wait_for_messages(1)
    await user.send_document(jpeg(gps=True), file_name="anh.jpg", mime_type="image/jpeg")
    assert "4/10" in await last_text(user)
    await user.send_sticker()
    assert "nhãn dán" in await last_text(user)
    await user.wait_for_messages(1)
    await user.press("r:photos:done")
    await user.wait_for_messages(1)

    await user.press("r:identity:named")
    await user.wait_for_messages(1)
    await user.press("r:consent:yes")
    await user.wait_for_messages(1)
    await user.send_text("Nguyễn Văn Minh")
    [phone_question] = await user.wait_for_messages(1)
    assert phone_question.reply_markup is not None
    assert phone_question.reply_markup["keyboard"][0][0]["request_contact"] is True
    await user.send_contact("84987654321")
    saved, summary = await user.wait_for_messages(2)
    assert saved.reply_markup == {"remove_keyboard": True}
    assert "Lò Thị <i>Mai</i> & 🌸" in (summary.plain_text or "")
    await user.press("r:summary:confirm")
    confirmation = await last_text(user)

    [report] = await stored_reports(bot)
    assert report.code in confirmation
    assert report.nominee_name == "Lò Thị <i>Mai</i> & 🌸"
    assert report.reporter_phone == "+84987654321"
    async with bot.sessions() as session:
        photos = (await session.exec(select(ReportPhoto))).all()
    assert len(photos) == 4
    assert all(call.status == 200 for call in fake.calls_to("sendMessage"))


async def test_cancel_in_an_edit_keeps_the_report_and_discarding_asks_first(
    bot: Runtime, fake: FakeTelegram
) -> None:
    user = fake.user(user_id=2003)
    await user.send_text("/report")
    for press, text in (
        ("r:kind:individual", "Hà Thị Hồng"),
        ("r:group:farmer", "that khe"),
        ("r:commune:6040", STORY),
    ):
        await user.wait_for_messages(1)
        await user.press(press)
        await user.wait_for_messages(1)
        await user.send_text(text)
    for press in ("r:photos:skip", "r:identity:anonymous", "r:summary:edit", "r:edit:reporter"):
        await user.wait_for_messages(1)
        await user.press(press)
    for press in ("r:identity:named", "r:consent:yes"):
        await user.wait_for_messages(1)
        await user.press(press)
    await user.wait_for_messages(1)
    await user.send_text("Nguyễn Văn Minh")
    [phone_question] = await user.wait_for_messages(1)
    assert phone_question.reply_markup is not None and "keyboard" in phone_question.reply_markup
    await user.send_text("/cancel")
    undone, summary = await user.wait_for_messages(2)
    assert "vẫn như trước" in (undone.plain_text or "")
    assert undone.reply_markup == {"remove_keyboard": True}
    assert "ẩn danh" in (summary.plain_text or "")
    await user.press("✖️ Hủy")
    assert "bỏ báo cáo" in await last_text(user)
    await user.press("Có, bỏ báo cáo")
    discarded, menu = await user.wait_for_messages(2)
    assert "Đã bỏ báo cáo" in (discarded.plain_text or "")
    assert "menu:report" in str(menu.reply_markup)
    assert await stored_reports(bot) == []


async def test_draft_survives_a_restart(
    settings: Settings, fake: FakeTelegram, tmp_path: Path
) -> None:
    config = bot_settings(settings, fake)
    user = fake.user(user_id=3003)
    first = await started(config)
    try:
        await user.send_text("/report")
        await user.wait_for_messages(1)
        await user.press("r:kind:collective")
        await user.wait_for_messages(1)
        await user.send_text("Đội dân phòng phường Kỳ Lừa")
        await user.wait_for_messages(1)
    finally:
        await first.stop()

    second = await started(bot_settings(config, fake))
    try:
        await user.press("r:group:neighbourhood_guard")
        assert "xã hoặc phường" in await last_text(user)
        await user.send_text("ky lua")
        await user.wait_for_messages(1)
        await user.press("r:commune:6187")
        await user.wait_for_messages(1)
        await user.send_text(STORY)
        await user.wait_for_messages(1)
        await user.press("r:photos:skip")
        await user.wait_for_messages(1)
        await user.press("r:identity:anonymous")
        await user.wait_for_messages(1)
        await user.press("r:summary:confirm")
        await user.wait_for_messages(1)
        [report] = await stored_reports(second)
        assert report.nominee_name == "Đội dân phòng phường Kỳ Lừa"
        assert report.commune_name == "Phường Kỳ Lừa"
    finally:
        await second.stop()


async def test_stale_and_double_pressed_buttons(bot: Runtime, fake: FakeTelegram) -> None:
    user = fake.user(user_id=4004)
    await user.send_text("/report")
    [question] = await user.wait_for_messages(1)
    await user.press("r:kind:individual")
    await user.wait_for_messages(1)
    await user.press_data("r:kind:collective", question.message_id)
    refusal, repeated = await user.wait_for_messages(2)
    assert "không còn dùng được" in (refusal.plain_text or "")
    assert "Họ và tên" in (repeated.plain_text or "")
    assert len(fake.calls_to("answerCallbackQuery")) == 2


async def webhook_bot(settings: Settings, fake: FakeTelegram) -> tuple[Runtime, str]:
    """The bot in webhook mode on a free port, and its webhook's address."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/webhook"
    config = bot_settings(
        settings, fake, http_port=port, telegram_webhook_url=url, telegram_webhook_secret=SECRET
    )
    return await started(config), url


async def test_webhook_mode_checks_the_secret(settings: Settings, fake: FakeTelegram) -> None:
    runtime, url = await webhook_bot(settings, fake)
    try:
        [registration] = fake.calls_to("setWebhook")
        assert registration.params["secret_token"] == SECRET
        user = fake.user(user_id=5005)
        await user.send_text("/start")
        assert "Chào mừng" in await last_text(user)
        assert fake.webhook_deliveries[-1].status == 200

        forged = {
            "update_id": 1,
            "message": {
                "message_id": 1,
                "date": 0,
                "text": "/report",
                "chat": {"id": 6006, "type": "private"},
                "from": {"id": 6006, "is_bot": False, "first_name": "X"},
            },
        }
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {WEBHOOK_SECRET_HEADER: "wrong"}):
                async with http.post(url, json=forged, headers=headers) as response:
                    assert response.status == 403
            async with http.get(url.replace("/telegram/webhook", "/healthz")) as response:
                health = await response.json()
        assert health == {"status": "ok", "database": "ok", "channels": ["telegram", "web"]}
        assert fake.user(user_id=6006).inbox == []
    finally:
        await runtime.stop()


async def test_webhook_handles_a_redelivered_update_once(
    settings: Settings, fake: FakeTelegram
) -> None:
    """Telegram posts an update again when it saw no answer in time: one reply, not two."""
    runtime, url = await webhook_bot(settings, fake)
    user = fake.user(user_id=6007)
    update = {
        "update_id": 900,
        "message": {
            "message_id": 1,
            "date": 0,
            "text": "/start",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
            "chat": {"id": user.chat_id, "type": "private"},
            "from": user.user,
        },
    }
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(3):
                async with http.post(
                    url, json=update, headers={WEBHOOK_SECRET_HEADER: SECRET}
                ) as response:
                    assert response.status == 200
        assert "Chào mừng" in await last_text(user)
        await user.send_text("/help")
        await user.wait_for_messages(1)
    finally:
        await runtime.stop()
    assert len([m for m in user.inbox if "Chào mừng" in (m.plain_text or "")]) == 1


async def test_a_reply_that_failed_is_sent_again(bot: Runtime, fake: FakeTelegram) -> None:
    user = fake.user(user_id=7007)
    fake.fail_next("sendMessage", status=500)
    await user.send_text("/help")
    assert "/report" in await last_text(user)
    assert [call.status for call in fake.calls_to("sendMessage")] == [500, 200]


async def test_a_send_slower_than_polling_allows_is_waited_for_not_repeated(
    bot: Runtime, fake: FakeTelegram
) -> None:
    """The Bot API stalls 12 s on a reply (over a 10 s timeout, but sends may take longer):
    the reply is sent once."""
    user = fake.user(user_id=7008)
    fake.stall("sendMessage", 12)
    await user.send_text("/help")
    await fake.wait_until(lambda: bool(fake.calls_to("sendMessage")), timeout=40, what="a send")
    assert [call.status for call in fake.calls_to("sendMessage")] == [200]
    assert len(user.inbox) == 1


async def test_a_send_that_may_have_gone_through_is_counted_when_sent_again(
    bot: Runtime, fake: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stall past the send timeout: Telegram sent the reply but the bot never heard, so
    it sends it again; the log counts that in-flight duplicate."""
    monkeypatch.setattr(telegram_lean, "SEND_TIMEOUT_SECONDS", 1.0)
    user = fake.user(user_id=7009)
    fake.stall("sendMessage", 3)
    with capture_logs() as logs:
        await user.send_text("/help")
        first, again = await user.wait_for_messages(2, timeout=30)
    assert first.plain_text == again.plain_text
    [duplicate] = [line for line in logs if line["event"] == "telegram.send.maybe_duplicate"]
    assert duplicate["chat_id"] == str(user.chat_id)
