"""The flows' HTML subset (`<b>`, `<i>`, `<code>`, escaped text) for channels without HTML.

The web chat gets styled segments that the page turns into DOM text nodes (never
HTML); a plain-text channel gets the text alone.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import TypedDict

STYLES = {"b": "bold", "strong": "bold", "i": "italic", "em": "italic", "code": "code"}


class Segment(TypedDict):
    text: str
    styles: list[str]


class _SegmentParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.segments: list[Segment] = []
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in STYLES:
            self._open.append(STYLES[tag])

    def handle_endtag(self, tag: str) -> None:
        if tag in STYLES and STYLES[tag] in self._open:
            self._open.remove(STYLES[tag])

    def handle_data(self, data: str) -> None:
        styles = sorted(set(self._open))
        if self.segments and self.segments[-1]["styles"] == styles:
            self.segments[-1]["text"] += data
        else:
            self.segments.append({"text": data, "styles": styles})


def to_segments(text: str) -> list[Segment]:
    parser = _SegmentParser()
    parser.feed(text)
    parser.close()
    return parser.segments


def to_plain(text: str) -> str:
    return "".join(segment["text"] for segment in to_segments(text))
