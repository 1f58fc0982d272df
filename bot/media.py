"""Image intake: prove that the bytes are a picture, strip every piece of metadata, and
store the result by content.

Why this module exists: a photo of a good deed can say more than the reporter meant to.
Telegram drops EXIF when an image is sent *as a photo*, but an image sent *as a file*
(and anything downloaded from Zalo's CDN) arrives byte for byte, with EXIF GPS
coordinates that give away where the reporter stood, plus the camera make, model and
serial number, XMP edit history, ICC profiles and comments. The law on personal data
(DESIGN.md §5) asks us to strip all of that from every stored and published image.

The only way to be sure nothing survives is to decode the pixels and encode a brand-new
JPEG from them: we never copy a byte of the upload into the stored file. Decoding
untrusted input has its own dangers, so:

* the byte size is checked before anything is parsed;
* only a short list of formats is tried (JPEG, PNG, WEBP, GIF, BMP, TIFF);
* width x height from the header is checked against our own ``max_pixels`` before a
  single pixel is decoded (a 30000x30000 PNG can be a few kilobytes on disk and 900 MB in
  memory). We do not rely on the process-global ``Image.MAX_IMAGE_PIXELS``: any caller
  may raise it or set it to ``None``. Pillow's own ``DecompressionBombError`` (and its
  warning, should some filter turn it into an exception) is still caught and reported as
  ``TOO_MANY_PIXELS``. ``warnings.catch_warnings`` is deliberately *not* used to turn
  Pillow's warning into an error: on Python 3.12 it swaps process-global state and is not
  thread-safe, and this code runs in worker threads. Instead the image is rejected as soon
  as it exceeds the smaller of our limit and Pillow's warning threshold, which is exactly
  "the warning is an error here", with no global state touched;
* all CPU-heavy work runs in a worker thread (``asyncio.to_thread``), a few at a time, so
  the event loop never blocks and memory stays bounded.

``keep_original=True`` additionally keeps the upload exactly as received, *metadata
included* (GPS and all), under ``root/originals/``. It is off by default and should only
be switched on by an explicit admin setting (DESIGN.md §5).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from contextlib import suppress
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import imagehash
from PIL import Image, ImageCms, ImageOps

from bot.private_files import make_private_dirs
from handlers.ports import MediaProblem, MediaRejected, StoredImage

__all__ = ["ImageStore"]

JPEG_QUALITY = 85
MIME_TYPE = "image/jpeg"

# Pillow format name -> extension used for a kept original.
_FORMATS: dict[str, str] = {
    "JPEG": "jpg",
    "MPO": "jpg",  # phone JPEGs with an embedded depth/preview frame open as MPO
    "PNG": "png",
    "WEBP": "webp",
    "GIF": "gif",
    "BMP": "bmp",
    "TIFF": "tif",
}
# MPO is reached through the JPEG opener, so it is not listed for Image.open.
_OPEN_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_HIGH_DEPTH_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
_CMS_MODES = frozenset({"RGB", "CMYK", "L"})
_SRGB = ImageCms.createProfile("sRGB")


@dataclass(frozen=True, slots=True)
class _Cleaned:
    jpeg: bytes
    width: int
    height: int
    extension: str
    phash: str


class ImageStore:
    """A `MediaStore` keeping metadata-free JPEGs at ``root/ab/cd/<sha256>.jpg``."""

    def __init__(
        self,
        root: Path,
        *,
        max_bytes: int,
        max_pixels: int,
        max_side: int = 2560,
        keep_original: bool = False,
        max_concurrent: int = 2,
    ) -> None:
        for name, value in (
            ("max_bytes", max_bytes),
            ("max_pixels", max_pixels),
            ("max_side", max_side),
            ("max_concurrent", max_concurrent),
        ):
            if value < 1:
                raise ValueError(f"{name} must be positive, got {value}")
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.max_side = max_side
        self.keep_original = keep_original
        # Each decode may hold a few bytes per pixel several times over; bound how many
        # run at once so a burst of uploads cannot exhaust memory.
        self._slots = asyncio.Semaphore(max_concurrent)

    async def ingest(self, data: bytes) -> StoredImage:
        """Prove `data` is an image, strip its metadata, store it; raise MediaRejected."""
        if len(data) > self.max_bytes:
            raise MediaRejected(MediaProblem.TOO_LARGE)
        async with self._slots:
            return await asyncio.to_thread(self._ingest_blocking, data)

    def path_of(self, sha256: str) -> Path:
        """Where the cleaned image named `sha256` lives (it may not exist)."""
        _check_sha256(sha256)
        return self.root / sha256[:2] / sha256[2:4] / f"{sha256}.jpg"

    def original_path_of(self, sha256: str, extension: str) -> Path:
        """Where the untouched upload behind cleaned image `sha256` is kept, if it is."""
        _check_sha256(sha256)
        if extension not in _FORMATS.values():
            raise ValueError(f"unknown image extension {extension!r}")
        return self.root / "originals" / f"{sha256}.{extension}"

    def _ingest_blocking(self, data: bytes) -> StoredImage:
        cleaned = _clean(data, max_pixels=self.max_pixels, max_side=self.max_side)
        digest = hashlib.sha256(cleaned.jpeg).hexdigest()
        _write_atomically(self.path_of(digest), cleaned.jpeg)
        if self.keep_original:
            _write_atomically(self.original_path_of(digest, cleaned.extension), data)
        return StoredImage(
            sha256=digest,
            width=cleaned.width,
            height=cleaned.height,
            size=len(cleaned.jpeg),
            mime_type=MIME_TYPE,
            phash=cleaned.phash,
        )


def _check_sha256(sha256: str) -> None:
    if not isinstance(sha256, str) or not _SHA256_RE.fullmatch(sha256):
        raise ValueError("expected 64 lowercase hexadecimal characters")


def _clean(data: bytes, *, max_pixels: int, max_side: int) -> _Cleaned:
    """Decode `data` and re-encode it as a bare JPEG; raise MediaRejected."""
    try:
        image, extension = _decode(data, max_pixels=max_pixels, max_side=max_side)
    except MediaRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaRejected(MediaProblem.TOO_MANY_PIXELS) from exc
    except MemoryError:
        raise
    except Exception as exc:
        # Pillow's decoders raise OSError, SyntaxError, ValueError, EOFError,
        # struct.error, IndexError... on hostile input; all of them mean "not an image".
        raise MediaRejected(MediaProblem.NOT_AN_IMAGE) from exc
    jpeg = _encode(image)
    return _Cleaned(
        jpeg=jpeg,
        width=image.width,
        height=image.height,
        extension=extension,
        phash=str(imagehash.phash(image)),
    )


def _decode(data: bytes, *, max_pixels: int, max_side: int) -> tuple[Image.Image, str]:
    """The upright, downscaled RGB pixels of `data`'s first frame, and its extension."""
    _check_pixels(_webp_canvas_size(data), max_pixels)  # libwebp allocates on open
    with Image.open(BytesIO(data), formats=_OPEN_FORMATS) as image:
        _check_pixels(image.size, max_pixels)  # header only: no pixel decoded yet
        extension = _FORMATS[str(image.format)]
        if image.format in {"JPEG", "MPO"}:
            image.draft(None, (max_side, max_side))  # let libjpeg decode at 1/2, 1/4...
        image.load()  # a truncated or corrupt file fails here
        ImageOps.exif_transpose(image, in_place=True)
        return _normalise(image, max_side), extension


def _check_pixels(size: tuple[int, int] | None, max_pixels: int) -> None:
    if size is None:
        return
    limit = max_pixels
    if Image.MAX_IMAGE_PIXELS is not None:  # Pillow would only warn: refuse instead
        limit = min(limit, Image.MAX_IMAGE_PIXELS)
    width, height = size
    if width < 1 or height < 1:
        raise MediaRejected(MediaProblem.NOT_AN_IMAGE)
    if width * height > limit:
        raise MediaRejected(MediaProblem.TOO_MANY_PIXELS)


def _webp_canvas_size(data: bytes) -> tuple[int, int] | None:
    """The canvas size declared by a WEBP header, read without decoding anything."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP" or len(data) < 30:
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        return width, int.from_bytes(data[28:30], "little") & 0x3FFF
    return None


def _normalise(image: Image.Image, max_side: int) -> Image.Image:
    """8-bit sRGB, alpha flattened onto white, longest side at most `max_side`."""
    icc_profile = image.info.get("icc_profile")
    if image.mode not in _CMS_MODES:
        image = _flatten(image)
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return _to_srgb(image, icc_profile if isinstance(icc_profile, bytes) else None)


def _flatten(image: Image.Image) -> Image.Image:
    """An RGB (or L) image, with any transparency composited onto white."""
    if image.mode in _HIGH_DEPTH_MODES:
        # Pillow clips 16-bit values when converting to 8 bits; scale them instead.
        return image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if "A" not in image.getbands() and "transparency" not in image.info:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, "white")
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """Apply the embedded colour profile, so dropping it does not shift the colours."""
    if icc_profile:
        try:
            profile = ImageCms.ImageCmsProfile(BytesIO(icc_profile))
            converted = ImageCms.profileToProfile(image, profile, _SRGB, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            converted = None  # a broken or mismatched profile: keep the raw values
        if converted is not None:
            return converted
    return image.convert("RGB")


def _encode(image: Image.Image) -> bytes:
    """A JPEG holding the pixels of `image` and nothing else."""
    # A fresh image carries no `info` (EXIF, XMP, ICC, comment, dpi...) that Pillow's
    # JPEG writer could copy over by default.
    bare = Image.new("RGB", image.size)
    bare.paste(image)
    buffer = BytesIO()
    bare.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return buffer.getvalue()


def _write_atomically(path: Path, data: bytes) -> None:
    """Write `data` at `path` via a temporary file and rename; content-addressed, so a
    file already there holds the same bytes and is left alone."""
    if path.exists():
        return
    make_private_dirs(path.parent)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
