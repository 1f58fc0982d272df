"""Random and malformed updates, through the real webhooks, channels and router.

Hypothesis builds Telegram updates and Zalo events from valid ones, then breaks them:
fields replaced by random JSON (wrong types, arrays for objects, huge numbers, huge, NFD
and emoji text) or removed, unknown update kinds and event names, bodies that are not
objects or not JSON at all. The contract, for every one of them: the webhook answers
below 500, no update fails while being handled, and the bot still answers a normal
/start right after. Runs on the production composition root against the fake Bot APIs,
on SQLite and PostgreSQL, with a bounded number of examples.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import unicodedata
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from bot.app import Runtime
from bot.channels.telegram import WEBHOOK_SECRET_HEADER as TELEGRAM_SECRET_HEADER
from bot.channels.zalo import WEBHOOK_SECRET_HEADER as ZALO_SECRET_HEADER
from bot.settings import Settings
from tests.fakes.telegram_api import TEST_TIME_SCALE, FakeTelegram
from tests.fakes.zalo_api import FakeZalo
from tests.test_telegram_e2e import SECRET as TELEGRAM_SECRET
from tests.test_telegram_e2e import bot_settings, free_port, started
from tests.test_zalo_e2e import SECRET as ZALO_SECRET
from tests.test_zalo_e2e import TOKEN as ZALO_TOKEN
from tests.test_zalo_e2e import running, webhook_settings, zalo_settings

JsonDict = dict[str, Any]
EXAMPLES = 40
FAILED = ".update.failed"
"""The log event of an update whose handling raised (`telegram.…`, `zalo.…`)."""

ROBUST = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],  # a failure is shown as found: shrinking is slow
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
VIETNAMESE = "Chị Nguyễn Thị Hoa đã giúp đỡ người già ở xã Hữu Lũng"
TEXTS = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            " ",
            "/start",
            "/report",
            "/queue",
            "/approve GS-2026-000001",
            "/grant moderator 1",
            "1",
            "99",
            "m:approve:1:1",
            unicodedata.normalize("NFD", VIETNAMESE),
            "😀👍🏽🇻🇳" * 500,
            "<b>&amp;</b> & < > '\" DROP TABLE person; --" * 200,
            "x" * 20_000,
        ]
    ),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXTS,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.sampled_from(["id", "text", "message", "chat", "from", "type", "data"])
            | st.text(max_size=8),
            children,
            max_size=4,
        ),
    ),
    max_leaves=10,
)
DEEP = b"[" * 50_000 + b"]" * 50_000
NOT_JSON = st.sampled_from([b"", b"{", b"not json", b"\xff\xfe", DEEP, b'{"a":' * 5_000])


def _telegram_user(user_id: int) -> JsonDict:
    return {"id": user_id, "is_bot": False, "first_name": "Lan", "language_code": "vi"}


def _telegram_message(user_id: int, **content: object) -> JsonDict:
    return {
        "message_id": 1,
        "date": 0,
        "chat": {"id": user_id, "type": "private"},
        "from": _telegram_user(user_id),
        **content,
    }


def _telegram_templates(update_id: int, user_id: int, text: str) -> list[JsonDict]:
    return [{"update_id": update_id, **update} for update in _telegram_updates(user_id, text)]


def _telegram_updates(user_id: int, text: str) -> list[JsonDict]:
    photo = {"file_id": "nope", "file_unique_id": "u", "width": 90, "height": 90, "file_size": 9}
    return [
        {"message": _telegram_message(user_id, text=text)},
        {"message": _telegram_message(user_id, photo=[photo], media_group_id="g1")},
        {"message": _telegram_message(user_id, document={**photo, "mime_type": "image/jpeg"})},
        {"message": _telegram_message(user_id, contact={"phone_number": text, "first_name": "A"})},
        {"message": _telegram_message(user_id, sticker={**photo, "type": "regular"})},
        {"message": _telegram_message(user_id, location={"latitude": 21.8, "longitude": 106.7})},
        {"edited_message": _telegram_message(user_id, text=text)},
        {"channel_post": {**_telegram_message(user_id, text=text), "from": None}},
        {
            "callback_query": {
                "id": "1",
                "from": _telegram_user(user_id),
                "chat_instance": "1",
                "data": text,
                "message": _telegram_message(user_id, text="menu"),
            }
        },
        {"a_kind_of_update_from_the_future": {"id": user_id}},
    ]


def _zalo_templates(update_id: int, user_id: str, text: str) -> list[JsonDict]:
    message = {
        "from": {"id": user_id, "display_name": "Lan", "is_bot": False},
        "chat": {"id": user_id, "chat_type": "PRIVATE"},
        "message_id": f"m-{update_id}",
        "date": 0,
    }
    return [
        {"event_name": "message.text.received", "message": {**message, "text": text}},
        {"event_name": "message.image.received", "message": {**message, "photo_url": text}},
        {"event_name": "message.sticker.received", "message": {**message, "sticker": "s"}},
        {"event_name": "message.unsupported.received", "message": message},
        {"event_name": "user.follow", "message": message},
        {"event_name": "an.event.from.the.future", "message": {**message, "text": text}},
        {"event_name": text, "follower": {"id": user_id}},
    ]


def _key_paths(value: object, prefix: tuple[object, ...] = ()) -> Iterator[tuple[object, ...]]:
    """Every place in a JSON value a field could be replaced or removed."""
    if isinstance(value, dict):
        items: list[tuple[object, object]] = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return
    for key, child in items:
        yield (*prefix, key)
        yield from _key_paths(child, (*prefix, key))


@st.composite
def _broken(draw: st.DrawFn, template: JsonDict) -> JsonDict:
    """`template` with up to three fields replaced by random JSON or removed."""
    update = copy.deepcopy(template)
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        *parents, last = draw(st.sampled_from(list(_key_paths(update))))
        holder: Any = update
        for key in parents:
            holder = holder[key]
        if isinstance(holder, dict) and draw(st.booleans()):
            del holder[last]
        else:
            holder[last] = draw(JSON_VALUES)
        if not update:
            break
    return update


@st.composite
def _updates(draw: st.DrawFn, templates: st.SearchStrategy[list[JsonDict]]) -> object:
    """Mostly a broken valid update, sometimes any JSON at all."""
    if draw(st.integers(min_value=0, max_value=6)) == 0:
        return draw(JSON_VALUES)
    return draw(_broken(draw(st.sampled_from(draw(templates)))))


def _bodies(templates: st.SearchStrategy[list[JsonDict]]) -> st.SearchStrategy[object]:
    """A webhook body: an update as `_updates` makes them, or bytes that are not JSON."""
    return st.one_of(_updates(templates), NOT_JSON)


USER_IDS = st.sampled_from([4242, 4243])
UPDATE_IDS = st.integers(min_value=10**6, max_value=2**31)
"""Far from the fake's own update ids (1, 2, …): a kept id is taken only once (the inbox)."""
TELEGRAM_BODIES = _bodies(st.builds(_telegram_templates, UPDATE_IDS, USER_IDS, TEXTS))
ZALO_TEMPLATES = st.builds(_zalo_templates, UPDATE_IDS, st.sampled_from(["z-42", "z-43"]), TEXTS)
ZALO_BODIES = _bodies(ZALO_TEMPLATES)
ZALO_EVENTS = _updates(ZALO_TEMPLATES)


async def post(url: str, body: object, headers: dict[str, str]) -> int:
    """POST `body` (bytes as they are, anything else as JSON); the answer's status."""
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=payload, headers={**headers, "Content-Type": "application/json"}) as r,
    ):
        return r.status


def forget_logs(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    """Start an example with empty logs: an earlier example's failure is not this one's."""
    capsys.readouterr()
    caplog.clear()


def assert_nothing_failed(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, body: object
) -> None:
    """Neither the project's log (stdout) nor the libraries' (logging) reports a failure."""
    printed = capsys.readouterr()
    for stream in (printed.out, printed.err):
        assert FAILED not in stream and "Traceback" not in stream, (body, stream[-3000:])
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, (body, errors)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(time_scale=TEST_TIME_SCALE) as server:
        yield server


@pytest.fixture
async def zalo() -> AsyncIterator[FakeZalo]:
    async with FakeZalo(ZALO_TOKEN) as server:
        yield server


@pytest.fixture
async def telegram_webhook(settings: Settings, fake: FakeTelegram) -> AsyncIterator[str]:
    """A bot on Telegram in webhook mode; its webhook's address."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/webhook"
    config = bot_settings(
        settings,
        fake,
        http_port=port,
        telegram_webhook_url=url,
        telegram_webhook_secret=TELEGRAM_SECRET,
    )
    runtime: Runtime = await started(config)
    yield url
    await runtime.stop()


@pytest.fixture
async def zalo_polling(settings: Settings, zalo: FakeZalo) -> AsyncIterator[None]:
    """A bot on Zalo that asks for updates (long polling)."""
    async with running(zalo_settings(settings, zalo)):
        yield


@pytest.fixture
async def zalo_webhook(settings: Settings, zalo: FakeZalo) -> AsyncIterator[str]:
    """A bot on Zalo in webhook mode; its webhook's address."""
    config = webhook_settings(settings, zalo)
    async with running(config):
        yield str(config.zalo_webhook_url)


CHECKERS = itertools.count(700_000)
"""A fresh person for each /start check, so no per-chat pacing slows the examples down."""


async def telegram_still_answers(fake: FakeTelegram) -> None:
    user = fake.user(user_id=next(CHECKERS), first_name="Kiểm")
    await user.send_text("/start")
    [greeting] = await user.wait_for_messages(1)
    assert "Chào mừng" in (greeting.plain_text or "")


async def zalo_still_answers(zalo: FakeZalo) -> None:
    assert "Chào mừng" in await zalo.user(f"z-check-{next(CHECKERS)}").reply("/start")


@ROBUST
@given(body=TELEGRAM_BODIES)
@example(body=None)
@example(body=DEEP)
@example(
    body={"update_id": 10**6, "message": {**_telegram_message(4242, text="/start"), "chat": None}}
)
@example(body={"update_id": 2**70, "message": _telegram_message(4242, text="/start")})
@example(
    body={
        "update_id": 10**6 + 1,
        "message": {**_telegram_message(4242, text="hi"), "chat": {"id": []}},
    }
)
async def test_telegram_webhook_survives_any_update(
    telegram_webhook: str,
    fake: FakeTelegram,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    body: object,
) -> None:
    forget_logs(capsys, caplog)
    status = await post(telegram_webhook, body, {TELEGRAM_SECRET_HEADER: TELEGRAM_SECRET})
    assert status < 500, body
    await telegram_still_answers(fake)
    assert_nothing_failed(capsys, caplog, body)


@ROBUST
@given(body=ZALO_BODIES)
@example(body=["an", "array"])
@example(body=DEEP)
@example(body={"event_name": "user.follow", "follower": {"id": "z-42"}})
@example(body={"message": {"message_id": "x" * 200, "from": {"id": "z-42"}, "text": "hi"}})
async def test_zalo_webhook_survives_any_event(
    zalo_webhook: str,
    zalo: FakeZalo,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    body: object,
) -> None:
    forget_logs(capsys, caplog)
    status = await post(zalo_webhook, body, {ZALO_SECRET_HEADER: ZALO_SECRET})
    assert status < 500, body
    await zalo_still_answers(zalo)
    assert_nothing_failed(capsys, caplog, body)


@ROBUST
@given(event=ZALO_EVENTS)
@example(event={"event_name": "user.follow", "follower": {"id": "z-42"}})
@example(event={"message": {"message_id": "m-1", "from": {"id": "z" * 65}, "text": "/start"}})
async def test_zalo_polling_survives_any_event(
    zalo_polling: None,
    zalo: FakeZalo,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    event: object,
) -> None:
    forget_logs(capsys, caplog)
    await zalo.push(event)  # type: ignore[arg-type]  # anything at all, as getUpdates' result
    await zalo_still_answers(zalo)
    assert_nothing_failed(capsys, caplog, event)
