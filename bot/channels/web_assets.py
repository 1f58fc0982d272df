"""The web chat's own files, served compressed and cached.

Everything is read and gzipped once at start-up (the files are small). The page names its
script and style sheet with `?v=<content hash>`, so a browser keeps them for a year and
fetches them again only when they change; the page itself and the unversioned embed script
are revalidated on every visit with their ETag (a 304 costs a few bytes on a slow link).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from aiohttp import hdrs, web
from PIL import Image, ImageDraw

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
ICON_CACHE = "public, max-age=604800"
VERSIONED = ("chat.css", "chat.js")
"""Static files the page refers to by version."""
ACCENT = "#b3261e"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    content_type: str
    etag: str

    @classmethod
    def of(cls, body: bytes, content_type: str) -> Asset:
        digest = hashlib.sha256(body).hexdigest()[:16]
        compressible = content_type.startswith(("text/", "application/javascript"))
        gzipped = gzip.compress(body, compresslevel=9, mtime=0) if compressible else None
        return cls(body, gzipped, content_type, f'"{digest}"')

    @property
    def version(self) -> str:
        return self.etag.strip('"')

    def respond(self, request: web.Request, cache_control: str) -> web.Response:
        """The file, gzipped when the browser accepts it; 304 when its copy is current."""
        headers = {
            hdrs.ETAG: self.etag,
            hdrs.CACHE_CONTROL: cache_control,
            hdrs.VARY: hdrs.ACCEPT_ENCODING,
        }
        if self.etag in request.headers.get(hdrs.IF_NONE_MATCH, ""):
            return web.Response(status=304, headers=headers)
        body = self.body
        if self.gzipped is not None and "gzip" in request.headers.get(hdrs.ACCEPT_ENCODING, ""):
            body = self.gzipped
            headers[hdrs.CONTENT_ENCODING] = "gzip"
        charset = "utf-8" if self.content_type.startswith("text/") else None
        return web.Response(
            body=body, content_type=self.content_type, charset=charset, headers=headers
        )


def _load(path: Path) -> Asset:
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if content_type in ("text/javascript", "application/javascript"):
        content_type = "text/javascript"
    return Asset.of(path.read_bytes(), content_type)


class WebAssets:
    """The page, its static files and the site's icon, ready to serve."""

    def __init__(self, page_dir: Path) -> None:
        static = page_dir / "static"
        self.static = {path.name: _load(path) for path in sorted(static.iterdir())}
        html = (page_dir / "chat.html").read_text(encoding="utf-8")
        for name in VERSIONED:
            url = f"/chat/static/{name}"
            html = html.replace(f'"{url}"', f'"{url}?v={self.static[name].version}"')
        self.page = Asset.of(html.encode(), "text/html")
        self.favicon = Asset.of(_draw_favicon(), "image/x-icon")

    async def on_favicon(self, request: web.Request) -> web.Response:
        return self.favicon.respond(request, ICON_CACHE)

    async def on_embed_script(self, request: web.Request) -> web.Response:
        return self.static["embed.js"].respond(request, REVALIDATE)

    async def on_static(self, request: web.Request) -> web.Response:
        asset = self.static.get(request.match_info["name"])
        if asset is None:
            raise web.HTTPNotFound()
        current = request.query.get("v") == asset.version
        return asset.respond(request, IMMUTABLE if current else REVALIDATE)


def _draw_favicon() -> bytes:
    """A round mirror ("gương") on the accent colour, at 16, 32 and 48 px."""
    image = Image.new("RGBA", (48, 48), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, 47, 47), radius=10, fill=ACCENT)
    draw.ellipse((10, 8, 38, 36), fill="#ffffff")
    draw.rectangle((22, 36, 26, 42), fill="#ffffff")
    draw.arc((15, 13, 33, 31), start=200, end=250, fill=ACCENT, width=3)
    buffer = io.BytesIO()
    image.save(buffer, format="ICO", sizes=[(16, 16), (32, 32), (48, 48)])
    return buffer.getvalue()
