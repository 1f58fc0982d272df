"""The Zalo adapter's parts: its client, how it sends and fails, numbered menus, wiring."""

from __future__ import annotations

import traceback
import unicodedata
from collections.abc import AsyncIterator

import pytest

from bot.app import ConfigurationError, _announce, build_runtime
from bot.channels.menus import OutOfRange, choose
from bot.channels.zalo import ZaloChannel
from bot.channels.zalo_api import ZaloApiError, ZaloClient
from bot.settings import Settings
from handlers.messages import Button, Outbound
from models.people import grant_role
from models.tables import Role
from scheduler.dispatcher import DeliveryFailed
from tests.fakes.zalo_api import FakeZalo
from tests.test_zalo_e2e import SECRET, TOKEN, running, zalo_settings
from tests.webchat import free_port

OPTIONS = [
    ["✅ Xong", "r:photos:done"],
    ["Bỏ qua", "r:photos:skip"],
    ["Nông dân", "r:group:farmer"],
]


@pytest.fixture
async def zalo() -> AsyncIterator[FakeZalo]:
    async with FakeZalo(TOKEN) as fake:
        yield fake


def test_a_menu_answer_by_number_or_by_words() -> None:
    assert choose("2", OPTIONS) == "r:photos:skip"
    assert choose(" 1. ", OPTIONS) == "r:photos:done"
    assert choose("bo qua", OPTIONS) == "r:photos:skip"
    assert choose(unicodedata.normalize("NFD", "Nông dân"), OPTIONS) == "r:group:farmer"
    assert choose("XONG", OPTIONS) == "r:photos:done"
    assert choose("4", OPTIONS) == OutOfRange(4, 3)
    assert choose("0", OPTIONS) == OutOfRange(0, 3)
    assert choose("0912345678", OPTIONS) is None
    assert choose("Lò Thị Mai", OPTIONS) is None


async def test_client_errors_never_carry_the_token(zalo: FakeZalo) -> None:
    unreachable = ZaloClient(TOKEN, f"http://127.0.0.1:{free_port()}")
    echoing = ZaloClient(TOKEN, zalo.base_url)
    zalo.fail_next("getMe", status=500, description=f"bad path /bot{TOKEN}/getMe")
    for client in (unreachable, echoing):
        try:
            with pytest.raises(ZaloApiError) as caught:
                await client.get_me()
        finally:
            await client.close()
        printed = "".join(traceback.format_exception(caught.value)) + repr(client)
        assert TOKEN not in printed and TOKEN.split(":")[1] not in printed
    assert "***" in str(caught.value)


async def test_send_photo_needs_a_url(zalo: FakeZalo) -> None:
    client = ZaloClient(TOKEN, zalo.base_url)
    try:
        with pytest.raises(ZaloApiError) as caught:
            await client.send_photo("u-1", "photos/anh.jpg")
    finally:
        await client.close()
    assert caught.value.status == 400
    assert zalo.state.sent == {}


@pytest.mark.parametrize(
    ("status", "retry_after", "retry_in"),
    [(429, 7, 7.0), (429, None, 30.0), (500, None, 10.0), (502, None, 10.0), (403, None, None)],
)
async def test_send_failures_tell_the_outbox_when_to_retry(
    settings: Settings,
    zalo: FakeZalo,
    status: int,
    retry_after: int | None,
    retry_in: float | None,
) -> None:
    async with running(zalo_settings(settings, zalo)) as runtime:
        channel = runtime.channels["zalo"]
        zalo.fail_next("sendMessage", status=status, retry_after=retry_after)
        with pytest.raises(DeliveryFailed) as caught:
            await channel.send(Outbound(chat_id="u-1", text="Xin chào"))
        assert caught.value.retry_in == retry_in
        assert TOKEN not in str(caught.value)


async def test_long_texts_are_split_and_edits_sent_anew(settings: Settings, zalo: FakeZalo) -> None:
    paragraph = "Gương người tốt, việc tốt. " * 30
    text = "\n".join([paragraph] * 6)
    async with running(zalo_settings(settings, zalo)) as runtime:
        channel = runtime.channels["zalo"]
        await channel.send(Outbound(chat_id="u-1", text=text))
        await channel.send(
            Outbound(chat_id="u-1", text="<b>Thẻ</b> &amp; mới", edit_message_id="9")
        )
    sent = zalo.state.sent["u-1"]
    assert len(sent) == 4 and all(len(m.text) <= 2000 for m in sent)
    assert "".join(m.text for m in sent[:3]).replace("\n", "") == text.replace("\n", "")
    assert sent[3].text == "Thẻ & mới"


async def test_buttons_become_a_numbered_menu(settings: Settings, zalo: FakeZalo) -> None:
    buttons = [[Button("Có", "r:consent:yes")], [Button("Không", "r:consent:no")]]
    async with running(zalo_settings(settings, zalo)) as runtime:
        await runtime.channels["zalo"].send(
            Outbound(chat_id="u-2", text="Đồng ý?", buttons=buttons)
        )
    [sent] = zalo.state.sent["u-2"]
    assert sent.text.startswith("Đồng ý?\n\n1. Có\n2. Không\n\n")


async def test_help_shows_moderators_their_commands(settings: Settings, zalo: FakeZalo) -> None:
    async with running(zalo_settings(settings, zalo)) as runtime:
        async with runtime.sessions() as session, session.begin():
            await grant_role(session, "zalo", "u-mod", Role.MODERATOR, granted_by="test")
        moderator, citizen = zalo.user("u-mod"), zalo.user("u-citizen")
        staff_help = await moderator.reply("/help")
        assert "/duyet" in staff_help and "/tuchoi" in staff_help and "/bosung" in staff_help
        assert "/approve" in staff_help
        assert "/duyet" not in await citizen.reply("/help")
        assert "gõ mã báo cáo" in await moderator.reply("/tuchoi")


def test_webhook_mode_needs_a_secret(settings: Settings) -> None:
    values = {
        **settings.model_dump(),
        "zalo_bot_token": TOKEN,
        "zalo_webhook_url": "https://bot.example.vn/zalo/webhook",
    }
    with pytest.raises(ConfigurationError, match="ZALO_WEBHOOK_SECRET"):
        build_runtime(Settings(_env_file=None, **values))  # type: ignore[call-arg]


def test_start_up_banner_names_the_zalo_mode(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    values = {
        **settings.model_dump(),
        "zalo_bot_token": TOKEN,
        "zalo_webhook_url": "https://bot.example.vn/zalo/webhook",
        "zalo_webhook_secret": SECRET,
    }
    runtime = build_runtime(Settings(_env_file=None, **values))  # type: ignore[call-arg]
    assert isinstance(runtime.channels["zalo"], ZaloChannel)
    _announce(runtime)
    printed = capsys.readouterr().out
    assert "channel  : zalo (webhook)" in printed
    assert "sandbox" not in printed
