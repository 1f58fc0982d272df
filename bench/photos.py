"""What a photo costs the server: CPU, wall time and peak memory, bad photos and normal ones.

Run from the repository root (it prints figures and asserts nothing about time):

    python bench/photos.py              # 3 runs of each photo
    python bench/photos.py --runs 5

Each photo is cleaned in a fresh process (`tests/photo_cost.py`, warmed up on a phone
photo first, as a running bot is) by `bot.media.ImageStore` as configured by default, and,
as the baseline in the same run, only decoded with `Image.open(...).load()`: what any code
that trusts Pillow's defaults pays. Figures are medians with the spread (min-max) over the
runs; the machine's load is printed before and after. Then a small photo is cleaned while
four big ones are: how long it takes, against the same photo alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from PIL import Image  # noqa: E402

from bot.media import ImageStore, available_cores  # noqa: E402
from tests.images import camera_jpeg, jpeg  # noqa: E402
from tests.photo_cost import cost_of  # noqa: E402
from tests.test_media import big_gradient_png, png_bomb  # noqa: E402

MIB = 1024 * 1024


def photos() -> dict[str, bytes]:
    return {
        "7000x7000 PNG": big_gradient_png(7000),
        "camera JPEG 6400x4800": camera_jpeg(6400, 4800),
        "bomb PNG 30000x30000": png_bomb(30_000),
        "1-bit PNG 9000x9000": png_bomb(9000),
        "PNG 4800x4800 (allowed)": big_gradient_png(4800),
        "phone photo 1280x960": camera_jpeg(1280, 960),
    }


def spread(values: list[float], unit: str) -> str:
    return f"{statistics.median(values):8.2f}{unit} ({min(values):.2f}-{max(values):.2f})"


def report(label: str, runs: list[dict[str, Any]]) -> None:
    figures = {key: [float(run[key]) for run in runs] for key in ("cpu_s", "wall_s", "peak_mib")}
    print(
        f"  {label:9} {runs[0]['outcome']:32} cpu {spread(figures['cpu_s'], 's')}"
        f"  wall {spread(figures['wall_s'], 's')}  peak {spread(figures['peak_mib'], ' MiB')}"
    )


async def small_beside_big(folder: Path, small: bytes, big: bytes) -> tuple[float, float]:
    """Seconds to clean `small` alone, and while four `big` ones are being cleaned."""
    store = ImageStore(folder, max_bytes=20 * MIB, max_pixels=24_000_000)
    started = time.perf_counter()
    await store.ingest(small)
    alone = time.perf_counter() - started
    bigs = [asyncio.create_task(store.ingest(big)) for _ in range(4)]
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    await store.ingest(small)
    beside = time.perf_counter() - started
    await asyncio.gather(*bigs)
    return alone, beside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"{available_cores()} cores, load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as folder:
        for name, data in photos().items():
            path = Path(folder, "photo")
            path.write_bytes(data)
            print(f"{name}: {len(data) / 1024:,.0f} KiB")
            for label, plain in (("cleaned", False), ("baseline", True)):
                report(label, [cost_of(path, plain=plain) for _ in range(args.runs)])
        with Image.new("RGB", (4800, 4800), "navy") as navy:
            big = BytesIO()
            navy.save(big, "PNG")
        rounds = [
            asyncio.run(small_beside_big(Path(folder, "media"), jpeg(1280, 960), big.getvalue()))
            for _ in range(args.runs)
        ]
    alone, beside = [r[0] * 1000 for r in rounds], [r[1] * 1000 for r in rounds]
    print(
        f"small photo alone {spread(alone, ' ms')}; "
        f"beside four 4800x4800 PNGs {spread(beside, ' ms')}"
    )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
