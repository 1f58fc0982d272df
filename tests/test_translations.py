"""Every message the flows can say is translated, in Vietnamese and in English."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot.i18n import LOCALES, catalog_path

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"_": None, "N_": None}
PLACEHOLDER = re.compile(r"\{(\w+)\}")
TAG = re.compile(r"</?\w+")


SOURCES = ("handlers", "bot/channels")


def source_messages() -> set[str]:
    return {
        message
        for folder in SOURCES
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT / folder), method_map=[("**.py", "python")], keywords=KEYWORDS
        )
    }


def test_the_flows_have_messages_to_translate() -> None:
    assert len(source_messages()) > 100


@pytest.mark.parametrize("locale", LOCALES)
def test_catalog_is_complete(locale: str) -> None:
    catalog = read_po(catalog_path(locale).open("rb"), locale=locale)
    missing = [m for m in sorted(source_messages()) if not (catalog.get(m) and catalog[m].string)]
    assert missing == [], f"untranslated in {locale}: {missing}"
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert fuzzy == [], f"fuzzy in {locale}: {fuzzy}"


@pytest.mark.parametrize("locale", LOCALES)
def test_translations_keep_placeholders_and_markup(locale: str) -> None:
    catalog = read_po(catalog_path(locale).open("rb"), locale=locale)
    for message in catalog:
        if not message.id:
            continue
        source, translated = str(message.id), str(message.string)
        assert set(PLACEHOLDER.findall(translated)) == set(PLACEHOLDER.findall(source)), source
        assert Counter(TAG.findall(translated)) == Counter(TAG.findall(source)), source
