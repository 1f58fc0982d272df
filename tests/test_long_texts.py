"""Long texts reach people whole: split where Telegram and Zalo accept every part.

Telegram counts a message's length after parsing its HTML, in UTF-16 code units, and
refuses a message cut inside `&amp;` or a tag; the fake Bot API does both.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator

import pytest

from bot.app import Runtime
from bot.channels.base import split_html
from bot.settings import Settings
from handlers.messages import Button, Outbound
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.zalo_api import FakeZalo
from tests.test_telegram_e2e import bot_settings, started
from tests.test_zalo_e2e import TOKEN, running, zalo_settings

DENSE_STORY = "&<>&<>😀 Vũ " * 270
"""2,970 characters a person may type; every `&`, `<` and `>` takes 4 or 5 in HTML."""


def listing(name: str) -> str:
    return " ".join(f"{name} 👨‍👩‍👧 🇻🇳 {n}" for n in range(300))


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def bot(settings: Settings, fake: FakeTelegram) -> AsyncIterator[Runtime]:
    runtime = await started(bot_settings(settings, fake))
    yield runtime
    await runtime.stop()


async def test_a_summary_longer_than_4096_in_html_arrives_with_its_confirm_button(
    bot: Runtime, fake: FakeTelegram
) -> None:
    user = fake.user(user_id=3003)
    answers = [
        "/report", "r:kind:individual", "Lò Thị Mai & <b>co</b> 🌸", "r:group:farmer",
        "dinh lap", "r:commune:6613", DENSE_STORY, "r:photos:skip",
    ]  # fmt: skip
    for answer in answers:
        await (user.press(answer) if answer.startswith("r:") else user.send_text(answer))
        await user.wait_for_messages(1)
    await user.press("r:identity:anonymous")
    [summary] = await user.wait_for_messages(1)
    assert len(summary.text or "") > 4096
    assert "&<>&<>😀 Vũ &<>" in (summary.plain_text or "")
    assert "r:summary:confirm" in [button["callback_data"] for button in summary.buttons]
    await user.press("r:summary:confirm")
    [done] = await user.wait_for_messages(1)
    assert "GS-" in (done.plain_text or "")
    assert all(call.status == 200 for call in fake.calls_to("sendMessage"))


async def test_a_long_formatted_text_is_split_where_telegram_accepts_every_part(
    bot: Runtime, fake: FakeTelegram
) -> None:
    reader = fake.user(user_id=3004)
    text = (
        f"<b>Danh sách</b>\n<i><b>{listing(html.escape('<Lan & Minh>'))}</b></i>\n"
        "<code>GS-2026-000001</code> &amp; hết"
    )
    channel = bot.channels["telegram"]
    await channel.send(Outbound(chat_id="3004", text=text, buttons=[[Button("OK", "menu:help")]]))
    parts = reader.inbox
    assert len(parts) == channel.api_calls(Outbound(chat_id="3004", text=text)) > 2
    assert all(call.status == 200 for call in fake.calls_to("sendMessage"))
    assert all(utf16_units(part.plain_text or "") <= 4096 for part in parts)
    shown = " ".join(part.plain_text or "" for part in parts).split()
    assert shown == f"Danh sách {listing('<Lan & Minh>')} GS-2026-000001 & hết".split()
    styles = {(e["type"], e["offset"]) for e in parts[1].message["entities"]}
    assert {("bold", 0), ("italic", 0)} <= styles
    assert not parts[0].buttons and parts[-1].buttons[0]["callback_data"] == "menu:help"


async def test_zalo_parts_never_cut_an_emoji_or_a_word(settings: Settings) -> None:
    text = " ".join(f"Gương👨‍👩‍👧🇻🇳 tốt{n}" for n in range(700))
    async with FakeZalo(TOKEN) as zalo, running(zalo_settings(settings, zalo)) as runtime:
        await runtime.channels["zalo"].send(Outbound(chat_id="u-9", text=text))
    sent = [message.text for message in zalo.state.sent["u-9"]]
    assert len(sent) > 1 and all(utf16_units(part) <= 2000 for part in sent)
    assert " ".join(sent).split() == text.split()


def test_no_part_is_left_with_nothing_to_show() -> None:
    text = "<b>" + "a" * 4096 + " \n </b>"
    assert split_html(text, 4096) == ["<b>" + "a" * 4096 + "</b>"]
