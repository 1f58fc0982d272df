"""The neutral message model: the language the flows speak.

Channel adapters (Telegram, Zalo, web chat) translate a platform update into an
`Inbound` and render each `Outbound` with the platform's API. Flows never see a
platform object and never ask which platform they talk to; they consult
`Capabilities` when a feature (buttons, contact sharing) may be missing.

Text in an `Outbound` is a small HTML subset (`<b>`, `<i>`, `<code>`) in which
every user-supplied value has already been escaped (see `handlers.text.fmt`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

CALLBACK_DATA_MAX_BYTES = 64


class InboundKind(StrEnum):
    TEXT = "text"
    COMMAND = "command"
    BUTTON = "button"
    PHOTO = "photo"
    DOCUMENT = "document"
    CONTACT = "contact"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a channel can render. Flows degrade gracefully when a flag is off."""

    inline_buttons: bool = True
    message_edits: bool = True
    albums: bool = True
    contact_request: bool = False
    text_prefill: bool = False
    """The channel can put a text into the user's input box for them to edit and send."""
    max_text_length: int = 4096
    max_caption_length: int = 1024


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file the user sent. `download` fetches its bytes (at most `max_bytes`)."""

    file_id: str
    size: int | None
    mime_type: str | None
    file_name: str | None
    download: Callable[[int], Awaitable[bytes]]
    group_id: str | None = None


@dataclass(frozen=True, slots=True)
class Contact:
    phone: str
    name: str
    is_own: bool


@dataclass(frozen=True, slots=True)
class Inbound:
    """One thing a person did in a chat, whatever the platform."""

    channel: str
    chat_id: str
    user_id: str
    update_id: str
    kind: InboundKind
    display_name: str = ""
    language_code: str | None = None
    text: str = ""
    command: str = ""
    args: str = ""
    payload: str = ""
    attachment: Attachment | None = None
    contact: Contact | None = None
    unsupported_type: str = ""
    in_group: bool = False


def split_command(text: str) -> tuple[str, str] | None:
    """("start", "report") for "/start@guongsang_bot report"; None when `text` is no command."""
    if not text.startswith("/") or len(text) < 2 or text[1].isspace():
        return None
    head, _, args = text[1:].partition(" ")
    return head.split("@", 1)[0].lower(), args.strip()


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    payload: str

    def __post_init__(self) -> None:
        if len(self.payload.encode()) > CALLBACK_DATA_MAX_BYTES:
            raise ValueError(
                f"button payload over {CALLBACK_DATA_MAX_BYTES} bytes: {self.payload!r}"
            )


@dataclass(frozen=True, slots=True)
class Photo:
    """An image already in the media store, addressed by its content hash."""

    sha256: str
    caption: str = ""


@dataclass(slots=True)
class Outbound:
    """One message to send to one chat."""

    chat_id: str
    text: str = ""
    buttons: list[list[Button]] = field(default_factory=list)
    photos: list[Photo] = field(default_factory=list)
    request_contact_label: str = ""
    remove_keyboard: bool = False
    force_reply: bool = False
    """Open the reply box (in a group, the answer must reply to this message to reach us)."""
    edit_message_id: str = ""
    """Replace this earlier message (where the channel can edit) instead of sending anew."""
    toast: bool = False
    """A short notice about a button press; shown as a pop-up where the channel has one."""
    coalesce_key: str = ""
    """Messages with the same key sent in quick succession collapse into the last one
    (for example one acknowledgement for a whole photo album)."""
    bulk: bool = False
    """Part of a broadcast: the channel may use its bulk options (Telegram's paid broadcast)."""
    prefill: str = ""
    """A text to put into the user's input box, to edit and send (see `text_prefill`)."""
    skip_parts: int = 0
    """Platform calls of this message already made by an earlier, interrupted attempt (an
    album sent before its text failed): the channel resumes after them."""

    def to_payload(self) -> dict[str, Any]:
        """A JSON-ready form, for the outbox."""
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Outbound:
        return cls(
            **{
                **payload,
                "buttons": [[Button(**b) for b in row] for row in payload.get("buttons", [])],
                "photos": [Photo(**p) for p in payload.get("photos", [])],
            }
        )
