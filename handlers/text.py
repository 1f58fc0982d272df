"""Building message text safely: user values are always escaped for the HTML subset."""

from __future__ import annotations

import html


def N_(message: str) -> str:
    """Mark `message` for the catalog without translating it here."""
    return message


def esc(value: object) -> str:
    return html.escape(str(value), quote=False)


def fmt(template: str, **values: object) -> str:
    """Fill a (translated, trusted) template with escaped user values."""
    return template.format(**{key: esc(value) for key, value in values.items()})


def clip(text: str, limit: int) -> str:
    """Shorten `text` to `limit` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
