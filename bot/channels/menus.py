"""Numbered menus, for channels without buttons (Zalo).

A message's buttons become a numbered list under its text, and the options are kept in
the database for the chat (`models.menus`). The person's next reply "2", or the words
of an option (with or without diacritics), is then the press of that button; the flows
never know the difference. The menu holds until a newer message offers options, as a
Telegram button stays pressable under a later message: a number refers to the newest
message that had options, and the flows refuse an answer that no longer fits their step
(as they refuse an old button). Once a later message without options went out, only
numbers pick from the menu: words answer the later question.
"""

from __future__ import annotations

from dataclasses import dataclass

from handlers.choices import match_choice
from handlers.context import Translator
from handlers.messages import Button
from handlers.text import N_

HINT = N_("Reply with the number of your choice (1–{count}), or type it.")
OUT_OF_RANGE = N_(
    "There is no option {number}: please reply with a number from 1 to {count}, "
    "or type your choice."
)


@dataclass(frozen=True, slots=True)
class OutOfRange:
    number: int
    count: int


def numbered(
    text: str, buttons: list[list[Button]], translate: Translator
) -> tuple[str, list[list[str]]]:
    """The text with its buttons as a numbered list, and the options to remember."""
    options = [[button.label, button.payload] for row in buttons for button in row]
    lines = [f"{index}. {label}" for index, (label, _payload) in enumerate(options, start=1)]
    hint = translate(HINT).format(count=len(options))
    return "\n\n".join(part for part in (text, "\n".join(lines), hint) if part), options


def choose(text: str, options: list[list[str]], words: bool = True) -> str | OutOfRange | None:
    """The payload the reply picks: by number, or by the option's words (unless `words` is
    false: a later question was asked); None if neither."""
    wanted = text.strip().rstrip(".)")
    if wanted.isascii() and wanted.isdecimal() and len(wanted) < 6:
        number = int(wanted)
        if 1 <= number <= len(options):
            return options[number - 1][1]
        return OutOfRange(number, len(options))
    if not words:
        return None
    return match_choice(text, [[Button(label, payload)] for label, payload in options])
