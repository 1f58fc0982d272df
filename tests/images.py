"""Real image bytes for tests, made with Pillow."""

from __future__ import annotations

import os
from io import BytesIO

from PIL import Image

GPS_IFD = 0x8825
MAKE = 0x010F


def jpeg(width: int = 64, height: int = 48, color: str = "green", *, gps: bool = False) -> bytes:
    image = Image.new("RGB", (width, height), color)
    exif = Image.Exif()
    if gps:
        exif[MAKE] = "SecretPhoneMaker"
        exif.get_ifd(GPS_IFD).update({1: "N", 2: (21.0, 51.0, 10.0), 3: "E", 4: (106.0, 45.0, 2.0)})
    out = BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def camera_jpeg(width: int, height: int) -> bytes:
    """A detailed photo of a phone camera's size: megabytes, like the real thing."""
    size = (width // 6, height // 6)
    grain = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    out = BytesIO()
    grain.resize((width, height), Image.Resampling.BICUBIC).save(out, "JPEG", quality=95)
    return out.getvalue()


def png(width: int = 40, height: int = 30) -> bytes:
    out = BytesIO()
    Image.new("RGBA", (width, height), (255, 0, 0, 128)).save(out, "PNG")
    return out.getvalue()


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
