"""How a person is named outside the chats (ADMIN_IDS, `guongsang role`): `channel:id`.

Each channel has its own kind of id: Telegram's is a positive number, Zalo's the `chat_id`
of the person's messages (letters, digits, `-`, `_`), the web chat's the browser session
(24 URL-safe characters, a sandbox persona's with `.persona` after them).
"""

from __future__ import annotations

import re

_SHAPES: dict[str, tuple[re.Pattern[str], str]] = {
    "telegram": (
        re.compile(r"[1-9][0-9]{0,15}"),
        "a Telegram id is a number, for example telegram:123456789 (@userinfobot tells it)",
    ),
    "zalo": (
        re.compile(r"[0-9A-Za-z_-]{1,64}"),
        "a Zalo id is the chat_id of the person's log line zalo.message.received, "
        "for example zalo:2d0d9f8dbd7a5424d16b",
    ),
    "web": (
        re.compile(r"[0-9A-Za-z_-]{24}(\.[a-z0-9]+)?"),
        "a web chat id is a session id of 24 letters, digits, - or _",
    ),
}


def parse_person(text: str) -> tuple[str, str]:
    """(channel, id) from `channel:id`; ValueError with a sentence saying what to write."""
    channel, _, external_id = text.strip().partition(":")
    shape = _SHAPES.get(channel)
    if shape is None:
        known = ", ".join(f"{name}:…" for name in _SHAPES)
        raise ValueError(f"{text!r} must be channel:id with channel one of {known}")
    pattern, explanation = shape
    if pattern.fullmatch(external_id) is None:
        raise ValueError(f"{text!r} is not a {channel} id: {explanation}")
    return channel, external_id
