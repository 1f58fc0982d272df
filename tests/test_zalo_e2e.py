"""End to end on Zalo: the bot's own client, over HTTP, against the fake Zalo Bot API.

The bot is built by the production composition root (`bot.app.build_runtime`) with
ZALO_API_BASE_URL pointing at the fake; tests act as Zalo users, who answer numbered
menus by number or by words. Storage is real: SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from sqlmodel import col, func, select

from bot.app import Runtime, build_runtime
from bot.channels.zalo import ZaloChannel
from bot.settings import Settings
from handlers.broadcasting import publish_approved, start_due
from models.people import grant_role
from models.tables import (
    AuditEntry,
    InboundReceipt,
    Person,
    Report,
    ReportPhoto,
    ReportStatus,
    Role,
)
from tests.fakes.telegram_api import TEST_TIME_SCALE, FakeTelegram
from tests.fakes.zalo_api import FakeZalo, ZaloUser
from tests.images import jpeg
from tests.test_moderation_e2e import GROUP, card_in, data_of
from tests.webchat import free_port, wait_for_health

TOKEN = "7000000000000000001:zAlO-sEcReT-tOkEn-value"
SECRET = "zalo-webhook-secret-for-tests"
STORY = "Chị đã nhặt được ví tiền và trả lại cho người đánh rơi ngay trong buổi chiều."


@pytest.fixture
async def zalo() -> AsyncIterator[FakeZalo]:
    async with FakeZalo(TOKEN) as fake:
        yield fake


def zalo_settings(settings: Settings, fake: FakeZalo, **overrides: object) -> Settings:
    port = free_port()
    values = {
        **settings.model_dump(),
        "zalo_bot_token": TOKEN,
        "zalo_api_base_url": fake.base_url,
        "zalo_media_allowed_hosts": "127.0.0.1",
        "http_port": port,
        "public_base_url": f"http://127.0.0.1:{port}",
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def webhook_settings(settings: Settings, fake: FakeZalo, **overrides: object) -> Settings:
    port = free_port()
    return zalo_settings(
        settings,
        fake,
        http_port=port,
        public_base_url=f"http://127.0.0.1:{port}",
        zalo_webhook_url=f"http://127.0.0.1:{port}/zalo/webhook",
        zalo_webhook_secret=SECRET,
        **overrides,
    )


@asynccontextmanager
async def running(config: Settings) -> AsyncIterator[Runtime]:
    runtime = build_runtime(config)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


def number_of(menu: str, fragment: str) -> str:
    """The number of the menu line that contains `fragment`."""
    for line in menu.splitlines():
        found = re.match(r"(\d+)\. (.*)", line)
        if found and fragment in found.group(2):
            return found.group(1)
    raise AssertionError(f"no option {fragment!r} in:\n{menu}")


async def report_on_zalo(user: ZaloUser, name: str = "Lò Thị Mai") -> str:
    """A whole report through numbered menus, by numbers and by words; returns its code."""
    kind = await user.reply("/report")
    assert "1. Cá nhân" in kind and "Trả lời bằng số" in kind
    assert "Họ và tên" in await user.reply(number_of(kind, "Cá nhân"))
    assert "thuộc đối tượng nào" in await user.reply(name)
    assert "xã hoặc phường" in await user.reply("nong dan")  # "Nông dân", without diacritics
    results = await user.reply("that khe")
    assert "làm việc tốt gì" in await user.reply(number_of(results, "Thất Khê"))
    await user.reply(STORY)
    await user.send_photo(jpeg(color="red"))
    assert "(1/10)" in (await user.wait_for_messages(1))[0].text
    await user.send_photo(jpeg(color="blue"), key="photo")
    assert "(2/10)" in (await user.wait_for_messages(1))[0].text
    identity = await user.reply("xong")  # "✅ Xong"
    summary = await user.reply(number_of(identity, "Gửi ẩn danh"))
    assert name in summary and "Số ảnh: 2" in summary
    done = await user.reply("xac nhan va gui")
    return done[done.index("GS-") : done.index("GS-") + 14]


async def reports(runtime: Runtime) -> list[Report]:
    async with runtime.sessions() as session:
        return list((await session.exec(select(Report))).all())


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_citizen_reports_with_two_photos_through_numbered_menus(
    settings: Settings, zalo: FakeZalo, mode: str
) -> None:
    config = (webhook_settings if mode == "webhook" else zalo_settings)(settings, zalo)
    async with running(config) as runtime:
        assert "zalo" in runtime.channels and "telegram" not in runtime.channels
        assert not runtime.channels["web"].sandbox
        user = zalo.user("u-citizen-1", "Nguyễn Văn Minh")
        code = await report_on_zalo(user)
        [report] = await reports(runtime)
        assert report.code == code and report.channel == "zalo"
        assert report.nominee_group == "farmer" and report.commune_code == 6040
        mine = await user.reply("/myreports")
        assert "Tình trạng" in await user.reply(number_of(mine, code))
        async with runtime.sessions() as session:
            photos = (await session.exec(select(ReportPhoto))).all()
        assert len(photos) == 2
        assert all(
            len(call.params.get("text", "")) <= 2000 for call in zalo.calls_to("sendMessage")
        )
        assert zalo.calls_to("sendChatAction")
    if mode == "webhook":
        [registration] = zalo.calls_to("setWebhook")
        assert registration.params["secret_token"] == SECRET
        assert zalo.calls_to("getWebhookInfo")
        assert {delivery.status for delivery in zalo.state.deliveries} == {200}
    else:
        assert zalo.calls_to("deleteWebhook") and zalo.calls_to("getUpdates")


async def test_menu_answer_survives_a_restart(settings: Settings, zalo: FakeZalo) -> None:
    config = zalo_settings(settings, zalo)
    user = zalo.user("u-restart")
    async with running(config):
        kind = await user.reply("/report")
    assert number_of(kind, "Tập thể") == "2"
    async with running(zalo_settings(config, zalo)):
        assert "Tên của tập thể" in await user.reply("2")


async def test_words_answer_the_latest_question_not_an_older_menu(
    settings: Settings, zalo: FakeZalo
) -> None:
    """After the group menu comes the commune question: "nong" is a commune search there,
    not the group "Nông dân" of the menu before (refused as an old choice); a number still
    picks from the menu."""
    async with running(zalo_settings(settings, zalo)):
        user = zalo.user("u-words")
        await user.reply("/report")
        await user.reply("1")
        groups = await user.reply("Lò Văn Páo")
        assert "xã hoặc phường" in await user.reply(number_of(groups, "Nông dân"))
        searched = await user.reply("nong")
        assert "không còn dùng được" not in searched and "Nông dân" not in searched
        assert "không còn dùng được" in await user.reply(number_of(groups, "Công nhân"))


async def test_replies_refused_with_429_arrive_after_the_wait_in_order(
    settings: Settings, zalo: FakeZalo
) -> None:
    async with running(zalo_settings(settings, zalo)):
        user = zalo.user("u-429")
        zalo.fail_next("sendMessage", status=429, retry_after=1)
        await user.send_text("/help")
        await user.send_text("/movements")
        first, second = await user.wait_for_messages(2)
        assert "/report" in first.text and "phong trào" in second.text.lower()
        assert [call.status for call in zalo.calls_to("sendMessage")][:2] == [429, 200]


async def test_bad_inputs_get_clear_messages(settings: Settings, zalo: FakeZalo) -> None:
    async with running(zalo_settings(settings, zalo)):
        user = zalo.user("u-bad-inputs")
        await user.send_sticker()
        idle = await _last(user)
        assert "không dùng được nhãn dán" in idle and "1. 📝" in idle
        kind = await user.reply("/report")
        assert "1 đến 2" in await user.reply("7")
        await user.send_sticker()
        assert "không dùng được nhãn dán" in await _last(user)
        await user.wait_for_messages(1)  # the question, asked again
        await user.send_unsupported()
        assert "không dùng được loại tin nhắn này" in await _last(user)
        await user.wait_for_messages(1)
        await user.send_photo(jpeg(), expired=True)
        assert "chưa nhận được ảnh này" in await _last(user)
        assert "Họ và tên" in await user.reply(number_of(kind, "Cá nhân"))


async def test_cancel_asks_before_discarding_and_understands_co_and_khong(
    settings: Settings, zalo: FakeZalo
) -> None:
    async with running(zalo_settings(settings, zalo)) as runtime:
        user = zalo.user("u-cancel")
        await user.reply("/report")
        await user.reply("1")
        await user.reply("Hà Văn Tú")
        question = await user.reply("/cancel")
        assert "1. Có, bỏ báo cáo" in question and "2. Không, giữ lại" in question
        await user.send_text("khong")
        kept, group = await user.wait_for_messages(2)
        assert "vẫn được giữ" in kept.text and "thuộc đối tượng nào" in group.text
        await user.reply("/cancel")
        await user.send_text("co")
        assert "Đã bỏ báo cáo" in await _last(user)
        assert "Chọn việc bạn muốn làm" in await user.reply("nong dan")
        assert await reports(runtime) == []


async def _last(user: ZaloUser) -> str:
    [message] = await user.wait_for_messages(1)
    return message.text


async def test_webhook_refuses_a_wrong_secret_and_takes_each_message_once(
    settings: Settings, zalo: FakeZalo
) -> None:
    config = webhook_settings(settings, zalo)
    stranger = zalo.user("u-stranger")
    user = zalo.user("u-twice")
    greeting = user.update("message.text.received", text="/start")
    async with running(config) as runtime:
        forged = stranger.update("message.text.received", text="/report")
        for secret in (None, "wrong-secret", SECRET[:-1]):
            assert await zalo.post_webhook(forged, secret=secret) == 403
        async with runtime.sessions() as session:
            assert (await session.exec(select(Person).where(Person.channel == "zalo"))).all() == []
            assert (await session.exec(select(InboundReceipt))).all() == []

        assert await zalo.post_webhook(greeting, secret=SECRET, wrapped=False) == 200
        assert "Chào mừng" in await _last(user)
        assert await zalo.post_webhook(greeting, secret=SECRET) == 200
    async with running(config) as runtime:
        assert await zalo.post_webhook(greeting, secret=SECRET) == 200
        assert "Tôi có thể giúp bạn" in await user.reply("/help")
        assert len(user.inbox) == 2
        async with runtime.sessions() as session:
            count = (await session.exec(select(func.count()).select_from(InboundReceipt))).one()
        assert count == 2
    assert stranger.inbox == []


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_follows_unfollows_and_unknown_events_are_ignored(
    settings: Settings, zalo: FakeZalo, mode: str
) -> None:
    config = (webhook_settings if mode == "webhook" else zalo_settings)(settings, zalo)
    async with running(config) as runtime:
        user = zalo.user("u-follower")
        for event in ("follow", "unfollow", "user.received.something_new"):
            await user.send(user.event(event))
        await user.send(user.update("user.seen_message"))  # a message, but not a message event
        await user.send({"event_name": "follow"})
        assert "Tôi có thể giúp bạn" in await user.reply("/help")
        assert len(user.inbox) == 1
        assert (await wait_for_health(runtime, "ok"))["channels"] == ["web", "zalo"]
    if mode == "webhook":
        assert [delivery.status for delivery in zalo.state.deliveries] == [200] * 6


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_updates_that_fail_do_not_stop_the_next_ones(
    settings: Settings, zalo: FakeZalo, mode: str
) -> None:
    """A message id longer than receipts keep: PostgreSQL refuses it (SQLite takes it)."""
    config = (webhook_settings if mode == "webhook" else zalo_settings)(settings, zalo)
    async with running(config):
        user = zalo.user("u-odd-id")
        odd = user.update("message.text.received", text="/start")
        odd["message"]["message_id"] = "9" * 500
        await user.send(odd)
        await user.send(odd)
        await user.send_text("/help")
        await zalo.wait_until(
            lambda: any("Tôi có thể giúp bạn" in sent.text for sent in user.inbox),
            what="the answer to /help",
        )
    if mode == "webhook":
        assert [delivery.status for delivery in zalo.state.deliveries] == [200] * 3


async def test_polling_that_dies_is_restarted_and_unhealthy_meanwhile(
    settings: Settings, zalo: FakeZalo
) -> None:
    async with running(zalo_settings(settings, zalo)) as runtime:
        channel = runtime.channels["zalo"]
        assert isinstance(channel, ZaloChannel)
        broken = asyncio.Event()
        get_updates = channel.client.get_updates

        async def failing(wait_seconds: int) -> list[dict[str, Any]]:
            if broken.is_set():
                raise RuntimeError("a bug in the loop")
            return await get_updates(wait_seconds)

        channel.client.get_updates = failing  # type: ignore[method-assign]
        broken.set()
        report = await wait_for_health(runtime, "unhealthy")
        assert report["problems"] == ["zalo: polling stopped (RuntimeError)"]
        assert report["database"] == "ok"
        broken.clear()
        user = zalo.user("u-after-restart")
        assert "Tôi có thể giúp bạn" in await user.reply("/help")
        await wait_for_health(runtime, "ok")


async def grant(runtime: Runtime, channel: str, external_id: str) -> None:
    async with runtime.sessions() as session, session.begin():
        await grant_role(session, channel, external_id, Role.MODERATOR, granted_by="test")


async def card_for(moderator: ZaloUser, code: str) -> str:
    """Wait for the card of `code` in the moderator's chat (its photos come first)."""
    while True:
        [message] = await moderator.wait_for_messages(1, timeout=30)
        if code in message.text and "Trả lời bằng số" in message.text:
            return message.text


async def test_zalo_moderator_approves_by_number_and_rejects_by_command(
    settings: Settings, zalo: FakeZalo
) -> None:
    async with running(zalo_settings(settings, zalo)) as runtime:
        await grant(runtime, "zalo", "u-moderator")
        moderator = zalo.user("u-moderator", "Kiểm duyệt viên")
        first_reporter, second_reporter = zalo.user("u-rep-1"), zalo.user("u-rep-2")
        first = await report_on_zalo(first_reporter, "Hoàng Văn Thụ")
        card = await card_for(moderator, first)
        photos = [m for m in moderator.inbox if m.photo_url]
        assert len(photos) == 2 and all(m.photo_status == 200 for m in photos)
        assert "/media/" in photos[0].photo_url
        await moderator.send_text(number_of(card, "Duyệt"))
        await zalo.wait_until(
            lambda: "đã được Hội đồng duyệt" in first_reporter.inbox[-1].text,
            what="the approval notice",
        )

        second = await report_on_zalo(second_reporter, "Đội dân phòng")
        await card_for(moderator, second)
        await moderator.send_text(f"/tuchoi {second}   Không   xác minh được sự việc")
        await zalo.wait_until(
            lambda: "Không xác minh được sự việc" in second_reporter.inbox[-1].text,
            what="the rejection notice",
        )
        async with runtime.sessions() as session:
            decided = {
                r.code: (r.status, r.reject_reason)
                for r in (await session.exec(select(Report))).all()
            }
            actions = (await session.exec(select(AuditEntry.action))).all()
        assert decided == {
            first: (ReportStatus.APPROVED, None),
            second: (ReportStatus.REJECTED, "Không xác minh được sự việc"),
        }
        assert {"approve", "reject"} <= set(actions)


async def test_commands_from_a_non_moderator_are_refused(
    settings: Settings, zalo: FakeZalo
) -> None:
    async with running(zalo_settings(settings, zalo)) as runtime:
        reporter, intruder = zalo.user("u-honest"), zalo.user("u-intruder")
        code = await report_on_zalo(reporter)
        for command in (f"/duyet {code}", f"/tuchoi {code} giả mạo", f"/approve {code}"):
            assert "Chỉ người kiểm duyệt" in await intruder.reply(command)
        assert "Chỉ người kiểm duyệt" in await reporter.reply(f"/duyet {code}")
        [report] = await reports(runtime)
        assert report.status == ReportStatus.SUBMITTED
        async with runtime.sessions() as session:
            query = select(AuditEntry).where(col(AuditEntry.action).in_(["approve", "reject"]))
            assert (await session.exec(query)).all() == []


async def test_the_token_never_reaches_the_logs(
    settings: Settings, zalo: FakeZalo, capfd: pytest.CaptureFixture[str]
) -> None:
    async with running(zalo_settings(settings, zalo)):
        user = zalo.user("u-logs")
        zalo.fail_next("sendMessage", status=500, description=f"echo of bot{TOKEN}/sendMessage")
        await user.send_text("/help")
        await zalo.wait_until(lambda: bool(zalo.calls_to("sendMessage")))
        zalo.fail_next("getUpdates", status=502)
        assert "/report" in await user.reply("/help")
    out, err = capfd.readouterr()
    assert "reply.retry" in out + err
    assert TOKEN not in out + err and TOKEN.split(":")[1] not in out + err


async def test_signed_media_urls(settings: Settings, zalo: FakeZalo) -> None:
    async with running(zalo_settings(settings, zalo)) as runtime:
        stored = await runtime.services.media.ingest(jpeg())
        await runtime.services.media.keep(stored)
        channel = runtime.channels["zalo"]
        url: str = channel._media_urls.url_for(stored.sha256)  # type: ignore[attr-defined]
        expires, signature = url.split("/")[-3:-1]
        base = url.split("/media/")[0]
        expired = f"{base}/media/1/{signature}/{stored.sha256}.jpg"
        tampered = url.replace(
            signature, signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
        )
        later = f"{base}/media/{int(expires) + 1}/{signature}/{stored.sha256}.jpg"
        other = url.replace(stored.sha256, "0" * 64)
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as response:
                assert response.status == 200 and (await response.read())[:2] == b"\xff\xd8"
            for refused in (expired, tampered, later, other):
                async with http.get(refused) as response:
                    assert response.status == 403, refused


@asynccontextmanager
async def with_telegram_moderator(
    settings: Settings, zalo: FakeZalo
) -> AsyncIterator[tuple[FakeTelegram, Runtime]]:
    """A bot on Zalo and Telegram, with moderator 601 in the Telegram moderators' group."""
    async with FakeTelegram(time_scale=TEST_TIME_SCALE) as telegram:
        config = zalo_settings(
            settings,
            zalo,
            telegram_bot_token="42:TOKEN",
            telegram_api_base_url=telegram.base_url,
            telegram_moderation_chat_id=str(GROUP),
            **telegram.pacing,
        )
        async with running(config) as runtime:
            await grant(runtime, "telegram", "601")
            yield telegram, runtime


async def approve_on_telegram(
    telegram: FakeTelegram, zalo: FakeZalo, reporter: ZaloUser, code: str
) -> str:
    """Moderator 601 approves `code` on its card; returns the card's text."""
    card = await card_in(telegram, GROUP, code)
    moderator = telegram.user(user_id=601, first_name="Cán bộ Tâm", chat_id=GROUP)
    await moderator.press(data_of(card, "m:ap:"))
    await zalo.wait_until(
        lambda: "đã được Hội đồng duyệt" in reporter.inbox[-1].text,
        what="the approval notice on Zalo",
    )
    return card.plain_text or ""


async def test_telegram_moderator_approves_a_zalo_report(
    settings: Settings, zalo: FakeZalo
) -> None:
    async with with_telegram_moderator(settings, zalo) as (telegram, runtime):
        reporter = zalo.user("u-zalo-reporter")
        code = await report_on_zalo(reporter, "Hà Thị Lụa")
        assert "Hà Thị Lụa" in await approve_on_telegram(telegram, zalo, reporter, code)
        assert code in reporter.inbox[-1].text
        [report] = await reports(runtime)
        assert report.status == ReportStatus.APPROVED


async def test_a_zalo_story_reaches_telegram_and_zalo_subscribers_with_photos(
    settings: Settings, zalo: FakeZalo
) -> None:
    """The issue's whole path: report on Zalo, approve on Telegram, publish to both."""
    async with with_telegram_moderator(settings, zalo) as (telegram, runtime):
        zalo_subscriber = zalo.user("u-zalo-subscriber")
        assert "đăng ký nhận tin" in await zalo_subscriber.reply("/subscribe")
        telegram_subscriber = telegram.user(user_id=3301)
        await telegram_subscriber.send_text("/subscribe")
        await telegram_subscriber.wait_for_messages(2)

        reporter = zalo.user("u-zalo-reporter")
        code = await report_on_zalo(reporter, "Vi Thị Hạnh")
        await approve_on_telegram(telegram, zalo, reporter, code)
        async with runtime.sessions() as session, session.begin():  # guongsang publish --now
            assert len(await publish_approved(session, datetime.now(UTC), None)) == 1
        assert await start_due(runtime.services, runtime.sessions, datetime.now(UTC)) == 1

        def zalo_story() -> list[str]:
            return [m.text for m in zalo_subscriber.inbox if code in m.text]

        await zalo.wait_until(lambda: bool(zalo_story()), what="the story on Zalo")
        photos = [m for m in zalo_subscriber.inbox if m.photo_url]
        assert len(photos) == 2 and {m.photo_status for m in photos} == {200}
        assert "Vi Thị Hạnh" in zalo_story()[0] and "<b>" not in zalo_story()[0]
        await telegram.wait_until(
            lambda: any(code in (m.plain_text or "") for m in telegram_subscriber.inbox),
            what="the story on Telegram",
        )
        albums = [m for m in telegram_subscriber.inbox if m.media]
        assert len(albums) == 2, "both photos, as an album"
