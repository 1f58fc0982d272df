"""Translations from the gettext catalogs in bot/locale, compiled in memory at start-up.

Maintainers update the catalogs with Babel (see docs/translations.md); no compiled
`.mo` file is kept in the repository.
"""

from __future__ import annotations

import gettext
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from handlers.context import Translator

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"
LOCALES = ("vi", "en")


def catalog_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def load_translations() -> dict[str, Translator]:
    translators: dict[str, Translator] = {}
    for locale in LOCALES:
        with catalog_path(locale).open("rb") as po:
            catalog = read_po(po, locale=locale)
        compiled = BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        translators[locale] = _never_the_header(gettext.GNUTranslations(compiled).gettext)
    return translators


def _never_the_header(translate: Translator) -> Translator:
    """An empty message stays empty: for an empty id, gettext answers the catalogue's
    header (Project-Id-Version, Content-Type…), which must never reach a user."""

    def translator(message: str) -> str:
        return translate(message) if message else ""

    return translator
