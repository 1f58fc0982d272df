"""ImageStore: metadata stripping, decoding guards and content-addressed storage."""

from __future__ import annotations

import asyncio
import hashlib
import os
import resource
import struct
import threading
import zlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from PIL import ExifTags, Image, ImageCms
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import media
from bot.media import ImageStore
from handlers.context import Services
from handlers.drafts import expire_drafts
from handlers.ports import MediaProblem, MediaRejected, MediaStore, StoredImage
from handlers.router import SessionFactory
from handlers.unused_photos import forget_unused_photos
from models.outbox import enqueue
from models.tables import Broadcast, BroadcastKind, PendingInput, Report, WebMessage
from tests.fakes.chat import FakeChat
from tests.images import camera_jpeg, jpeg
from tests.photo_cost import cost_of
from tests.test_report_flow import fill_until_photos

MAKE = "GoodDeedCam-X9"
MB = 1024 * 1024


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "media", max_bytes=20 * MB, max_pixels=40_000_000)


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def quadrant_image(size: tuple[int, int] = (200, 100)) -> Image.Image:
    """Blue, with a red block in the top-left corner (to see where rotation puts it)."""
    image = Image.new("RGB", size, (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, size[0] // 4, size[1] // 4))
    return image


def jpeg_with_metadata() -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = MAKE
    exif[ExifTags.Base.Model] = "Model-Secret"
    exif[ExifTags.Base.Orientation] = 6  # display rotated 90° clockwise
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (21.0, 1.0, 42.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (105.0, 51.0, 12.25)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return encode(
        quadrant_image(),
        "JPEG",
        exif=exif,
        icc_profile=icc,
        comment=b"comment-secret",
        xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/">xmp-secret</x:xmpmeta>',
    )


def jpeg_markers(data: bytes) -> list[int]:
    """The JPEG segment markers up to the first scan."""
    assert data[:2] == b"\xff\xd8"
    markers, pos = [], 2
    while pos < len(data):
        assert data[pos] == 0xFF
        marker = data[pos + 1]
        markers.append(marker)
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        pos += 2 + length
    return markers


def pixel(image: Image.Image, xy: tuple[int, int]) -> tuple[int, int, int]:
    value = image.convert("RGB").getpixel(xy)
    assert isinstance(value, tuple)
    red, green, blue = value
    return red, green, blue


async def kept(store: ImageStore, data: bytes) -> StoredImage:
    """`data` ingested and kept, as a flow does with a photo it uses."""
    stored = await store.ingest(data)
    await store.keep(stored)
    return stored


def stored_bytes(store: ImageStore, sha256: str) -> bytes:
    return store.path_of(sha256).read_bytes()


def png_bomb(side: int) -> bytes:
    """A valid 1-bit PNG of side x side black pixels, built row by row in tiny memory."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row) for _ in range(side)]
    idat = b"".join(parts) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def test_is_a_media_store(store: ImageStore) -> None:
    assert isinstance(store.max_bytes, int)
    as_port: MediaStore = store
    assert as_port.max_bytes == 20 * MB


async def test_strips_exif_gps_and_applies_orientation(store: ImageStore) -> None:
    original = jpeg_with_metadata()
    with Image.open(BytesIO(original)) as check:  # the fixture really carries it all
        assert check.getexif()[ExifTags.Base.Make] == MAKE
        assert check.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert MAKE.encode() in original

    stored = await kept(store, original)

    data = stored_bytes(store, stored.sha256)
    assert (stored.width, stored.height) == (100, 200)  # rotated: sides swapped
    assert stored.mime_type == "image/jpeg"
    assert stored.size == len(data)
    for secret in (MAKE, "Model-Secret", "comment-secret", "xmp-secret", "Exif", "ICC_PROFILE"):
        assert secret.encode() not in data
    with Image.open(BytesIO(data)) as image:
        assert image.format == "JPEG"
        assert image.mode == "RGB"
        assert image.size == (100, 200)
        assert len(image.getexif()) == 0
        assert "exif" not in image.info
        assert "icc_profile" not in image.info
        assert "comment" not in image.info
        # orientation 6: the top-left corner of the stored pixels ends up top-right
        red, _, blue = pixel(image, (90, 10))
        assert red > 200 and blue < 60
        red, _, blue = pixel(image, (10, 10))
        assert blue > 200 and red < 60
    # only SOI-level structure: JFIF APP0, tables, frame, scan; no APP1 (EXIF/XMP),
    # APP2 (ICC), COM or any other application segment
    allowed = {0xE0, 0xDB, 0xC4, 0xC0, 0xC1, 0xC2, 0xDD, 0xDA}
    assert set(jpeg_markers(data)) <= allowed


async def test_png_with_alpha_becomes_rgb_jpeg_on_white(store: ImageStore) -> None:
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))  # fully transparent black
    image.paste((255, 0, 0, 255), (0, 0, 32, 64))  # opaque red left half
    stored = await kept(store, encode(image, "PNG"))

    with Image.open(store.path_of(stored.sha256)) as result:
        assert result.format == "JPEG"
        assert result.mode == "RGB"
        assert all(channel > 245 for channel in pixel(result, (56, 32)))
        red, green, blue = pixel(result, (8, 32))
        assert red > 240 and green < 20 and blue < 20


async def test_palette_png_with_transparency_is_flattened(store: ImageStore) -> None:
    image = Image.new("P", (32, 32), 0)
    image.putpalette([0, 0, 0, 0, 255, 0])
    image.paste(1, (0, 0, 16, 32))
    stored = await kept(store, encode(image, "PNG", transparency=0))

    with Image.open(store.path_of(stored.sha256)) as result:
        assert all(channel > 245 for channel in pixel(result, (28, 16)))
        assert pixel(result, (4, 16))[1] > 240


async def test_same_image_twice_is_stored_once(store: ImageStore) -> None:
    data = encode(quadrant_image(), "PNG")
    first = await kept(store, data)
    second = await kept(store, data)

    assert first == second
    files = [path for path in store.root.rglob("*") if path.is_file()]
    assert files == [store.path_of(first.sha256)]
    assert hashlib.sha256(files[0].read_bytes()).hexdigest() == first.sha256
    sha = first.sha256
    assert files[0].relative_to(store.root) == Path(sha[:2], sha[2:4], f"{sha}.jpg")


async def test_concurrent_ingests_of_one_image_agree(store: ImageStore) -> None:
    data = encode(quadrant_image(), "JPEG")
    results = await asyncio.gather(*(kept(store, data) for _ in range(6)))

    assert len({result.sha256 for result in results}) == 1
    assert [path.name for path in store.root.rglob("*") if path.is_file()] == [
        f"{results[0].sha256}.jpg"
    ]


def truncated_jpeg() -> bytes:
    data = encode(quadrant_image((400, 300)), "JPEG", quality=95)
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< >>\nendobj\n", id="pdf"),
        pytest.param("Xin chào, đây là một việc tốt.".encode(), id="text"),
        pytest.param(b"", id="empty"),
        pytest.param(truncated_jpeg(), id="truncated-jpeg"),
        pytest.param(b"\xff\xd8\xff\xe0" + b"\x00" * 64, id="jpeg-magic-only"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, id="png-magic-only"),
        pytest.param(encode(quadrant_image(), "PPM"), id="ppm-not-accepted"),
        pytest.param(encode(quadrant_image(), "ICO"), id="ico-not-accepted"),
    ],
)
async def test_not_an_image(store: ImageStore, data: bytes) -> None:
    with pytest.raises(MediaRejected) as caught:
        await store.ingest(data)
    assert caught.value.problem is MediaProblem.NOT_AN_IMAGE
    assert not store.root.exists() or not any(store.root.rglob("*.jpg"))


async def test_too_large_is_rejected_before_decoding(tmp_path: Path) -> None:
    store = ImageStore(tmp_path, max_bytes=1000, max_pixels=1_000_000)
    with pytest.raises(MediaRejected) as caught:
        await store.ingest(b"\x00" * 1001)  # garbage: would be NOT_AN_IMAGE if decoded
    assert caught.value.problem is MediaProblem.TOO_LARGE

    small = encode(Image.new("RGB", (8, 8)), "PNG")
    assert len(small) <= 1000
    await store.ingest(small)


async def test_decompression_bomb_is_refused_without_decoding(
    store: ImageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = png_bomb(30_000)  # 900 million pixels in ~100 KB
    assert len(bomb) < 1 * MB
    # Our guard must not depend on Pillow's process-global limit.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux

    with pytest.raises(MediaRejected) as caught:
        await store.ingest(bomb)

    assert caught.value.problem is MediaProblem.TOO_MANY_PIXELS
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 100 * 1024  # decoding it would take at least 900 MB


async def test_decompression_bomb_with_pillow_defaults(store: ImageStore) -> None:
    with pytest.raises(MediaRejected) as caught:
        await store.ingest(png_bomb(30_000))
    assert caught.value.problem is MediaProblem.TOO_MANY_PIXELS


@pytest.mark.parametrize(
    "action",
    [
        pytest.param(
            "ignored",
            marks=pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
        ),
        pytest.param(
            "raised", marks=pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
        ),
    ],
)
async def test_pillow_warning_threshold_is_an_error_here(tmp_path: Path, action: str) -> None:
    generous = ImageStore(tmp_path, max_bytes=20 * MB, max_pixels=10**9)
    bomb = png_bomb(10_000)  # 100 M pixels: above Pillow's warning level, below its error
    assert Image.MAX_IMAGE_PIXELS is not None
    assert Image.MAX_IMAGE_PIXELS < 10_000 * 10_000 < 2 * Image.MAX_IMAGE_PIXELS

    with pytest.raises(MediaRejected) as caught:
        await generous.ingest(bomb)
    assert caught.value.problem is MediaProblem.TOO_MANY_PIXELS


async def test_own_pixel_limit_applies_below_pillows(tmp_path: Path) -> None:
    store = ImageStore(tmp_path, max_bytes=MB, max_pixels=10_000)
    with pytest.raises(MediaRejected) as caught:
        await store.ingest(encode(Image.new("L", (101, 100)), "PNG"))
    assert caught.value.problem is MediaProblem.TOO_MANY_PIXELS
    await store.ingest(encode(Image.new("L", (100, 100)), "PNG"))


async def test_webp_canvas_is_checked_before_libwebp_allocates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    store = ImageStore(tmp_path, max_bytes=MB, max_pixels=10_000)
    for kwargs in ({"lossless": True}, {"quality": 80}):
        data = encode(Image.new("RGB", (200, 200), "green"), "WEBP", **kwargs)
        with pytest.raises(MediaRejected) as caught:
            await store.ingest(data)
        assert caught.value.problem is MediaProblem.TOO_MANY_PIXELS


async def test_large_legit_image_is_downscaled(store: ImageStore) -> None:
    image = quadrant_image((5000, 3000))
    stored = await kept(store, encode(image, "JPEG", quality=80))

    assert (stored.width, stored.height) == (2560, 1536)
    with Image.open(store.path_of(stored.sha256)) as result:
        assert result.size == (2560, 1536)


async def test_max_side_is_configurable(tmp_path: Path) -> None:
    store = ImageStore(tmp_path, max_bytes=MB, max_pixels=1_000_000, max_side=100)
    stored = await kept(store, encode(quadrant_image((300, 150)), "PNG"))
    assert (stored.width, stored.height) == (100, 50)


async def test_small_image_is_not_upscaled(store: ImageStore) -> None:
    stored = await kept(store, encode(quadrant_image((30, 20)), "BMP"))
    assert (stored.width, stored.height) == (30, 20)


async def test_gif_animation_keeps_first_frame(store: ImageStore) -> None:
    frames = [Image.new("RGB", (40, 40), colour) for colour in ("red", "blue", "lime")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    with Image.open(BytesIO(data)) as check:
        assert getattr(check, "n_frames", 1) == 3

    stored = await kept(store, data)
    with Image.open(store.path_of(stored.sha256)) as result:
        red, green, blue = pixel(result, (20, 20))
        assert red > 240 and green < 20 and blue < 20


@pytest.mark.parametrize(
    ("fmt", "params"),
    [
        ("WEBP", {"quality": 90}),
        ("WEBP", {"lossless": True}),
        ("TIFF", {"compression": "tiff_lzw"}),
        ("BMP", {}),
        ("JPEG", {}),
    ],
)
async def test_accepted_formats(store: ImageStore, fmt: str, params: dict[str, object]) -> None:
    stored = await kept(store, encode(quadrant_image(), fmt, **params))
    assert (stored.width, stored.height) == (200, 100)
    with Image.open(store.path_of(stored.sha256)) as result:
        assert result.format == "JPEG"


async def test_cmyk_and_grayscale_become_rgb(store: ImageStore) -> None:
    cmyk = await kept(store, encode(quadrant_image().convert("CMYK"), "JPEG"))
    gray = await kept(store, encode(Image.new("L", (20, 20), 128), "PNG"))
    for stored in (cmyk, gray):
        with Image.open(store.path_of(stored.sha256)) as result:
            assert result.mode == "RGB"


async def test_sixteen_bit_grayscale_is_scaled_not_clipped(store: ImageStore) -> None:
    image = Image.new("I;16", (16, 16), 0x8000)  # mid-grey at 16 bits
    stored = await kept(store, encode(image, "PNG"))
    with Image.open(store.path_of(stored.sha256)) as result:
        assert 110 < pixel(result, (8, 8))[0] < 145


async def test_originals_are_not_kept_by_default(store: ImageStore) -> None:
    await kept(store, jpeg_with_metadata())
    assert not (store.root / "originals").exists()


async def test_keep_original_stores_upload_untouched(tmp_path: Path) -> None:
    store = ImageStore(tmp_path, max_bytes=MB, max_pixels=1_000_000, keep_original=True)
    original = jpeg_with_metadata()
    stored = await kept(store, original)

    original_file = tmp_path / "originals" / f"{stored.sha256}.jpg"
    assert original_file == store.original_path_of(stored.sha256, "jpg")
    assert original_file.read_bytes() == original
    assert MAKE.encode() not in stored_bytes(store, stored.sha256)


async def test_work_runs_off_the_event_loop_thread(
    store: ImageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []
    real_clean = media._clean

    def spy(data: bytes, **limits: Any) -> object:
        threads.append(threading.get_ident())
        return real_clean(data, **limits)

    monkeypatch.setattr(media, "_clean", spy)
    await store.ingest(encode(quadrant_image(), "PNG"))
    assert threads and threads[0] != threading.get_ident()


def test_no_temporary_files_left_behind(store: ImageStore) -> None:
    asyncio.run(kept(store, encode(quadrant_image(), "PNG")))
    assert [path.name for path in store.root.rglob(".*")] == []


@pytest.mark.parametrize(
    "bad",
    [
        "../etc/passwd",
        "../../" + "a" * 58,
        "A" * 64,
        "a" * 63,
        "a" * 65,
        "a" * 64 + "\n",
        "g" * 64,
        "",
    ],
)
def test_path_of_rejects_anything_but_a_sha256(store: ImageStore, bad: str) -> None:
    with pytest.raises(ValueError):
        store.path_of(bad)


def test_path_of_is_content_addressed(store: ImageStore) -> None:
    sha = hashlib.sha256(b"x").hexdigest()
    assert store.path_of(sha) == store.root / sha[:2] / sha[2:4] / f"{sha}.jpg"


@pytest.mark.parametrize("field", ["max_bytes", "max_pixels", "max_side"])
def test_limits_must_be_positive(tmp_path: Path, field: str) -> None:
    limits = {"max_bytes": 10, "max_pixels": 10, "max_side": 10} | {field: 0}
    with pytest.raises(ValueError):
        ImageStore(
            tmp_path,
            max_bytes=limits["max_bytes"],
            max_pixels=limits["max_pixels"],
            max_side=limits["max_side"],
        )


# ---- bounded work: what a photo may cost ---------------------------------------------


def photo_cost(tmp_path: Path, data: bytes, *, plain: bool = False) -> dict[str, Any]:
    """What cleaning `data` costs in a fresh process (tests/photo_cost.py)."""
    path = tmp_path / f"photo-{hashlib.sha256(data).hexdigest()[:12]}"
    path.write_bytes(data)
    return cost_of(path, plain=plain)


def big_gradient_png(side: int) -> bytes:
    """A PNG of side x side RGB pixels that compresses to a few hundred kilobytes."""
    return encode(Image.linear_gradient("L").resize((side, side)).convert("RGB"), "PNG")


def test_a_png_too_big_to_decode_is_refused_by_its_header(tmp_path: Path) -> None:
    png = big_gradient_png(7000)  # 49 MP in ~160 KB: 190 MB to decode
    assert len(png) < 300 * 1024

    cost = photo_cost(tmp_path, png)

    assert cost["outcome"] == "refused: too_many_pixels"
    assert cost["peak_mib"] < 16, cost
    assert photo_cost(tmp_path, png, plain=True)["peak_mib"] > 150  # what decoding costs


def test_a_camera_jpeg_is_decoded_reduced(tmp_path: Path) -> None:
    camera = camera_jpeg(6000, 4000)

    cost, baseline = photo_cost(tmp_path, camera), photo_cost(tmp_path, camera, plain=True)

    assert cost["outcome"] == "cleaned 2560x1707"
    assert baseline["outcome"] == "decoded 6000x4000"
    assert cost["peak_mib"] < baseline["peak_mib"] * 0.8, (cost, baseline)


def test_memory_is_handed_back_after_a_big_decode(tmp_path: Path) -> None:
    cost = photo_cost(tmp_path, big_gradient_png(4800))  # 23 MP, decoded whole

    assert cost["outcome"] == "cleaned 2560x2560"
    assert cost["peak_mib"] > 80  # it did take that memory...
    assert cost["held_mib"] < 16, cost  # ...and gave it back


async def test_a_jpeg_beyond_the_pixel_limit_is_decoded_reduced(tmp_path: Path) -> None:
    store = ImageStore(tmp_path, max_bytes=20 * MB, max_pixels=16_000_000)
    stored = await store.ingest(encode(quadrant_image((8000, 6000)), "JPEG", quality=70))
    assert (stored.width, stored.height) == (2560, 1920)
    with pytest.raises(MediaRejected) as caught:  # a PNG cannot be decoded reduced
        await store.ingest(encode(Image.new("L", (4001, 4000)), "PNG"))
    assert caught.value.problem is MediaProblem.TOO_MANY_PIXELS


async def test_a_small_photo_is_acknowledged_while_big_ones_are_decoded(
    services: Services, sessions: SessionFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four people's big photos fill every slot they may take (held in their decode); a
    reporter's small photo is decoded and acknowledged meanwhile."""
    store = ImageStore(tmp_path / "two-cores", max_bytes=20 * MB, max_pixels=40_000_000, cores=2)
    services = replace(services, media=store)
    big = encode(Image.new("RGB", (4000, 3000), "navy"), "PNG")
    big_started = threading.Event()
    release_big = threading.Event()
    counting = threading.Lock()
    running, most = 0, 0
    real_decode = media._decode

    def decode(image: Image.Image, max_side: int) -> Image.Image:
        nonlocal running, most
        if image.size != (4000, 3000):
            return real_decode(image, max_side)
        with counting:
            running += 1
            most = max(most, running)
        big_started.set()
        release_big.wait(timeout=60)  # a fallback only: the small photo releases it
        try:
            return real_decode(image, max_side)
        finally:
            with counting:
                running -= 1

    monkeypatch.setattr(media, "_decode", decode)
    reporter = FakeChat(services, sessions, user_id="2000")
    await fill_until_photos(reporter)
    answered: list[str] = []

    async def send(chat: FakeChat, data: bytes) -> None:
        await chat.photo(data, mime_type="image/png", as_document=True)
        answered.append(chat.user_id)

    others = [FakeChat(services, sessions, user_id=str(3000 + n)) for n in range(4)]
    bigs = [asyncio.create_task(send(chat, big)) for chat in others]
    await asyncio.to_thread(big_started.wait)  # a big decode is running
    await send(reporter, jpeg(800, 600))
    assert "1/10" in reporter.said()
    release_big.set()
    await asyncio.gather(*bigs)

    assert answered[0] == "2000"
    assert sorted(answered[1:]) == ["3000", "3001", "3002", "3003"]
    assert most == 1  # two cores: one big decode at a time, the other core for the rest


# ---- stored only when used, deleted when no longer used -------------------------------


def stored_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def age(path: Path, by: timedelta) -> None:
    when = (datetime.now(UTC) - by).timestamp()
    os.utime(path, (when, when))


async def test_ingest_writes_nothing_until_the_image_is_kept(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "media", max_bytes=MB, max_pixels=1_000_000, keep_original=True)
    stored = await store.ingest(jpeg_with_metadata())
    assert not store.root.exists() or stored_files(store.root) == []

    await store.keep(stored)
    assert stored_files(store.root) == sorted(
        [store.path_of(stored.sha256), store.original_path_of(stored.sha256, "jpg")]
    )


async def test_forgets_only_what_is_unreferenced_and_old(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "media", max_bytes=MB, max_pixels=1_000_000, keep_original=True)
    used, unused, fresh = [
        await kept(store, jpeg(color=colour)) for colour in ("red", "green", "blue")
    ]
    leftover = store.path_of(unused.sha256).with_name(f".{unused.sha256}.jpg.x1.tmp")
    leftover.write_bytes(b"half a photo")
    for path in stored_files(store.root):
        age(path, timedelta(hours=2))
    await store.keep(fresh)  # already stored: kept again just now

    forgotten = await store.forget_unreferenced(
        {used.sha256}, unused_since=datetime.now(UTC) - timedelta(hours=1)
    )

    assert forgotten == 3  # the unused image, its original, the temporary file
    assert stored_files(store.root) == sorted(
        path
        for image in (used, fresh)
        for path in (store.path_of(image.sha256), store.original_path_of(image.sha256, "jpg"))
    )


async def test_an_image_kept_again_after_its_deletion_is_written_again(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "media", max_bytes=MB, max_pixels=1_000_000)
    stored = await kept(store, jpeg())
    path = store.path_of(stored.sha256)
    age(path, timedelta(days=1))
    unused_since = datetime.now(UTC) - timedelta(hours=1)

    assert await store.forget_unreferenced(set(), unused_since=unused_since) == 1
    assert not path.exists()
    await store.keep(stored)  # the same photo sent again, to a new draft

    assert hashlib.sha256(path.read_bytes()).hexdigest() == stored.sha256
    assert await store.forget_unreferenced(set(), unused_since=unused_since) == 0


async def test_photos_are_stored_when_used_and_deleted_when_no_longer_used(
    services: Services, sessions: SessionFactory
) -> None:
    store = services.media
    assert isinstance(store, ImageStore)
    citizen, reporter = FakeChat(services, sessions), FakeChat(services, sessions, user_id="1002")

    await citizen.photo(jpeg(color="red"))  # outside any report: refused, stored nowhere
    assert "báo cáo" in citizen.said()
    assert stored_files(store.root) == []

    await fill_until_photos(citizen)
    await citizen.photo(jpeg(color="green"))  # joins the draft: stored
    [draft_photo] = stored_files(store.root)
    await fill_until_photos(reporter)
    await reporter.photo(jpeg(color="blue"))
    await reporter.press("r:photos:done")
    await reporter.press("r:identity:anonymous")
    await reporter.press("r:summary:confirm")
    report_photo = (set(stored_files(store.root)) - {draft_photo}).pop()

    held = {name: await kept(store, jpeg(color=name)) for name in PHOTO_HOLDERS}
    unused = await kept(store, jpeg(color="black"))
    async with sessions() as session, session.begin():
        await hold_photos(session, {name: image.sha256 for name, image in held.items()})
    for path in stored_files(store.root):
        age(path, timedelta(hours=2))
    just_kept = await kept(store, jpeg(color="white"))  # within the grace period
    now = datetime.now(UTC)

    assert await forget_unused_photos(services, sessions, now) == 1
    assert not store.path_of(unused.sha256).exists()
    assert draft_photo.exists() and report_photo.exists()
    assert store.path_of(just_kept.sha256).exists()
    assert all(store.path_of(image.sha256).exists() for image in held.values())

    await expire_drafts(services, sessions, now + timedelta(days=3))  # the draft goes...
    assert await forget_unused_photos(services, sessions, now) == 1  # ...and its photo
    assert not draft_photo.exists() and report_photo.exists()


PHOTO_HOLDERS = ("yellow", "purple", "orange", "brown")


async def hold_photos(session: AsyncSession, photos: dict[str, str]) -> None:
    """An announcement, an undelivered message, the web transcript and an answer still
    being chosen, each holding one photo."""
    [report] = (await session.exec(select(Report))).all()
    assert report.id is not None
    session.add(
        Broadcast(key="announcement:1", kind=BroadcastKind.ANNOUNCEMENT, photos=[photos["yellow"]])
    )
    enqueue(session, "telegram", "7", {"text": "", "photos": [{"sha256": photos["purple"]}]})
    photo_url = f"/chat/media/{photos['orange']}.jpg"
    session.add(WebMessage(chat_id="w1", from_bot=True, payload={"photos": [photo_url]}))
    session.add(
        PendingInput(
            person_id=report.reporter_id,
            chat_id="1002",
            action="answer-which",
            report_id=report.id,
            report_version=report.version,
            data={"texts": [], "photos": [photos["brown"]]},
        )
    )
