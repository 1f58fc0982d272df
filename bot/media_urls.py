"""Signed, expiring addresses of stored images, for platforms that take photos by URL (Zalo).

`/media/<expires>/<signature>/<sha256>.jpg`: the signature is an HMAC-SHA256 of the
image's hash and the expiry (Unix seconds), checked in constant time. The image comes
from the content-addressed media store; nothing else is reachable this way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from datetime import timedelta

from aiohttp import web

from handlers.ports import MediaStore

ROUTE = "/media/{expires}/{signature}/{sha256}.jpg"
EXPIRES = re.compile(r"[0-9]{1,12}")
"""Unix seconds: twelve digits last until the year 33658."""
KEY_LABEL = b"gs-media-urls"


class MediaUrls:
    def __init__(
        self,
        media: MediaStore,
        secret: bytes,
        public_base_url: str,
        valid_for: timedelta,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._media = media
        self._key = hmac.new(secret, KEY_LABEL, hashlib.sha256).digest()
        self._base_url = public_base_url.rstrip("/")
        self._valid_seconds = int(valid_for.total_seconds())
        self._clock = clock

    def url_for(self, sha256: str) -> str:
        expires = int(self._clock()) + self._valid_seconds
        return f"{self._base_url}/media/{expires}/{self._signature(sha256, expires)}/{sha256}.jpg"

    def route(self) -> web.RouteDef:
        return web.get(ROUTE, self._serve)

    def _signature(self, sha256: str, expires: int) -> str:
        digest = hmac.new(self._key, f"{sha256}:{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def valid(self, sha256: str, expires: str, signature: str) -> bool:
        """Whether an address whose expiry matches EXPIRES is signed and not expired."""
        if int(expires) < self._clock():
            return False
        expected = self._signature(sha256, int(expires))
        return hmac.compare_digest(signature.encode(), expected.encode())

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        sha256, expires = request.match_info["sha256"], request.match_info["expires"]
        try:
            path = self._media.path_of(sha256)
        except ValueError:
            raise web.HTTPNotFound() from None
        if not EXPIRES.fullmatch(expires):
            raise web.HTTPNotFound()
        if not self.valid(sha256, expires, request.match_info["signature"]):
            raise web.HTTPForbidden()
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})
