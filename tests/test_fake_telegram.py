"""The fake Bot API server, driven by the real python-telegram-bot Bot and Application."""

from __future__ import annotations

import asyncio
import datetime as dtm
import html
from collections.abc import AsyncIterator
from io import BytesIO
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from PIL import Image
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Conflict, Forbidden, RetryAfter
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters

from tests.fakes.telegram_api import FakeTelegram

TOKEN = "123456:TEST-token"


def png(width: int, height: int, color: str = "red") -> bytes:
    buffer = BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    """Per-chat limits off (time_scale 0): these tests look at other rules; the limits have
    their own test below."""
    async with FakeTelegram(webhook_retry_delay=0.01, time_scale=0.0) as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(
        TOKEN, base_url=f"{fake.base_url}/bot", base_file_url=f"{fake.base_url}/file/bot"
    ) as real_bot:
        yield real_bot


def build_application(fake: FakeTelegram) -> Application[Any, Any, Any, Any, Any, Any]:
    return (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(f"{fake.base_url}/bot")
        .base_file_url(f"{fake.base_url}/file/bot")
        .build()
    )


async def test_get_me_is_the_test_bot(bot: Bot) -> None:
    assert bot.id == 999000
    assert bot.username == "guongsang_test_bot"


async def test_send_message_is_recorded_and_reaches_the_inbox(fake: FakeTelegram, bot: Bot) -> None:
    user = fake.user(user_id=1001, first_name="Lan")
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Đồng ý", callback_data="ok:1")]])

    first = await bot.send_message(
        1001, "<b>Xin chào</b> Lan 👋", parse_mode=ParseMode.HTML, reply_markup=keyboard
    )
    second = await bot.send_message(1001, "lần hai")

    assert first.text == "Xin chào Lan 👋"
    assert [(e.type, e.offset, e.length) for e in first.entities] == [("bold", 0, 8)]
    assert first.reply_markup == keyboard
    assert first.chat.first_name == "Lan"
    assert second.message_id == first.message_id + 1
    [call, _] = fake.calls_to("sendMessage")
    assert call.status == 200
    assert call.params == {
        "chat_id": 1001,
        "text": "<b>Xin chào</b> Lan 👋",
        "parse_mode": "HTML",
        "reply_markup": {"inline_keyboard": [[{"text": "Đồng ý", "callback_data": "ok:1"}]]},
    }
    [shown, _] = await user.wait_for_messages(2)
    assert shown.plain_text == "Xin chào Lan 👋"
    assert shown.text == "<b>Xin chào</b> Lan 👋"
    assert shown.parse_mode == "HTML"
    assert shown.buttons == [{"text": "Đồng ý", "callback_data": "ok:1"}]


async def test_send_message_to_an_unknown_chat_creates_it(fake: FakeTelegram, bot: Bot) -> None:
    message = await bot.send_message(-1001234, "hello group")

    assert message.chat.type == "supergroup"
    assert (await bot.get_chat(-1001234)).id == -1001234


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        "Tom & Jerry",
        "a < b",
        "<b>unclosed",
        "<b><i>crossed</b></i>",
        '<span class="other">x</span>',
    ],
)
async def test_bad_html_cannot_be_parsed(bot: Bot, text: str) -> None:
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(1001, text, parse_mode=ParseMode.HTML)


async def test_escaped_html_passes_unchanged(bot: Bot) -> None:
    text = "<script> & \"quotes\" 'n' &amp; > <"

    message = await bot.send_message(1001, html.escape(text), parse_mode=ParseMode.HTML)

    assert message.text == text
    assert message.entities == ()


async def test_html_links_and_numeric_references_become_entities(bot: Bot) -> None:
    message = await bot.send_message(
        1001,
        '&#128512; <a href="https://example.org/?a=1&amp;b=2">link</a> <tg-spoiler>x</tg-spoiler>',
        parse_mode=ParseMode.HTML,
    )

    assert message.text == "😀 link x"
    [link, spoiler] = message.entities
    assert (link.type, link.offset, link.length, link.url) == (
        "text_link",
        3,  # the emoji is two UTF-16 code units
        4,
        "https://example.org/?a=1&b=2",
    )
    assert (spoiler.type, spoiler.offset) == ("spoiler", 8)


async def test_text_length_is_counted_in_utf16_after_parsing(bot: Bot) -> None:
    await bot.send_message(1001, "<b>" + "a" * 4096 + "</b>", parse_mode=ParseMode.HTML)

    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(1001, "a" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(1001, "😀" * 2049)  # 2049 characters, 4098 code units
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(1001, "<b> </b>", parse_mode=ParseMode.HTML)


async def test_callback_data_over_64_bytes_is_rejected(bot: Bot) -> None:
    fits = InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="é" * 32)]])
    too_big = InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="é" * 33)]])

    await bot.send_message(1001, "fits", reply_markup=fits)
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(1001, "too big", reply_markup=too_big)


async def test_each_chat_takes_a_short_burst_then_one_message_a_second() -> None:
    async with (
        FakeTelegram() as strict,
        Bot(
            TOKEN, base_url=f"{strict.base_url}/bot", base_file_url=f"{strict.base_url}/file/bot"
        ) as sender,
    ):
        for _ in range(3):
            await sender.send_message(1001, "burst")
        with pytest.raises(RetryAfter) as raised:
            await sender.send_message(1001, "one too many")
        await sender.send_message(1002, "another chat is not held up")
        for number in range(20):
            await sender.send_message(-100777, f"group {number}")
        with pytest.raises(RetryAfter):
            await sender.send_message(-100777, "the twenty-first in a minute")
    assert raised.value.retry_after in (1, dtm.timedelta(seconds=1))
    assert strict.chat_limited == 2


async def test_injected_429_raises_retry_after(
    fake: FakeTelegram, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # retry_after as a timedelta, no warning
    fake.fail_next("sendMessage", status=429, retry_after=7)

    with pytest.raises(RetryAfter) as raised:
        await bot.send_message(1001, "hi")
    await bot.send_message(1001, "hi again")

    assert raised.value.retry_after == dtm.timedelta(seconds=7)
    assert [call.status for call in fake.calls_to("sendMessage")] == [429, 200]
    assert fake.calls_to("sendMessage")[0].response["parameters"] == {"retry_after": 7}


async def test_injected_403_and_blocked_chats_raise_forbidden(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail_next("SENDMESSAGE", status=403, description="Forbidden: bot was blocked by the user")
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(1001, "hi")

    fake.block(1002)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_photo(1002, png(10, 10))
    await bot.send_message(1001, "still fine for someone else")
    fake.unblock(1002)
    await bot.send_message(1002, "unblocked")


async def test_get_file_downloads_a_users_photo(fake: FakeTelegram, bot: Bot) -> None:
    data = png(1000, 500)
    update = await fake.user().send_photo(data, caption="người tốt")

    sizes = update["message"]["photo"]
    assert [(size["width"], size["height"]) for size in sizes] == [
        (90, 45),
        (320, 160),
        (800, 400),
        (1000, 500),
    ]
    file = await bot.get_file(sizes[-1]["file_id"])
    buffer = BytesIO()
    await file.download_to_memory(buffer)
    assert buffer.getvalue() == data
    assert file.file_size == len(data)


async def test_send_photo_stores_the_uploaded_bytes(fake: FakeTelegram, bot: Bot) -> None:
    user = fake.user()
    data = png(40, 30)

    message = await bot.send_photo(
        user.chat_id, data, caption="<i>Gương sáng</i>", parse_mode=ParseMode.HTML
    )
    again = await bot.send_photo(user.chat_id, message.photo[-1].file_id)

    assert fake.calls_to("sendPhoto")[0].files == {"photo": data}
    assert [upload.data for upload in fake.uploads] == [data]
    assert message.caption == "Gương sáng"
    assert again.photo[-1].file_id == message.photo[-1].file_id
    [first, second] = await user.wait_for_messages(2)
    assert first.media[0].data == data
    assert second.media == first.media
    with pytest.raises(BadRequest, match=r"(?i)message caption is too long"):
        await bot.send_photo(user.chat_id, data, caption="x" * 1025)


async def test_send_media_group_uploads_attached_files(fake: FakeTelegram, bot: Bot) -> None:
    photos = [png(20, 20, "red"), png(20, 20, "blue")]

    messages = await bot.send_media_group(
        1001, [InputMediaPhoto(photos[0], caption="album"), InputMediaPhoto(photos[1])]
    )

    assert len({message.media_group_id for message in messages}) == 1
    assert messages[0].caption == "album"
    [call] = fake.calls_to("sendMediaGroup")
    attached = [item["media"].removeprefix("attach://") for item in call.params["media"]]
    assert [call.files[name] for name in attached] == photos
    with pytest.raises(BadRequest, match=r"(?i)wrong number of media"):
        await bot.send_media_group(1001, [InputMediaPhoto(photos[0])])


async def test_press_edit_and_answer_a_callback(fake: FakeTelegram, bot: Bot) -> None:
    user = fake.user()
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Duyệt", callback_data="approve:7")]])
    sent = await bot.send_message(user.chat_id, "Báo cáo #7", reply_markup=keyboard)

    update = Update.de_json(await user.press("Duyệt"), bot)

    query = update.callback_query
    assert query is not None and query.message is not None
    assert (query.data, query.message.message_id) == ("approve:7", sent.message_id)
    assert await query.answer("Đã duyệt")
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await query.answer()

    await bot.edit_message_text("Báo cáo #7: đã duyệt", user.chat_id, sent.message_id)
    [shown] = user.inbox
    assert shown.edited and shown.buttons == []  # editing without reply_markup removes it
    assert shown.history[0]["text"] == "Báo cáo #7"
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("Báo cáo #7: đã duyệt", user.chat_id, sent.message_id)
    with pytest.raises(AssertionError, match="no inline button 'Duyệt'"):
        await user.press("Duyệt")


async def test_commands_are_stored_per_scope_and_language(fake: FakeTelegram, bot: Bot) -> None:
    default = [BotCommand("start", "Bắt đầu")]
    for_admin = [BotCommand("queue", "Review queue")]

    await bot.set_my_commands(default)
    await bot.set_my_commands(for_admin, scope=BotCommandScopeChat(42), language_code="en")

    assert await bot.get_my_commands() == tuple(default)
    assert await bot.get_my_commands(scope=BotCommandScopeChat(42), language_code="en") == tuple(
        for_admin
    )
    assert fake.commands_for({"type": "chat", "chat_id": 42}, "en") == [
        {"command": "queue", "description": "Review queue"}
    ]
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Start", "capital letter")])


async def test_get_updates_honours_offset_limit_and_allowed_updates(
    fake: FakeTelegram, bot: Bot
) -> None:
    user = fake.user()
    for text in ("one", "two", "three"):
        await user.send_text(text)

    first_two = await bot.get_updates(limit=2)
    rest = await bot.get_updates(offset=first_two[-1].update_id + 1)
    only_callbacks = await bot.get_updates(allowed_updates=["callback_query"])

    assert [u.message.text for u in first_two if u.message] == ["one", "two"]
    assert [u.message.text for u in rest if u.message] == ["three"]
    assert only_callbacks == ()


async def test_long_poll_returns_when_an_update_arrives(fake: FakeTelegram, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await fake.wait_until(lambda: fake.waiting_polls == 1, what="the long poll to start")

    await fake.user().send_text("/start report")
    [update] = await asyncio.wait_for(poll, timeout=5)

    assert update.message is not None
    assert update.message.text == "/start report"
    assert [(e.type, e.length) for e in update.message.entities] == [("bot_command", 6)]


async def test_a_second_bot_instance_terminates_the_first_poll(
    fake: FakeTelegram, bot: Bot
) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=30))
    await fake.wait_until(lambda: fake.waiting_polls == 1, what="the long poll to start")

    async with Bot(TOKEN, base_url=f"{fake.base_url}/bot") as second_instance:
        assert await second_instance.get_updates() == ()
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await first


async def test_unknown_method_and_raw_json_requests(fake: FakeTelegram) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{fake.base_url}/bot{TOKEN}/sendCarrierPigeon") as response:
            assert response.status == 404
            assert await response.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found",
            }
        async with session.post(
            f"{fake.base_url}/bot{TOKEN}/SENDMESSAGE", json={"chat_id": 5, "text": "json body"}
        ) as response:
            body = await response.json()

    assert body["ok"] is True
    assert body["result"]["text"] == "json body"
    assert fake.calls[-1].method == "sendMessage"


async def test_polling_application_echoes_text_and_receives_albums(fake: FakeTelegram) -> None:
    album_updates: list[Update] = []

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None and update.effective_message.text
        await update.effective_message.reply_text(update.effective_message.text)

    async def collect_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        album_updates.append(update)

    application = build_application(fake)
    application.add_handler(MessageHandler(filters.TEXT, echo))
    application.add_handler(MessageHandler(filters.PHOTO, collect_photo))
    user = fake.user(first_name="Minh", language_code="vi")

    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(timeout=1)

        await user.send_text("Xin chào bot")
        [reply] = await user.wait_for_messages(1)
        await user.send_album([png(30, 20), png(20, 30), png(10, 10)])
        await fake.wait_until(lambda: len(album_updates) == 3, what="three album updates")

        await application.updater.stop()
        await application.stop()

    assert reply.plain_text == "Xin chào bot"
    group_ids = {u.message.media_group_id for u in album_updates if u.message}
    assert len(group_ids) == 1 and None not in group_ids
    assert fake.pending_updates == []  # the final getUpdates confirmed everything


async def test_webhook_posts_updates_with_the_secret(fake: FakeTelegram, bot: Bot) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []

    async def receive(request: web.Request) -> web.Response:
        received.append(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
        )
        return web.Response()

    receiver = web.Application()
    receiver.router.add_post("/hook", receive)
    runner = web.AppRunner(receiver)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        await bot.set_webhook(f"http://{host}:{port}/hook", secret_token="s3cret-token")
        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates()

        update = await fake.user().send_text("qua webhook")
        await fake.wait_until(lambda: bool(received), what="the webhook delivery")

        assert received == [("s3cret-token", update)]
        assert [d.status for d in fake.webhook_deliveries] == [200]
        info = await bot.get_webhook_info()
        assert info.url == f"http://{host}:{port}/hook"
        assert info.pending_update_count == 0
    finally:
        await bot.delete_webhook()
        await runner.cleanup()


async def test_set_webhook_terminates_a_waiting_long_poll(fake: FakeTelegram, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await fake.wait_until(lambda: fake.waiting_polls == 1, what="the long poll to start")

    await bot.set_webhook("http://127.0.0.1:9/unreachable")

    with pytest.raises(Conflict, match="terminated by setWebhook"):
        await poll
    await bot.delete_webhook(drop_pending_updates=True)


async def test_user_updates_parse_as_real_telegram_objects(fake: FakeTelegram, bot: Bot) -> None:
    lan = fake.user(user_id=1001, first_name="Lan")
    in_group = lan.in_chat(-100555, title="Tình nguyện viên")

    contact = Update.de_json(await lan.send_contact("+84901234567"), bot).effective_message
    document = Update.de_json(
        await lan.send_document(b"%PDF-1.4", "giay-khen.pdf", "application/pdf"), bot
    ).effective_message
    sticker = Update.de_json(await lan.send_sticker(), bot).effective_message
    video = Update.de_json(await lan.send_video(), bot).effective_message
    voice = Update.de_json(await lan.send_voice(), bot).effective_message
    group_text = Update.de_json(await in_group.send_text("/help@guongsang_test_bot"), bot)

    assert contact and contact.contact and contact.contact.user_id == 1001
    assert document and document.document and document.document.file_name == "giay-khen.pdf"
    assert sticker and sticker.sticker and video and video.video and voice and voice.voice
    assert group_text.effective_chat and group_text.effective_chat.type == "supergroup"
    assert group_text.effective_user and group_text.effective_user.id == 1001
    assert group_text.effective_message and group_text.effective_message.entities[0].length == 24
    assert [m.message_id for m in (contact, document, sticker, video, voice)] == [1, 2, 3, 4, 5]
    assert (await bot.get_chat(1001)).first_name == "Lan"


async def test_stale_presses_deletes_and_caption_edits(fake: FakeTelegram, bot: Bot) -> None:
    user = fake.user()
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Xoá", callback_data="delete")]])
    photo = await bot.send_photo(user.chat_id, png(8, 8), caption="cũ", reply_markup=keyboard)

    await bot.edit_message_caption(user.chat_id, photo.message_id, caption="mới")
    await bot.edit_message_reply_markup(user.chat_id, photo.message_id, reply_markup=keyboard)
    await bot.delete_message(user.chat_id, photo.message_id)
    stale = Update.de_json(await user.press_data("delete", photo.message_id), bot)

    [shown] = user.inbox
    assert shown.deleted and shown.plain_text == "mới" and len(shown.history) == 2
    assert stale.callback_query and stale.callback_query.data == "delete"
    assert stale.callback_query.message and not stale.callback_query.message.is_accessible
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(user.chat_id, photo.message_id)
    with pytest.raises(AssertionError, match="no inline button 'Xoá'"):
        await user.press("Xoá")


async def test_send_document_upload_and_wait_timeout(fake: FakeTelegram, bot: Bot) -> None:
    user = fake.user()

    await bot.send_document(user.chat_id, b"a,b\n1,2\n", filename="report.csv")

    [document] = fake.uploads
    assert (document.data, document.details["file_name"]) == (b"a,b\n1,2\n", "report.csv")
    [shown] = await user.wait_for_messages(1)
    assert shown.media == [document]
    with pytest.raises(
        AssertionError, match=r"(?s)expected 1 new message.*#1 sendDocument: media=\['document'\]"
    ):
        await user.wait_for_messages(1, timeout=0.05)


async def test_failed_webhook_deliveries_are_retried(fake: FakeTelegram, bot: Bot) -> None:
    statuses = [500, 200]

    async def receive(request: web.Request) -> web.Response:
        return web.Response(status=statuses.pop(0))

    receiver = web.Application()
    receiver.router.add_post("/hook", receive)
    runner = web.AppRunner(receiver)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        await bot.set_webhook(f"http://{host}:{port}/hook")
        update = await fake.user().send_text("retry me")
        await fake.wait_until(lambda: len(fake.webhook_deliveries) == 2, what="two deliveries")

        assert [(d.update_id, d.status) for d in fake.webhook_deliveries] == [
            (update["update_id"], 500),
            (update["update_id"], 200),
        ]
        info = await bot.get_webhook_info()
        assert (
            info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
        )
        assert info.pending_update_count == 0
    finally:
        await bot.delete_webhook()
        await runner.cleanup()
