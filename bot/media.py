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
* width x height from the header is checked before a single pixel is decoded: against
  Pillow's warning threshold as declared, and against our own ``max_pixels`` as it will be
  decoded (a JPEG is decoded reduced, at 1/2, 1/4 or 1/8, to about ``max_side``, which
  libjpeg does for free; other formats are decoded whole). A 30000x30000 PNG can be a few
  kilobytes on disk and 900 MB in memory. We do not rely on the process-global
  ``Image.MAX_IMAGE_PIXELS``: any caller may raise it or set it to ``None``. Pillow's own
  ``DecompressionBombError`` (and its warning, should some filter turn it into an
  exception) is still caught and reported as ``TOO_MANY_PIXELS``.
  ``warnings.catch_warnings`` is deliberately *not* used to turn Pillow's warning into an
  error: on Python 3.12 it swaps process-global state and is not thread-safe, and this code
  runs in worker threads. Instead the image is rejected as soon as it exceeds Pillow's
  warning threshold, which is exactly "the warning is an error here", with no global state
  touched;
* all CPU-heavy work runs in the store's own worker threads, so the event loop never
  blocks, in two lanes: images decoded at most ``max_side`` x ``max_side`` (every phone
  photo Telegram or the web chat sends) take the light lane, one per core; bigger ones the
  heavy lane, one fewer than the cores (at least one). A small photo never waits behind a
  big one, and the memory in use is bounded by the lanes' sizes;
* large blocks are handed back to the system when freed (glibc's ``M_MMAP_THRESHOLD`` set
  to 1 MiB): otherwise the hundreds of megabytes a big decode took stay with the process.

Nothing is written by ``ingest``: ``keep`` writes the image once a flow uses it (a
report's draft, an answer, an announcement), and ``forget_unreferenced`` deletes what no
longer has a use, sparing what was kept within the grace period. A directory lock makes
"keep" and "delete" exclusive, so an image being kept is never deleted.

``keep_original=True`` additionally keeps the upload exactly as received, *metadata
included* (GPS and all), under ``root/originals/``. It is off by default and should only
be switched on by an explicit admin setting (DESIGN.md §5).
"""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator, Set
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from io import BytesIO
from pathlib import Path

import imagehash
from PIL import Image, ImageCms, ImageOps

from bot.private_files import make_private_dirs
from handlers.ports import MediaProblem, MediaRejected, StoredImage

__all__ = ["ImageStore", "available_cores"]

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
_STORED_NAME = re.compile(r"(?P<sha>[0-9a-f]{64})\.(?:jpg|png|webp|gif|bmp|tif)")
_HIGH_DEPTH_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
_CMS_MODES = frozenset({"RGB", "CMYK", "L"})
_RESIZABLE_MODES = _CMS_MODES | {"LA", "RGBA"}
"""Modes Pillow resizes with a real filter (alpha premultiplied): shrunk before flattening."""
_SRGB = ImageCms.createProfile("sRGB")
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
_MMAP_THRESHOLD = 1 << 20


def available_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _return_big_blocks_to_the_system() -> None:
    """Freed blocks of 1 MiB or more go back to the system at once (glibc only).

    glibc raises its mmap threshold as large blocks are freed, so the 16 MiB blocks Pillow
    decodes into end up in the heap, and the hundreds of megabytes a big decode took stay
    with the process after it."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)


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
        cores: int | None = None,
    ) -> None:
        cores = available_cores() if cores is None else cores
        for name, value in (
            ("max_bytes", max_bytes),
            ("max_pixels", max_pixels),
            ("max_side", max_side),
            ("cores", cores),
        ):
            if value < 1:
                raise ValueError(f"{name} must be positive, got {value}")
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.max_side = max_side
        self.keep_original = keep_original
        self._light = asyncio.Semaphore(cores)
        self._heavy = asyncio.Semaphore(max(1, cores - 1))
        self._workers = ThreadPoolExecutor(2 * cores, thread_name_prefix="photo")
        _return_big_blocks_to_the_system()

    async def ingest(self, data: bytes) -> StoredImage:
        """Prove `data` is an image and strip its metadata; raise MediaRejected.

        Nothing is written: `keep` stores the image once a flow has a use for it."""
        if len(data) > self.max_bytes:
            raise MediaRejected(MediaProblem.TOO_LARGE)
        async with self._light:
            cleaned = await self._clean_in_worker(data, self.max_side**2)
        if cleaned is None:  # decoded bigger than max_side x max_side: the heavy lane
            async with self._heavy:
                cleaned = await self._clean_in_worker(data, None)
        assert cleaned is not None
        return self._stored(cleaned, data)

    async def keep(self, image: StoredImage) -> None:
        """Write `image` (and the original, when kept); an image already stored is marked
        as just kept, so that `forget_unreferenced` spares it for its grace period."""
        await asyncio.to_thread(self._keep_blocking, image)

    async def forget_unreferenced(self, referenced: Set[str], *, unused_since: datetime) -> int:
        """Delete the stored images and kept originals not in `referenced` and not kept
        since `unused_since`, and temporary files left by a crash; return how many went."""
        return await asyncio.to_thread(self._forget_blocking, referenced, unused_since.timestamp())

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

    async def _clean_in_worker(self, data: bytes, heavy_above: int | None) -> _Cleaned | None:
        limits = {"max_pixels": self.max_pixels, "max_side": self.max_side}
        work = partial(_clean, data, heavy_above=heavy_above, **limits)
        return await asyncio.get_running_loop().run_in_executor(self._workers, work)

    def _stored(self, cleaned: _Cleaned, data: bytes) -> StoredImage:
        digest = hashlib.sha256(cleaned.jpeg).hexdigest()
        files = [(self.path_of(digest), cleaned.jpeg)]
        if self.keep_original:
            files.append((self.original_path_of(digest, cleaned.extension), data))
        return StoredImage(
            sha256=digest,
            width=cleaned.width,
            height=cleaned.height,
            size=len(cleaned.jpeg),
            mime_type=MIME_TYPE,
            phash=cleaned.phash,
            files=tuple((str(path.relative_to(self.root)), content) for path, content in files),
        )

    def _keep_blocking(self, image: StoredImage) -> None:
        with self._locked(fcntl.LOCK_SH):
            for relative, content in image.files:
                _write_or_touch(self.root / relative, content)

    def _forget_blocking(self, referenced: Set[str], unused_since: float) -> int:
        if not self.root.is_dir():
            return 0
        unused = [path for path in self._files() if _unused(path, referenced)]
        forgotten = 0
        with self._locked(fcntl.LOCK_EX):  # no `keep` between the age check and the unlink
            for path in unused:
                with suppress(FileNotFoundError):
                    if path.stat().st_mtime < unused_since:
                        path.unlink()
                        forgotten += 1
        return forgotten

    def _files(self) -> Iterator[Path]:
        for directory, _, names in os.walk(self.root):
            for name in names:
                yield Path(directory, name)

    @contextmanager
    def _locked(self, kind: int) -> Iterator[None]:
        """A lock on the store's directory, shared by writers, exclusive for deleting."""
        make_private_dirs(self.root)
        descriptor = os.open(self.root, os.O_RDONLY)
        try:
            fcntl.flock(descriptor, kind)
            yield
        finally:
            os.close(descriptor)


def _unused(path: Path, referenced: Set[str]) -> bool:
    """A leftover temporary file, or an image (or original) no longer referenced."""
    if path.name.startswith(".") and path.name.endswith(".tmp"):
        return True
    match = _STORED_NAME.fullmatch(path.name)
    return match is not None and match["sha"] not in referenced


def _check_sha256(sha256: str) -> None:
    if not isinstance(sha256, str) or not _SHA256_RE.fullmatch(sha256):
        raise ValueError("expected 64 lowercase hexadecimal characters")


def _clean(
    data: bytes, *, max_pixels: int, max_side: int, heavy_above: int | None
) -> _Cleaned | None:
    """Decode `data` and re-encode it as a bare JPEG; raise MediaRejected.

    None, without decoding anything, when it would decode to more than `heavy_above`
    pixels: the caller decodes it again in the heavy lane."""
    try:
        with _open(data, max_pixels=max_pixels, max_side=max_side) as opened:
            if heavy_above is not None and _pixels(opened.size) > heavy_above:
                return None
            extension = _FORMATS[str(opened.format)]
            image = _decode(opened, max_side)
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
    return _Cleaned(
        jpeg=_encode(image),
        width=image.width,
        height=image.height,
        extension=extension,
        phash=str(imagehash.phash(image)),
    )


def _open(data: bytes, *, max_pixels: int, max_side: int) -> Image.Image:
    """`data` opened (its header read, no pixel decoded), reduced as it will be decoded."""
    _check_pixels(_webp_canvas_size(data), min(max_pixels, _pillow_limit()))  # libwebp
    image = Image.open(BytesIO(data), formats=_OPEN_FORMATS)
    try:
        _check_pixels(image.size, _pillow_limit())  # Pillow would only warn: refuse instead
        if image.format in {"JPEG", "MPO"}:  # let libjpeg decode at 1/2, 1/4 or 1/8
            image.draft(None, _fitted(image.size, max_side))
        _check_pixels(image.size, max_pixels)  # what will really be decoded
    except BaseException:
        image.close()
        raise
    return image


def _decode(image: Image.Image, max_side: int) -> Image.Image:
    """The upright, downscaled RGB pixels of `image`'s first frame."""
    image.load()  # a truncated or corrupt file fails here
    ImageOps.exif_transpose(image, in_place=True)
    return _normalise(image, max_side)


def _fitted(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """`size` scaled down so that its longer side is at most `max_side`."""
    scale = min(1.0, max_side / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _pillow_limit() -> int:
    limit = Image.MAX_IMAGE_PIXELS
    return limit if limit is not None else 2**63


def _pixels(size: tuple[int, int]) -> int:
    return size[0] * size[1]


def _check_pixels(size: tuple[int, int] | None, limit: int) -> None:
    if size is None:
        return
    if size[0] < 1 or size[1] < 1:
        raise MediaRejected(MediaProblem.NOT_AN_IMAGE)
    if _pixels(size) > limit:
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
    """8-bit sRGB, alpha flattened onto white, longest side at most `max_side`.

    Shrunk as early as Pillow can do it well, so the copies below are small."""
    icc_profile = image.info.get("icc_profile")
    if image.mode not in _RESIZABLE_MODES:
        image = _flatten(image)
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    if image.mode not in _CMS_MODES:
        image = _flatten(image)
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


def _write_or_touch(path: Path, data: bytes) -> None:
    """Write `data` at `path` via a temporary file and rename. Content-addressed: a file
    already there holds the same bytes and is only marked as just kept."""
    with suppress(FileNotFoundError):
        os.utime(path)
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
