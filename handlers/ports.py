"""Services the flows use but do not own, typed here and implemented in `bot/`.

Keeping the protocols beside the flows lets `handlers/` stay free of any import
from `bot/` (the arrows point one way) while the runtime hands the real
implementations in through `FlowContext`.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol


class MediaProblem(StrEnum):
    TOO_LARGE = "too_large"
    NOT_AN_IMAGE = "not_an_image"
    TOO_MANY_PIXELS = "too_many_pixels"
    UNAVAILABLE = "unavailable"
    """The platform no longer had the file (an expired link) or could not be reached."""


class MediaRejected(Exception):
    """The bytes offered are not an image we are willing to keep."""

    def __init__(self, problem: MediaProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class StoredImage:
    sha256: str
    width: int
    height: int
    size: int
    mime_type: str
    phash: str = ""
    """Perceptual hash (16 hex digits): near-identical pictures have nearby hashes."""
    files: tuple[tuple[str, bytes], ...] = field(default=(), repr=False, compare=False)
    """What `MediaStore.keep` writes (a path under the store, its bytes): nothing is on
    disk until a flow keeps the image."""


class MediaStore(Protocol):
    """Decodes, cleans and stores images by content."""

    max_bytes: int

    async def ingest(self, data: bytes) -> StoredImage:
        """Prove `data` is an image and strip its metadata; raise MediaRejected.

        Nothing is stored yet: `keep` does, once a flow has a use for the image."""
        ...

    async def keep(self, image: StoredImage) -> None:
        """Store `image` for good (or mark it as just used, when it is already stored)."""
        ...

    async def forget_unreferenced(self, referenced: Set[str], *, unused_since: datetime) -> int:
        """Delete the stored files of images not in `referenced` and not kept since
        `unused_since`; return how many files went."""
        ...

    def path_of(self, sha256: str) -> Path: ...


class SendNow(Protocol):
    async def __call__(self, channel: str, chat_id: str, payload: dict[str, Any]) -> str:
        """Send one message at once (not through the outbox); returns its platform id."""
        ...
