"""`python -m tests.photo_cost FILE [--plain]`: what one photo costs, in a fresh process.

Cleans FILE with `bot.media.ImageStore` as the bot is configured by default (or, with
`--plain`, only decodes it with `Image.open(...).load()`, the baseline), then prints one
JSON line: the outcome, CPU and wall seconds, the peak memory the photo added (the
resident high-water mark over the resident memory before), and the memory still held
after it. A fresh process per photo, since the high-water mark only ever grows. Used by
tests/test_media.py and bench/photos.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

from PIL import Image

from bot.media import ImageStore
from bot.settings import Settings
from handlers.ports import MediaRejected
from tests.images import jpeg

MIB = 1024 * 1024
REPO_ROOT = Path(__file__).resolve().parent.parent


def cost_of(path: Path, *, plain: bool = False) -> dict[str, Any]:
    """Run this module on the photo at `path` in a fresh process; what it printed."""
    command = [sys.executable, "-m", "tests.photo_cost", str(path), *(["--plain"] * plain)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def resident_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB


def peak_mib() -> float:
    """The process's resident high-water mark (VmHWM: unlike ru_maxrss, it does not
    inherit the parent's figure across fork and exec)."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024  # kB


def reset_peak() -> None:
    """Start the high-water mark again from the resident memory now (Linux 4.0 and later)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def plain_decode(data: bytes) -> str:
    with Image.open(BytesIO(data)) as image:
        image.load()
        return f"decoded {image.width}x{image.height}"


def default_store(media_dir: Path) -> ImageStore:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    return ImageStore(
        media_dir, max_bytes=settings.max_photo_bytes, max_pixels=settings.max_photo_pixels
    )


async def clean(store: ImageStore, data: bytes) -> str:
    try:
        stored = await store.ingest(data)
    except MediaRejected as rejected:
        return f"refused: {rejected.problem.value}"
    return f"cleaned {stored.width}x{stored.height}"


async def measure(data: bytes, *, plain: bool) -> dict[str, Any]:
    """Warmed up first, as a running bot is, on a phone photo (lazy imports, threads, and
    glibc's mmap threshold raised by the blocks it freed), then `data` alone."""
    warm_up = jpeg(2560, 1920)
    with tempfile.TemporaryDirectory() as media_dir:
        store = default_store(Path(media_dir))
        plain_decode(warm_up) if plain else await clean(store, warm_up)
        reset_peak()
        before = resident_mib()
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            outcome = plain_decode(data) if plain else await clean(store, data)
        except Exception as error:  # the baseline fails on bombs: that is a result too
            outcome = f"error: {type(error).__name__}"
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return {
            "outcome": outcome,
            "cpu_s": round(cpu, 3),
            "wall_s": round(wall, 3),
            "peak_mib": round(peak_mib() - before, 1),
            "held_mib": round(resident_mib() - before, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", type=Path)
    parser.add_argument("--plain", action="store_true", help="Image.open(...).load() only")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.file.read_bytes(), plain=args.plain))))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
