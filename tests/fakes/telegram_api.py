"""A fake Telegram Bot API server for end-to-end tests.

The real python-telegram-bot ``Application`` is pointed at it with
``ApplicationBuilder().base_url(f"{fake.base_url}/bot").base_file_url(f"{fake.base_url}/file/bot")``;
tests then act as Telegram users (:class:`FakeUser`) and look at what the bot sent.

It speaks the Bot API's HTTP protocol: parameters arrive in the query string, as
``application/x-www-form-urlencoded`` or ``multipart/form-data`` fields, or as a JSON body.
python-telegram-bot sends form fields, strings as they are and every other value JSON-encoded
(numbers, booleans, lists and objects alike), and uploads as multipart file parts, either under
the parameter's own name (``sendPhoto``'s ``photo``) or under a name that a JSON value refers
to as ``attach://<name>`` (``sendMediaGroup``'s ``media``). Every answer is
``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": ..., "description": ...}``.

The fake enforces the limits that shape the bot's code (HTML parse mode, text and caption
lengths, ``callback_data`` size, album size, and each chat's rate: a burst of three then one
message a second to a private chat, twenty a minute to a group, 429 with ``retry_after``
beyond) and is a little stricter than Telegram about HTML: a bare ``&`` is rejected, so
unescaped user text is caught.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Self

import aiohttp
from aiohttp import web
from PIL import Image

type JsonDict = dict[str, Any]

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MIN_ALBUM_SIZE = 2
MAX_ALBUM_SIZE = 10
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
MAX_UPDATES_PER_CALL = 100

BOT_USER: JsonDict = {
    "id": 999000,
    "is_bot": True,
    "first_name": "Gương Sáng (test)",
    "username": "guongsang_test_bot",
}

# Parameters whose form values python-telegram-bot JSON-encodes as objects or arrays.
_JSON_PARAMS = frozenset(
    {
        "allowed_updates",
        "caption_entities",
        "commands",
        "entities",
        "link_preview_options",
        "media",
        "reply_markup",
        "reply_parameters",
        "scope",
    }
)
_INT_PARAMS = frozenset(
    {
        "cache_time",
        "chat_id",
        "limit",
        "max_connections",
        "message_id",
        "message_thread_id",
        "offset",
        "reply_to_message_id",
        "user_id",
    }
)
_BOOL_PARAMS = frozenset(
    {
        "allow_paid_broadcast",
        "disable_content_type_detection",
        "disable_notification",
        "drop_pending_updates",
        "has_spoiler",
        "protect_content",
        "show_alert",
        "show_caption_above_media",
    }
)
# `timeout` is a float because python-telegram-bot sends fractional timedeltas as seconds.
_FLOAT_PARAMS = frozenset({"timeout"})

# Methods that fail with 403 when the chat has blocked the bot.
_BLOCKABLE_METHODS = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendMediaGroup",
        "sendDocument",
        "sendChatAction",
        "editMessageText",
        "editMessageReplyMarkup",
        "editMessageCaption",
    }
)
# Methods that count against a chat's limits (messages and edits; not chat actions).
_CHAT_PACED_METHODS = _BLOCKABLE_METHODS - {"sendChatAction"}
# Telegram's per-chat limits: a private chat takes a short burst, then one message a second;
# a group twenty a minute. Tests may run them faster with `time_scale` (the bot's pacing
# settings scaled alike, see `FakeTelegram.pacing`).
PRIVATE_CHAT_BURST = 3
PRIVATE_CHAT_INTERVAL = 1.0
GROUP_MESSAGES_PER_WINDOW = 20
GROUP_WINDOW = 60.0
TEST_TIME_SCALE = 0.05
"""End-to-end tests run the per-chat limits twenty times faster (bot and fake alike)."""
# Update types that Telegram only sends when `allowed_updates` names them.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_BLOCKED = "Forbidden: bot was blocked by the user"
_DEFAULT_ERROR_DESCRIPTIONS = {
    400: "Bad Request",
    403: _BLOCKED,
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
}
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_BOT_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_LEADING_COMMAND = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]+)?")
_FILE_FOLDERS = {
    "photo": "photos",
    "document": "documents",
    "sticker": "stickers",
    "video": "videos",
    "voice": "voice",
}
# Longest sides of the smaller copies Telegram keeps of a photo; the original comes last.
_PHOTO_THUMBNAIL_SIDES = (90, 320, 800)
_UNDECODABLE_PHOTO_SIZE = (1280, 960)
_WAIT_POLL_INTERVAL = 0.01


class _ApiError(Exception):
    """An error answer of the Bot API."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def body(self) -> JsonDict:
        body: JsonDict = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def _bad_request(detail: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: {detail}")


def _utf16_len(text: str) -> int:
    """Length as Telegram counts it: in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _now() -> int:
    return int(time.time())


# --- Telegram HTML -------------------------------------------------------------------------

# Supported tags and the entity type each one produces.
_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_CHARACTER_REFERENCE = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6}));")
_NAMED_REFERENCES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _match_reference(text: str, pos: int) -> tuple[str, int] | None:
    """Decode the character reference starting at ``text[pos] == "&"``: (character, end)."""
    match = _CHARACTER_REFERENCE.match(text, pos)
    if match is None:
        return None
    name, decimal, hexadecimal = match.groups()
    if name:
        return _NAMED_REFERENCES[name], match.end()
    code_point = int(decimal, 10) if decimal else int(hexadecimal, 16)
    if code_point == 0 or code_point > 0x10FFFF or 0xD800 <= code_point <= 0xDFFF:
        return None
    return chr(code_point), match.end()


@dataclass
class _OpenTag:
    name: str
    attributes: dict[str, str]
    byte_offset: int
    start: int  # UTF-16 offset in the plain text
    language: str | None = None  # of a <pre>, from a <code class="language-..."> inside it


class _HtmlParser:
    """Parses text in Telegram's HTML parse mode into plain text and message entities."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.plain: list[str] = []
        self.length = 0
        self.open_tags: list[_OpenTag] = []
        self.entities: list[JsonDict] = []

    def parse(self) -> tuple[str, list[JsonDict]]:
        while self.pos < len(self.text):
            if self.text.startswith("</", self.pos):
                self._read_end_tag()
            elif self.text[self.pos] == "<":
                self._read_start_tag()
            elif self.text[self.pos] == "&":
                decoded = _match_reference(self.text, self.pos)
                if decoded is None:
                    raise self._error(
                        f'Unescaped "&" at byte offset {self._byte_offset(self.pos)}; '
                        "use &amp;, &lt;, &gt;, &quot;, &#N; or &#xH;"
                    )
                character, self.pos = decoded
                self._append(character)
            else:
                self._append(self.text[self.pos])
                self.pos += 1
        if self.open_tags:
            raise self._error(
                f'Can\'t find end tag corresponding to start tag "{self.open_tags[-1].name}"'
            )
        self.entities.sort(key=lambda entity: (entity["offset"], -entity["length"]))
        return "".join(self.plain), self.entities

    @staticmethod
    def _error(detail: str) -> _ApiError:
        return _bad_request(f"can't parse entities: {detail}")

    def _byte_offset(self, pos: int) -> int:
        return len(self.text[:pos].encode())

    def _append(self, text: str) -> None:
        self.plain.append(text)
        self.length += _utf16_len(text)

    def _skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _read_start_tag(self) -> None:
        start = self.pos
        byte_offset = self._byte_offset(start)
        self.pos += 1
        while (
            self.pos < len(self.text)
            and not self.text[self.pos].isspace()
            and self.text[self.pos] != ">"
        ):
            self.pos += 1
        if self.pos == len(self.text):
            raise self._error(f"Unclosed start tag at byte offset {byte_offset}")
        name = self.text[start + 1 : self.pos].lower()
        if name not in _HTML_TAGS:
            raise self._error(f'Unsupported start tag "{name}" at byte offset {byte_offset}')
        attributes = self._read_attributes(name, byte_offset)
        if name == "span" and attributes.get("class") != "tg-spoiler":
            raise self._error(
                f'Tag "span" must have class "tg-spoiler" at byte offset {byte_offset}'
            )
        self.open_tags.append(_OpenTag(name, attributes, byte_offset, self.length))

    def _read_attributes(self, tag: str, byte_offset: int) -> dict[str, str]:
        """Read ``name="value"`` pairs up to and including the closing ``>``."""
        attributes: dict[str, str] = {}
        unclosed = self._error(f"Unclosed start tag at byte offset {byte_offset}")
        while True:
            self._skip_spaces()
            if self.pos == len(self.text):
                raise unclosed
            if self.text[self.pos] == ">":
                self.pos += 1
                return attributes
            name_start = self.pos
            while (
                self.pos < len(self.text)
                and not self.text[self.pos].isspace()
                and self.text[self.pos] not in "=>"
            ):
                self.pos += 1
            name = self.text[name_start : self.pos].lower()
            if not name:
                raise self._error(
                    f'Empty attribute name in the tag "{tag}" at byte offset {byte_offset}'
                )
            self._skip_spaces()
            if self.pos == len(self.text) or self.text[self.pos] != "=":
                attributes[name] = ""  # a bare attribute, like <blockquote expandable>
                continue
            self.pos += 1
            self._skip_spaces()
            if self.pos == len(self.text):
                raise unclosed
            quote = self.text[self.pos]
            if quote in "\"'":
                end = self.text.find(quote, self.pos + 1)
                if end == -1:
                    raise unclosed
                raw_value = self.text[self.pos + 1 : end]
                self.pos = end + 1
            else:
                value_start = self.pos
                while (
                    self.pos < len(self.text)
                    and not self.text[self.pos].isspace()
                    and self.text[self.pos] != ">"
                ):
                    self.pos += 1
                raw_value = self.text[value_start : self.pos]
            attributes[name] = self._unescape_attribute(raw_value, byte_offset)

    def _unescape_attribute(self, raw_value: str, byte_offset: int) -> str:
        value: list[str] = []
        pos = 0
        while pos < len(raw_value):
            if raw_value[pos] != "&":
                value.append(raw_value[pos])
                pos += 1
                continue
            decoded = _match_reference(raw_value, pos)
            if decoded is None:
                raise self._error(
                    f'Unescaped "&" in an attribute of the tag at byte offset {byte_offset}'
                )
            character, pos = decoded
            value.append(character)
        return "".join(value)

    def _read_end_tag(self) -> None:
        byte_offset = self._byte_offset(self.pos)
        end = self.text.find(">", self.pos)
        if end == -1:
            raise self._error(f"Unclosed end tag at byte offset {byte_offset}")
        name = self.text[self.pos + 2 : end].strip().lower()
        self.pos = end + 1
        if not self.open_tags:
            raise self._error(f"Unexpected end tag at byte offset {byte_offset}")
        tag = self.open_tags.pop()
        if name != tag.name:
            raise self._error(
                f'Unmatched end tag at byte offset {byte_offset}, expected "</{tag.name}>", '
                f'found "</{name}>"'
            )
        self._add_entity(tag)

    def _add_entity(self, tag: _OpenTag) -> None:
        length = self.length - tag.start
        if length == 0:
            return
        entity: JsonDict = {"type": _HTML_TAGS[tag.name], "offset": tag.start, "length": length}
        css_class = tag.attributes.get("class", "")
        if tag.name == "a":
            if not tag.attributes.get("href"):
                return
            entity["url"] = tag.attributes["href"]
        elif tag.name == "code" and css_class.startswith("language-"):
            parent = self.open_tags[-1] if self.open_tags else None
            if parent is not None and parent.name == "pre":
                # <pre><code class="language-x"> is one "pre" entity with a language.
                parent.language = css_class.removeprefix("language-")
                return
        elif tag.name == "pre" and tag.language:
            entity["language"] = tag.language
        elif tag.name == "blockquote" and "expandable" in tag.attributes:
            entity["type"] = "expandable_blockquote"
        elif tag.name == "tg-emoji":
            if not tag.attributes.get("emoji-id"):
                return
            entity["custom_emoji_id"] = tag.attributes["emoji-id"]
        self.entities.append(entity)


def parse_html(text: str) -> tuple[str, list[JsonDict]]:
    """Plain text and message entities of ``text`` in HTML parse mode, as Telegram parses it.

    Raises the Bot API's 400 "can't parse entities" error (as ``_ApiError``) when it doesn't parse.
    """
    return _HtmlParser(text).parse()


def _formatted(text: str, parse_mode: object) -> tuple[str, list[JsonDict]]:
    if not parse_mode:
        return text, []
    if str(parse_mode).lower() == "html":
        return parse_html(text)
    raise _bad_request(f"unsupported parse_mode {parse_mode!r} (this fake implements HTML only)")


# --- Records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiCall:
    """One request the bot made, as the fake decoded and answered it."""

    method: str  # canonical name, e.g. "sendMessage", whatever case the bot used
    params: JsonDict  # nested JSON values already parsed
    files: dict[str, bytes]  # multipart uploads by part name
    status: int
    response: JsonDict


@dataclass(frozen=True)
class StoredFile:
    """A file known to the fake: sent by a test user or uploaded by the bot."""

    file_id: str
    file_unique_id: str
    kind: str  # photo (one size of it), document, sticker, video or voice
    data: bytes
    file_path: str
    details: JsonDict  # the kind-specific fields Telegram reports: width, file_name, ...

    def as_json(self) -> JsonDict:
        """The PhotoSize, Document, Sticker, Video or Voice object of this file."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            **self.details,
        }


@dataclass
class SentMessage:
    """A message the bot sent, as it stands now; ``history`` keeps its earlier versions."""

    chat_id: int
    message_id: int
    method: str
    text: str | None  # the text or caption exactly as the bot sent it (with its markup)
    parse_mode: str | None
    reply_markup: JsonDict | None  # any kind: inline keyboard, reply keyboard, removal
    media: list[StoredFile]  # for a photo, its largest size
    message: JsonDict  # the Message object the bot got back (after any edits)
    history: list[JsonDict] = field(default_factory=list)  # earlier Message objects
    deleted: bool = False

    @property
    def plain_text(self) -> str | None:
        """The text or caption as the user sees it (markup parsed away)."""
        return self.message.get("text", self.message.get("caption"))

    @property
    def media_group_id(self) -> str | None:
        return self.message.get("media_group_id")

    @property
    def edited(self) -> bool:
        return bool(self.history)

    @property
    def buttons(self) -> list[JsonDict]:
        """The inline keyboard's buttons, row after row."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [button for row in rows for button in row]

    def describe(self) -> str:
        """One line for assertion messages."""
        parts = [f"#{self.message_id} {self.method}:"]
        if self.plain_text is not None:
            parts.append(repr(self.plain_text))
        if self.media:
            parts.append(f"media={[stored.kind for stored in self.media]}")
        if self.buttons:
            parts.append(f"buttons={[button.get('text') for button in self.buttons]}")
        parts.extend(
            flag for flag, on in (("(edited)", self.edited), ("(deleted)", self.deleted)) if on
        )
        return " ".join(parts)


@dataclass(frozen=True)
class WebhookDelivery:
    """One POST of an update to the webhook."""

    update_id: int
    url: str
    status: int | None  # None when the connection failed
    error: str | None  # as getWebhookInfo's last_error_message; None on a 2xx answer


@dataclass(frozen=True)
class _Upload:
    filename: str | None
    content_type: str
    data: bytes


@dataclass
class _Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    last_error: tuple[int, str] | None = None  # (date, message)


@dataclass
class _Content:
    """What a bot message shows, before it gets a message_id."""

    fields: JsonDict  # text/entities, or photo/document with caption/caption_entities
    text: str | None
    parse_mode: str | None
    media: list[StoredFile]


@dataclass
class _Chat:
    id: int
    type: str
    title: str | None = None
    user: JsonDict | None = None  # the other party of a private chat
    next_message_id: int = 1
    sent: list[SentMessage] = field(default_factory=list)
    deleted_ids: set[int] = field(default_factory=set)

    def take_message_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id

    def find_sent(self, message_id: int) -> SentMessage | None:
        return next((sent for sent in self.sent if sent.message_id == message_id), None)

    def as_json(self) -> JsonDict:
        if self.type != "private":
            return {"id": self.id, "type": self.type, "title": self.title or f"Chat {self.id}"}
        chat: JsonDict = {"id": self.id, "type": "private"}
        user = self.user or {"first_name": f"User {self.id}"}
        chat.update(
            {key: user[key] for key in ("first_name", "last_name", "username") if key in user}
        )
        return chat


# --- Request decoding ----------------------------------------------------------------------


def _decode_param(name: str, value: object) -> object:
    """Type a form or query value the way the Bot API reads that parameter."""
    if not isinstance(value, str):  # already typed in a JSON body
        return value
    if name in _JSON_PARAMS:
        try:
            return json.loads(value)
        except ValueError:
            raise _bad_request(f"can't parse {name} JSON object") from None
    if name in _INT_PARAMS:
        with suppress(ValueError):
            return int(value)
    elif name in _FLOAT_PARAMS:
        with suppress(ValueError):
            return float(value)
    elif name in _BOOL_PARAMS:
        return value.lower() in {"true", "1"}
    return value


async def _read_request(request: web.Request) -> tuple[JsonDict, dict[str, _Upload]]:
    raw: dict[str, object] = dict(request.query)
    uploads: dict[str, _Upload] = {}
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise _bad_request("can't parse JSON body") from None
        if not isinstance(body, dict):
            raise _bad_request("the JSON body must be an object")
        raw.update(body)
    else:
        for name, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                uploads[name] = _Upload(value.filename, value.content_type, value.file.read())
            else:
                raw[name] = value.decode() if isinstance(value, bytes) else value
    return {name: _decode_param(name, value) for name, value in raw.items()}, uploads


def _int_param(params: JsonDict, name: str) -> int:
    value = params.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad_request(f"{name} is empty")
    return value


def _reply_markup(params: JsonDict) -> JsonDict | None:
    """The reply_markup parameter, checked like Telegram checks inline keyboards."""
    markup = params.get("reply_markup")
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise _bad_request("can't parse reply keyboard markup JSON object")
    for row in markup.get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA_BYTES:
                raise _bad_request("BUTTON_DATA_INVALID")
            url = button.get("url")
            if url is not None and not str(url).startswith(("http://", "https://", "tg://")):
                raise _bad_request("BUTTON_URL_INVALID")
    return markup


def _update_type(update: JsonDict) -> str:
    return next(key for key in update if key != "update_id")


def _photo_variants(data: bytes) -> list[tuple[bytes, int, int]]:
    """(bytes, width, height) of the sizes Telegram keeps of a photo, the original last.

    Smaller copies are real JPEG thumbnails when Pillow can decode the image; otherwise there is
    only the original, with made-up dimensions.
    """
    variants: list[tuple[bytes, int, int]] = []
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            width, height = image.size
            for side in _PHOTO_THUMBNAIL_SIDES:
                if side >= max(width, height):
                    break
                thumbnail = image.convert("RGB")
                thumbnail.thumbnail((side, side))
                buffer = io.BytesIO()
                thumbnail.save(buffer, "JPEG")
                variants.append((buffer.getvalue(), *thumbnail.size))
    except (OSError, Image.DecompressionBombError):
        return [(data, *_UNDECODABLE_PHOTO_SIZE)]
    variants.append((data, width, height))
    return variants


# --- The server ----------------------------------------------------------------------------

type _Handler = Callable[[JsonDict, dict[str, _Upload]], Awaitable[Any]]


class FakeTelegram:
    """A Bot API server on 127.0.0.1 that records the bot's calls and plays its users."""

    def __init__(self, *, webhook_retry_delay: float = 0.1, time_scale: float = 1.0) -> None:
        self.base_url = ""
        self.time_scale = time_scale
        """Per-chat limits run this many times faster than Telegram's (1.0: as Telegram)."""
        self.chat_limited = 0  # sends refused with 429 by a chat's limit
        self.bot_user: JsonDict = dict(BOT_USER)
        self.calls: list[ApiCall] = []
        self.files: dict[str, StoredFile] = {}  # by file_id: every file the fake knows
        self.uploads: list[StoredFile] = []  # files the bot uploaded, in order
        self.webhook_deliveries: list[WebhookDelivery] = []
        self.waiting_polls = 0  # getUpdates calls waiting for an update right now
        self.polls = 0  # getUpdates calls received so far
        self._webhook_retry_delay = webhook_retry_delay
        self._handlers: dict[str, tuple[str, _Handler]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._get_me,
                "getUpdates": self._get_updates,
                "setWebhook": self._set_webhook,
                "deleteWebhook": self._delete_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": self._get_my_commands,
                "deleteMyCommands": self._delete_my_commands,
                "sendMessage": self._send_message,
                "sendPhoto": self._send_photo,
                "sendMediaGroup": self._send_media_group,
                "sendDocument": self._send_document,
                "editMessageText": self._edit_message_text,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
                "editMessageCaption": self._edit_message_caption,
                "deleteMessage": self._delete_message,
                "answerCallbackQuery": self._answer_callback_query,
                "sendChatAction": self._send_chat_action,
                "getFile": self._get_file,
                "close": self._close,
                "logOut": self._log_out,
                "getChat": self._get_chat,
            }.items()
        }
        self._chats: dict[int, _Chat] = {}
        self._files_by_path: dict[str, StoredFile] = {}
        self._photo_sets: dict[str, list[StoredFile]] = {}  # any size's file_id -> all sizes
        self._file_count = 0
        self._pending: list[JsonDict] = []  # updates not yet confirmed by the bot
        self._last_update_id = 0
        self._updates_changed = asyncio.Condition()
        self._allowed_updates: list[str] = []  # empty: Telegram's default set
        self._poll_generation = 0
        self._webhook: _Webhook | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._commands: dict[tuple[str, str], list[JsonDict]] = {}
        self._open_callback_queries: set[str] = set()
        self._callback_query_count = 0
        self._media_group_count = 0
        self._failures: dict[str, deque[_ApiError]] = {}
        self._stalls: dict[str, deque[float]] = {}
        self.stalled = 0  # calls whose answer stall() held back so far
        self._blocked: set[int] = set()
        self._rate_limit: int | None = None
        self._recent_sends: deque[float] = deque()
        self._chat_full_at: dict[int, float] = {}  # private chats: when the bucket is full
        self._group_sends: dict[int, deque[float]] = {}
        self.rate_limited = 0  # sends refused with 429 by limit_rate
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    # Lifecycle

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._handle_file)
        # handler_cancellation: a long poll whose client went away ends, as on Telegram.
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def stop(self) -> None:
        self._closing = True
        await self._notify_updates_changed()
        await self._replace_webhook(None)
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # Test controls

    def user(
        self,
        *,
        user_id: int = 1001,
        first_name: str = "Lan",
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "vi",
        chat_id: int | None = None,
        chat_type: str = "supergroup",
        chat_title: str | None = None,
    ) -> FakeUser:
        """A user talking in their private chat, or in ``chat_id`` (a group) when given."""
        user: JsonDict = {"id": user_id, "is_bot": False, "first_name": first_name}
        optional = {"last_name": last_name, "username": username, "language_code": language_code}
        user.update({key: value for key, value in optional.items() if value is not None})
        if chat_id is None:
            chat = self._ensure_chat(user_id, "private", user=user)
        else:
            chat = self._ensure_chat(chat_id, chat_type, title=chat_title)
        return FakeUser(self, user, chat)

    def fail_next(
        self,
        method: str,
        *,
        status: int = 500,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with an error.

        ``description`` defaults to Telegram's wording for ``status``; a 429 always carries
        ``parameters.retry_after`` (1 second unless given).
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            description = (
                f"Too Many Requests: retry after {retry_after}"
                if status == 429
                else _DEFAULT_ERROR_DESCRIPTIONS.get(status, "Error")
            )
        queue = self._failures.setdefault(method.lower(), deque())
        queue.extend(_ApiError(status, description, retry_after) for _ in range(times))

    def stall(self, method: str, seconds: float, *, times: int = 1) -> None:
        """Hold back the answer to the next ``times`` calls of ``method`` for ``seconds``: the
        call takes effect (a message is sent) but its answer comes late, or never reaches a
        client that gave up (a Bot API that stalls)."""
        self._stalls.setdefault(method.lower(), deque()).extend([seconds] * times)

    def limit_rate(self, per_second: int | None) -> None:
        """Refuse sends beyond ``per_second`` in any one-second window with 429, as Telegram
        does to a bot over its bulk limit (None: no limit)."""
        self._rate_limit = per_second
        self._recent_sends.clear()

    def _check_rate(self) -> None:
        if self._rate_limit is None:
            return
        now = time.monotonic()
        while self._recent_sends and now - self._recent_sends[0] >= 1.0:
            self._recent_sends.popleft()
        if len(self._recent_sends) >= self._rate_limit:
            self.rate_limited += 1
            raise _ApiError(429, "Too Many Requests: retry after 1", retry_after=1)
        self._recent_sends.append(now)

    @property
    def pacing(self) -> dict[str, float]:
        """The bot's settings that keep to this fake's per-chat limits."""
        return {
            "telegram_chat_interval": PRIVATE_CHAT_INTERVAL * self.time_scale,
            "telegram_group_interval": GROUP_WINDOW / GROUP_MESSAGES_PER_WINDOW * self.time_scale,
        }

    def _check_chat_limit(self, chat_id: object) -> None:
        """429 for a message to a chat over its limit, as Telegram does (retry_after whole
        seconds, at least one)."""
        if not isinstance(chat_id, int) or isinstance(chat_id, bool):
            return
        now = time.monotonic()
        if chat_id > 0:
            wait = self._private_chat_wait(chat_id, now)
        else:
            wait = self._group_wait(chat_id, now)
        if wait > 0:
            self.chat_limited += 1
            retry_after = max(1, math.ceil(wait))
            raise _ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)

    def _private_chat_wait(self, chat_id: int, now: float) -> float:
        interval = PRIVATE_CHAT_INTERVAL * self.time_scale
        full_at = max(self._chat_full_at.get(chat_id, now), now)
        allowed_at = full_at - (PRIVATE_CHAT_BURST - 1) * interval
        if allowed_at > now:
            return allowed_at - now
        self._chat_full_at[chat_id] = full_at + interval
        return 0.0

    def _group_wait(self, chat_id: int, now: float) -> float:
        window = GROUP_WINDOW * self.time_scale
        sends = self._group_sends.setdefault(chat_id, deque())
        while sends and now - sends[0] >= window:
            sends.popleft()
        if len(sends) >= GROUP_MESSAGES_PER_WINDOW:
            return window - (now - sends[0])
        sends.append(now)
        return 0.0

    def block(self, chat_id: int) -> None:
        """The user of ``chat_id`` blocks the bot: every send there answers 403."""
        self._blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        self._blocked.discard(chat_id)

    def calls_to(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method.lower() == method.lower()]

    def commands_for(
        self, scope: JsonDict | None = None, language_code: str = ""
    ) -> list[JsonDict]:
        """The bot commands set for ``scope`` (default scope when None) and language."""
        return self._commands.get(self._commands_key(scope, language_code), [])

    @property
    def pending_updates(self) -> list[JsonDict]:
        """Updates the bot has not confirmed yet."""
        return list(self._pending)

    async def wait_until(
        self,
        predicate: Callable[[], bool],
        timeout: float = 15.0,
        what: str = "the condition",
    ) -> None:
        """Wait until ``predicate()`` is true; AssertionError after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if predicate():
                return
            if loop.time() >= deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            await asyncio.sleep(_WAIT_POLL_INTERVAL)

    # HTTP

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: JsonDict = {}
        uploads: dict[str, _Upload] = {}
        try:
            params, uploads = await _read_request(request)
            if method.lower() not in self._handlers:
                raise _ApiError(404, "Not Found")
            method, handler = self._handlers[method.lower()]
            failures = self._failures.get(method.lower())
            if failures:
                raise failures.popleft()
            if method in _BLOCKABLE_METHODS and params.get("chat_id") in self._blocked:
                raise _ApiError(403, _BLOCKED)
            if method in _CHAT_PACED_METHODS:
                self._check_chat_limit(params.get("chat_id"))
            if method in _BLOCKABLE_METHODS:
                self._check_rate()
            status, body = 200, {"ok": True, "result": await handler(params, uploads)}
            await self._stall(method)
        except _ApiError as error:
            status, body = error.status, error.body()
        files = {name: upload.data for name, upload in uploads.items()}
        self.calls.append(ApiCall(method, params, files, status, body))
        return web.json_response(body, status=status)

    async def _stall(self, method: str) -> None:
        stalls = self._stalls.get(method.lower())
        if stalls:
            self.stalled += 1
            await asyncio.sleep(stalls.popleft())

    async def _handle_file(self, request: web.Request) -> web.Response:
        stored = self._files_by_path.get(request.match_info["file_path"])
        if stored is None:
            error = _ApiError(404, "Not Found")
            return web.json_response(error.body(), status=error.status)
        return web.Response(body=stored.data, content_type="application/octet-stream")

    # Chats, files and updates

    def _ensure_chat(
        self,
        chat_id: int,
        chat_type: str,
        *,
        title: str | None = None,
        user: JsonDict | None = None,
    ) -> _Chat:
        chat = self._chats.setdefault(chat_id, _Chat(chat_id, chat_type, title=title))
        if user is not None:
            chat.user = user
        return chat

    def _chat_param(self, params: JsonDict) -> _Chat:
        """The chat named by chat_id; a chat the fake has not seen yet is created."""
        chat_id = params.get("chat_id")
        if chat_id is None:
            raise _bad_request("chat_id is empty")
        if isinstance(chat_id, bool) or not isinstance(chat_id, int):
            raise _bad_request("chat not found")
        if chat_id > 0:
            chat_type = "private"
        elif str(chat_id).startswith("-100"):
            chat_type = "supergroup"
        else:
            chat_type = "group"
        return self._ensure_chat(chat_id, chat_type)

    def _register_file(
        self, kind: str, data: bytes, *, extension: str, details: JsonDict
    ) -> StoredFile:
        self._file_count += 1
        number = self._file_count
        stored = StoredFile(
            file_id=f"fake-{kind}-{number}",
            file_unique_id=f"fake-unique-{number}",
            kind=kind,
            data=data,
            file_path=f"{_FILE_FOLDERS[kind]}/file_{number}{extension}",
            details=details,
        )
        self.files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    def _register_photo(self, data: bytes) -> list[StoredFile]:
        """The PhotoSizes of a new photo, largest (the given bytes) last."""
        sizes = [
            self._register_file(
                "photo", variant, extension=".jpg", details={"width": width, "height": height}
            )
            for variant, width, height in _photo_variants(data)
        ]
        for size in sizes:
            self._photo_sets[size.file_id] = sizes
        return sizes

    def _register_document(self, upload: _Upload) -> StoredFile:
        file_name = upload.filename or "document"
        return self._register_file(
            "document",
            upload.data,
            extension=PurePosixPath(file_name).suffix,
            details={"file_name": file_name, "mime_type": upload.content_type},
        )

    def _known_file(self, file_id: object, kind: str) -> StoredFile:
        stored = self.files.get(str(file_id))
        if stored is None:
            raise _bad_request("wrong file identifier/HTTP URL specified")
        if stored.kind != kind:
            raise _bad_request("type of file mismatch")
        return stored

    @staticmethod
    def _upload_for(value: object, uploads: dict[str, _Upload], name: str) -> _Upload | None:
        """The upload a media parameter refers to: ``attach://<part>`` or its own part."""
        if isinstance(value, str) and value.startswith("attach://"):
            part = value.removeprefix("attach://")
            if part not in uploads:
                raise _bad_request(f"file {part!r} to attach not found in the request")
            return uploads[part]
        return uploads.get(name) if value is None else None

    def _photo_param(self, value: object, uploads: dict[str, _Upload], name: str) -> StoredFile:
        """The largest size of the photo a parameter names, uploaded or by file_id."""
        upload = self._upload_for(value, uploads, name)
        if upload is not None:
            largest = self._register_photo(upload.data)[-1]
            self.uploads.append(largest)
            return largest
        if value is None:
            raise _bad_request("there is no photo in the request")
        return self._photo_sets[self._known_file(value, "photo").file_id][-1]

    def _document_param(self, value: object, uploads: dict[str, _Upload], name: str) -> StoredFile:
        upload = self._upload_for(value, uploads, name)
        if upload is not None:
            document = self._register_document(upload)
            self.uploads.append(document)
            return document
        if value is None:
            raise _bad_request("there is no document in the request")
        return self._known_file(value, "document")

    def _new_media_group_id(self) -> str:
        self._media_group_count += 1
        return str(13_000_000_000_000_000 + self._media_group_count)

    def _is_allowed(self, update: JsonDict) -> bool:
        kind = _update_type(update)
        if self._allowed_updates:
            return kind in self._allowed_updates
        return kind not in _OPT_IN_UPDATES

    def _deliverable(self) -> list[JsonDict]:
        return [update for update in self._pending if self._is_allowed(update)]

    async def _notify_updates_changed(self) -> None:
        async with self._updates_changed:
            self._updates_changed.notify_all()

    async def push_update(self, payload: JsonDict) -> JsonDict:
        """Queue a raw update, for the kinds FakeUser has no helper for (e.g. a migration)."""
        return await self._push_update(payload)

    async def _push_update(self, payload: JsonDict) -> JsonDict:
        self._last_update_id += 1
        update = {"update_id": self._last_update_id, **payload}
        self._pending.append(update)
        await self._notify_updates_changed()
        return update

    async def _push_callback_query(self, user: JsonDict, message: JsonDict, data: str) -> JsonDict:
        self._callback_query_count += 1
        query_id = str(4_000_000_000_000 + self._callback_query_count)
        self._open_callback_queries.add(query_id)
        query = {
            "id": query_id,
            "from": user,
            "message": message,
            "chat_instance": str(message["chat"]["id"]),
            "data": data,
        }
        return await self._push_update({"callback_query": query})

    # Bot messages

    def _text_content(self, params: JsonDict) -> _Content:
        text = params.get("text")
        parse_mode = params.get("parse_mode")
        if not isinstance(text, str):
            raise _bad_request("message text is empty")
        plain, entities = _formatted(text, parse_mode)
        if not plain.strip():
            raise _bad_request("message text is empty")
        if _utf16_len(plain) > MAX_TEXT_LENGTH:
            raise _bad_request("message is too long")
        fields: JsonDict = {"text": plain}
        if entities:
            fields["entities"] = entities
        return _Content(fields, text, parse_mode, [])

    @staticmethod
    def _caption_fields(caption: object, parse_mode: object) -> JsonDict:
        if caption is None:
            return {}
        plain, entities = _formatted(str(caption), parse_mode)
        if _utf16_len(plain) > MAX_CAPTION_LENGTH:
            raise _bad_request("message caption is too long")
        fields: JsonDict = {"caption": plain} if plain else {}
        if entities:
            fields["caption_entities"] = entities
        return fields

    def _media_content(self, kind: str, stored: StoredFile, source: JsonDict) -> _Content:
        """Content of a photo or document message; ``source`` holds caption and parse_mode."""
        caption, parse_mode = source.get("caption"), source.get("parse_mode")
        media_json: Any = (
            [size.as_json() for size in self._photo_sets[stored.file_id]]
            if kind == "photo"
            else stored.as_json()
        )
        fields = {kind: media_json, **self._caption_fields(caption, parse_mode)}
        return _Content(fields, caption, parse_mode, [stored])

    def _store_sent(
        self,
        chat: _Chat,
        method: str,
        content: _Content,
        reply_markup: JsonDict | None,
        media_group_id: str | None = None,
    ) -> SentMessage:
        message: JsonDict = {
            "message_id": chat.take_message_id(),
            "from": self.bot_user,
            "chat": chat.as_json(),
            "date": _now(),
            **content.fields,
        }
        if media_group_id is not None:
            message["media_group_id"] = media_group_id
        if reply_markup is not None and "inline_keyboard" in reply_markup:
            message["reply_markup"] = reply_markup
        sent = SentMessage(
            chat_id=chat.id,
            message_id=message["message_id"],
            method=method,
            text=content.text,
            parse_mode=content.parse_mode,
            reply_markup=reply_markup,
            media=content.media,
            message=message,
        )
        chat.sent.append(sent)
        return sent

    def _message_to_edit(self, params: JsonDict) -> SentMessage:
        chat = self._chat_param(params)
        sent = chat.find_sent(_int_param(params, "message_id"))
        if sent is None or sent.deleted:
            raise _bad_request("message to edit not found")
        return sent

    @staticmethod
    def _apply_edit(
        sent: SentMessage,
        replaced: tuple[str, ...],
        fields: JsonDict,
        reply_markup: JsonDict | None,
    ) -> JsonDict:
        """Replace the ``replaced`` keys by ``fields`` and the inline keyboard by the new one."""
        dropped = {*replaced, "reply_markup", "edit_date"}
        message = {key: value for key, value in sent.message.items() if key not in dropped}
        message.update(fields)
        if reply_markup is not None and "inline_keyboard" in reply_markup:
            message["reply_markup"] = reply_markup
        unchanged = {key: value for key, value in sent.message.items() if key != "edit_date"}
        if message == unchanged:
            raise _bad_request(_NOT_MODIFIED)
        message["edit_date"] = _now()
        sent.history.append(sent.message)
        sent.message = message
        sent.reply_markup = reply_markup
        return message

    # Bot API methods

    async def _get_me(self, params: JsonDict, uploads: dict[str, _Upload]) -> Any:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _get_updates(self, params: JsonDict, uploads: dict[str, _Upload]) -> Any:
        if self._webhook is not None:
            raise _ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        self.polls += 1
        if "allowed_updates" in params:
            self._allowed_updates = list(params["allowed_updates"] or [])
        offset = params.get("offset", 0)
        if offset > 0:
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        elif offset < 0:
            self._pending = self._pending[offset:]
        limit = min(max(params.get("limit", MAX_UPDATES_PER_CALL), 1), MAX_UPDATES_PER_CALL)
        self._poll_generation += 1
        generation = self._poll_generation
        await self._notify_updates_changed()  # a poll still waiting ends with 409

        def answerable() -> bool:
            return (
                self._closing
                or self._webhook is not None
                or generation != self._poll_generation
                or bool(self._deliverable())
            )

        self.waiting_polls += 1
        try:
            async with asyncio.timeout(params.get("timeout", 0)), self._updates_changed:
                await self._updates_changed.wait_for(answerable)
        except TimeoutError:
            pass
        finally:
            self.waiting_polls -= 1
        if generation != self._poll_generation:
            raise _ApiError(
                409,
                "Conflict: terminated by other getUpdates request; "
                "make sure that only one bot instance is running",
            )
        if self._webhook is not None:
            raise _ApiError(409, "Conflict: terminated by setWebhook request")
        return self._deliverable()[:limit]

    async def _set_webhook(self, params: JsonDict, uploads: dict[str, _Upload]) -> Any:
        url = params.get("url") or ""
        if not url:
            return await self._delete_webhook(params, uploads)
        secret_token = params.get("secret_token")
        if secret_token is not None and not _SECRET_TOKEN.fullmatch(secret_token):
            raise _bad_request("secret token contains unallowed characters")
        if "allowed_updates" in params:
            self._allowed_updates = list(params["allowed_updates"] or [])
        if params.get("drop_pending_updates"):
            self._pending.clear()
        await self._replace_webhook(_Webhook(url, secret_token, params.get("max_connections", 40)))
        return True

    async def _delete_webhook(self, params: JsonDict, uploads: dict[str, _Upload]) -> Any:
        if params.get("drop_pending_updates"):
            self._pending.clear()
        await self._replace_webhook(None)
        return True

    async def _get_webhook_info(self, params: JsonDict, uploads: dict[str, _Upload]) -> Any:
        info: JsonDict = {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self._webhook is not None:
            info["url"] = self._webhook.url
            info["max_connections"] = self._webhook.max_connections
            if self._webhook.last_error is not None:
                info["last_error_date"], info["last_error_message"] = self._webhook.last_error
        if self._allowed_updates:
            info["allowed_updates"] = self._allowed_updates
        return info

    @staticmethod
    def _commands_key(scope: object, language_code: object) -> tuple[str, str]:
        scope = scope or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(language_code or "")

    async def _set_my_commands(self, params: JsonDict, uploads: dict[str, _Upload]) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad_request("commands is empty")
        for command in commands:
            if not _BOT_COMMAND.fullmatch(str(command.get("command", ""))):
                raise _bad_request("BOT_COMMAND_INVALID")
        key = self._commands_key(params.get("scope"), params.get("language_code"))
        self._commands[key] = commands
        return True

    async def _get_my_commands(self, params: JsonDict, uploads: dict[str, _Upload]) -> Any:
        return self.commands_for(params.get("scope"), params.get("language_code") or "")

    async def _delete_my_commands(self, params: JsonDict, uploads: dict[str, _Upload]) -> Any:
        self._commands.pop(
            self._commands_key(params.get("scope"), params.get("language_code")), None
        )
        return True

    async def _send_message(self, params: JsonDict, uploads: dict[str, _Upload]) -> Any:
        chat = self._chat_param(params)
        content = self._text_content(params)
        return self._store_sent(chat, "sendMessage", content, _reply_markup(params)).message

    async def _send_photo(self, params: JsonDict, uploads: dict[str, _Upload]) -> Any:
        chat = self._chat_param(params)
        reply_markup = _reply_markup(params)
        photo = self._photo_param(params.get("photo"), uploads, "photo")
        content = self._media_content("photo", photo, params)
        return self._store_sent(chat, "sendPhoto", content, reply_markup).message

    async def _send_document(self, params: JsonDict, uploads: dict[str, _Upload]) -> Any:
        chat = self._chat_param(params)
        reply_markup = _reply_markup(params)
        document = self._document_param(params.get("document"), uploads, "document")
        content = self._media_content("document", document, params)
        return self._store_sent(chat, "sendDocument", content, reply_markup).message

    async def _send_media_group(self, params: JsonDict, uploads: dict[str, _Upload]) -> Any:
        chat = self._chat_param(params)
        media = params.get("media")
        if not isinstance(media, list) or not MIN_ALBUM_SIZE <= len(media) <= MAX_ALBUM_SIZE:
            raise _bad_request("wrong number of media")
        contents = []
        for item in media:
            kind = item.get("type")
            if kind == "photo":
                stored = self._photo_param(item.get("media"), uploads, "media")
            elif kind == "document":
                stored = self._document_param(item.get("media"), uploads, "media")
            else:
                raise _bad_request(f"unsupported media type {kind!r} (this fake: photo, document)")
            contents.append(self._media_content(kind, stored, item))
        group_id = self._new_media_group_id()
        return [
            self._store_sent(chat, "sendMediaGroup", content, None, group_id).message
            for content in contents
        ]

    async def _edit_message_text(self, params: JsonDict, uploads: dict[str, _Upload]) -> Any:
        sent = self._message_to_edit(params)
        if "text" not in sent.message:
            raise _bad_request("there is no text in the message to edit")
        content = self._text_content(params)
        message = self._apply_edit(
            sent, ("text", "entities"), content.fields, _reply_markup(params)
        )
        sent.text, sent.parse_mode = content.text, content.parse_mode
        return message

    async def _edit_message_caption(self, params: JsonDict, uploads: dict[str, _Upload]) -> Any:
        sent = self._message_to_edit(params)
        if not sent.media:
            raise _bad_request("there is no caption in the message to edit")
        caption, parse_mode = params.get("caption"), params.get("parse_mode")
        fields = self._caption_fields(caption, parse_mode)
        message = self._apply_edit(
            sent, ("caption", "caption_entities"), fields, _reply_markup(params)
        )
        sent.text, sent.parse_mode = caption, parse_mode
        return message

    async def _edit_message_reply_markup(
        self, params: JsonDict, uploads: dict[str, _Upload]
    ) -> Any:
        sent = self._message_to_edit(params)
        return self._apply_edit(sent, (), {}, _reply_markup(params))

    async def _delete_message(self, params: JsonDict, uploads: dict[str, _Upload]) -> Any:
        chat = self._chat_param(params)
        message_id = _int_param(params, "message_id")
        if not 0 < message_id < chat.next_message_id or message_id in chat.deleted_ids:
            raise _bad_request("message to delete not found")
        chat.deleted_ids.add(message_id)
        sent = chat.find_sent(message_id)
        if sent is not None:
            sent.deleted = True
        return True

    async def _answer_callback_query(self, params: JsonDict, uploads: dict[str, _Upload]) -> Any:
        query_id = params.get("callback_query_id")
        if query_id not in self._open_callback_queries:
            raise _bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        self._open_callback_queries.discard(query_id)
        return True

    async def _send_chat_action(self, params: JsonDict, uploads: dict[str, _Upload]) -> Any:
        self._chat_param(params)
        if params.get("action") not in _CHAT_ACTIONS:
            raise _bad_request("wrong parameter action in request")
        return True

    async def _get_file(self, params: JsonDict, uploads: dict[str, _Upload]) -> Any:
        stored = self.files.get(str(params.get("file_id")))
        if stored is None:
            raise _bad_request("invalid file_id")
        if len(stored.data) > MAX_DOWNLOAD_BYTES:
            raise _bad_request("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    async def _close(self, params: JsonDict, uploads: dict[str, _Upload]) -> Any:
        return True

    async def _log_out(self, params: JsonDict, uploads: dict[str, _Upload]) -> Any:
        return True

    async def _get_chat(self, params: JsonDict, uploads: dict[str, _Upload]) -> Any:
        chat_id = params.get("chat_id")
        chat = self._chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise _bad_request("chat not found")
        return {
            **chat.as_json(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    # Webhook delivery

    async def _replace_webhook(self, webhook: _Webhook | None) -> None:
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        self._webhook = webhook
        if webhook is not None:
            self._webhook_task = asyncio.create_task(self._deliver_to_webhook(webhook))
        await self._notify_updates_changed()  # a waiting getUpdates ends with 409

    async def _deliver_to_webhook(self, webhook: _Webhook) -> None:
        """POST pending updates one at a time, in order; retry one the bot didn't take."""
        while True:
            async with self._updates_changed:
                await self._updates_changed.wait_for(lambda: bool(self._deliverable()))
                update = self._deliverable()[0]
            delivery = await self._post_update(webhook, update)
            self.webhook_deliveries.append(delivery)
            if delivery.error is None:
                self._pending = [pending for pending in self._pending if pending is not update]
            else:
                webhook.last_error = (_now(), delivery.error)
                await asyncio.sleep(self._webhook_retry_delay)

    async def _post_update(self, webhook: _Webhook, update: JsonDict) -> WebhookDelivery:
        assert self._session is not None, "FakeTelegram.start() was not called"
        headers = {}
        if webhook.secret_token is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = webhook.secret_token
        update_id = update["update_id"]
        try:
            async with self._session.post(webhook.url, json=update, headers=headers) as response:
                status, reason = response.status, response.reason
        except (aiohttp.ClientError, TimeoutError) as error:
            return WebhookDelivery(update_id, webhook.url, None, f"Connection failed: {error}")
        error_message = None
        if not 200 <= status < 300:
            error_message = f"Wrong response from the webhook: {status} {reason}"
        return WebhookDelivery(update_id, webhook.url, status, error_message)


# --- Test users ----------------------------------------------------------------------------


class FakeUser:
    """A Telegram user who talks to the bot in one chat (their private chat by default).

    Each ``send_*``/``press*`` method queues an update for the bot and returns it (as JSON).
    """

    def __init__(self, fake: FakeTelegram, user: JsonDict, chat: _Chat) -> None:
        self._fake = fake
        self.user = user
        self._chat = chat
        self._seen = len(chat.sent)  # wait_for_messages returns what arrives from now on

    @property
    def id(self) -> int:
        return int(self.user["id"])

    @property
    def chat_id(self) -> int:
        return self._chat.id

    @property
    def inbox(self) -> list[SentMessage]:
        """Every message the bot sent to this chat, in order (deleted ones flagged)."""
        return list(self._chat.sent)

    def in_chat(
        self, chat_id: int, chat_type: str = "supergroup", title: str | None = None
    ) -> FakeUser:
        """The same user, talking in another chat (a group by default)."""
        chat = self._fake._ensure_chat(chat_id, chat_type, title=title)
        return FakeUser(self._fake, self.user, chat)

    async def wait_for_messages(
        self,
        count: int = 1,
        timeout: float = 15.0,
    ) -> list[SentMessage]:
        """The next ``count`` messages the bot sends to this chat since the previous call."""
        wanted = self._seen + count
        try:
            await self._fake.wait_until(lambda: len(self._chat.sent) >= wanted, timeout)
        except AssertionError:
            raise AssertionError(
                f"expected {count} new message(s) from the bot in chat {self.chat_id} within "
                f"{timeout}s, after the {self._seen} already seen; inbox:\n{self._describe_inbox()}"
            ) from None
        messages = self._chat.sent[self._seen : wanted]
        self._seen = wanted
        return messages

    async def send_text(self, text: str) -> JsonDict:
        fields: JsonDict = {"text": text}
        command = _LEADING_COMMAND.match(text)
        if command is not None:
            length = _utf16_len(command.group())
            fields["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return await self._send(fields)

    async def send_photo(
        self, data: bytes, caption: str | None = None, media_group_id: str | None = None
    ) -> JsonDict:
        fields: JsonDict = {"photo": [size.as_json() for size in self._fake._register_photo(data)]}
        if caption is not None:
            fields["caption"] = caption
        if media_group_id is not None:
            fields["media_group_id"] = media_group_id
        return await self._send(fields)

    async def send_album(self, photos: list[bytes], caption: str | None = None) -> list[JsonDict]:
        """One update per photo, sharing a media_group_id; the caption goes on the first."""
        if not MIN_ALBUM_SIZE <= len(photos) <= MAX_ALBUM_SIZE:
            raise ValueError(f"an album has {MIN_ALBUM_SIZE} to {MAX_ALBUM_SIZE} photos")
        group_id = self._fake._new_media_group_id()
        return [
            await self.send_photo(data, caption if index == 0 else None, group_id)
            for index, data in enumerate(photos)
        ]

    async def send_document(
        self, data: bytes, file_name: str = "document.pdf", mime_type: str = "application/pdf"
    ) -> JsonDict:
        document = self._fake._register_document(_Upload(file_name, mime_type, data))
        return await self._send({"document": document.as_json()})

    async def send_contact(
        self, phone_number: str, first_name: str | None = None, user_id: int | None = None
    ) -> JsonDict:
        """Share a contact; by default the sender's own (name and user_id)."""
        contact = {
            "phone_number": phone_number,
            "first_name": first_name or self.user["first_name"],
            "user_id": self.id if user_id is None else user_id,
        }
        return await self._send({"contact": contact})

    async def send_sticker(self, emoji: str = "🙂") -> JsonDict:
        details = {
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "type": "regular",
            "emoji": emoji,
        }
        sticker = self._fake._register_file(
            "sticker", b"RIFF fake sticker WEBP", extension=".webp", details=details
        )
        return await self._send({"sticker": sticker.as_json()})

    async def send_video(self) -> JsonDict:
        details = {"width": 640, "height": 360, "duration": 3, "mime_type": "video/mp4"}
        video = self._fake._register_file(
            "video", b"fake mp4 video", extension=".mp4", details=details
        )
        return await self._send({"video": video.as_json()})

    async def send_voice(self) -> JsonDict:
        details = {"duration": 2, "mime_type": "audio/ogg"}
        voice = self._fake._register_file(
            "voice", b"OggS fake voice", extension=".oga", details=details
        )
        return await self._send({"voice": voice.as_json()})

    async def press(self, label_or_data: str) -> JsonDict:
        """Press the button with this text or callback_data on the newest message having it."""
        for sent in reversed(self._chat.sent):
            if sent.deleted:
                continue
            for button in sent.buttons:
                if label_or_data not in (button.get("text"), button.get("callback_data")):
                    continue
                data = button.get("callback_data")
                if data is None:
                    raise AssertionError(f"button {button} has no callback_data to press")
                return await self._fake._push_callback_query(self.user, sent.message, data)
        raise AssertionError(
            f"no inline button {label_or_data!r} in chat {self.chat_id}; "
            f"inbox:\n{self._describe_inbox()}"
        )

    async def press_data(self, data: str, message_id: int) -> JsonDict:
        """A callback query with any data, as from a forged or stale button.

        The query carries the message as it stands now, or an inaccessible message (date 0)
        when the bot never sent it or deleted it.
        """
        sent = self._chat.find_sent(message_id)
        if sent is not None and not sent.deleted:
            message = sent.message
        else:
            message = {"chat": self._chat.as_json(), "message_id": message_id, "date": 0}
        return await self._fake._push_callback_query(self.user, message, data)

    async def _send(self, fields: JsonDict) -> JsonDict:
        message = {
            "message_id": self._chat.take_message_id(),
            "from": self.user,
            "chat": self._chat.as_json(),
            "date": _now(),
            **fields,
        }
        return await self._fake._push_update({"message": message})

    def _describe_inbox(self) -> str:
        return "\n".join(f"  {sent.describe()}" for sent in self._chat.sent) or "  (empty)"
