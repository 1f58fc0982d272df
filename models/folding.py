"""Comparing Vietnamese text the way people type it: with or without diacritics, NFC or NFD."""

from __future__ import annotations

import unicodedata

_D_STROKE = str.maketrans({"đ": "d", "Đ": "d"})


def fold(text: str) -> str:
    """Lower-case `text`, drop its diacritics and collapse its whitespace.

    "Xã  Đồng Đăng" (NFC), its NFD form and "xa dong dang" all fold to "xa dong dang".
    """
    decomposed = unicodedata.normalize("NFD", text.translate(_D_STROKE))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.casefold().split())
