"""Understanding a typed answer to a question that offered buttons."""

from __future__ import annotations

from handlers.messages import Button
from models.folding import fold


def match_choice(text: str, buttons: list[list[Button]]) -> str | None:
    """The payload of the button whose label the person typed, if exactly one fits.

    Accepts the whole label or an unambiguous start of it, with or without
    diacritics, ignoring emoji and case: "nong dan" picks "Nông dân".
    """
    wanted = _bare(text)
    if not wanted:
        return None
    flat = [button for row in buttons for button in row]
    exact = [b.payload for b in flat if _bare(b.label) == wanted]
    if len(exact) == 1:
        return exact[0]
    starts = [b.payload for b in flat if _bare(b.label).startswith(wanted)]
    return starts[0] if len(starts) == 1 else None


def _bare(label: str) -> str:
    return " ".join("".join(ch if ch.isalnum() else " " for ch in fold(label)).split())
