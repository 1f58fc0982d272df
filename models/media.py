"""Rows that describe stored images and the platforms' handles on them."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import (
    Broadcast,
    Conversation,
    MediaFile,
    OutboxMessage,
    OutboxStatus,
    PendingInput,
    PlatformFile,
    ReportPhoto,
    WebMessage,
)

_SHA256 = re.compile(r"[0-9a-f]{64}")


async def record_media(
    session: AsyncSession,
    *,
    sha256: str,
    width: int,
    height: int,
    size: int,
    mime_type: str,
    phash: str,
    channel: str,
    file_id: str,
) -> None:
    """Remember an ingested image and the channel's file id for it (both idempotent)."""
    if await session.get(MediaFile, sha256) is None:
        quarters = phash_quarters(phash) if phash else (None, None, None, None)
        row = MediaFile(
            sha256=sha256,
            width=width,
            height=height,
            size=size,
            mime_type=mime_type,
            phash=phash or None,
            phash_q0=quarters[0],
            phash_q1=quarters[1],
            phash_q2=quarters[2],
            phash_q3=quarters[3],
        )
        await _insert_ignoring_duplicate(session, row)
    query = select(PlatformFile).where(
        PlatformFile.channel == channel, PlatformFile.sha256 == sha256
    )
    if (await session.exec(query)).first() is None:
        await _insert_ignoring_duplicate(
            session, PlatformFile(channel=channel, sha256=sha256, file_id=file_id)
        )


async def referenced_images(session: AsyncSession) -> set[str]:
    """The images something still refers to: a report, a draft or a pending answer (any
    conversation's or prompt's data), an announcement, an undelivered message, the web
    chat's transcript. Stored data is searched for image names wherever they sit in it."""
    found = set((await session.exec(select(ReportPhoto.sha256).distinct())).all())
    undelivered = col(OutboxMessage.status).in_([OutboxStatus.PENDING, OutboxStatus.SENDING])
    holders: list[Any] = [
        select(Broadcast.photos),
        select(Conversation.data),
        select(PendingInput.data),
        select(OutboxMessage.payload).where(undelivered),
        select(WebMessage.payload),
    ]
    for query in holders:
        for value in (await session.exec(query)).all():
            found.update(_SHA256.findall(json.dumps(value)))
    return found


def phash_quarters(phash: str) -> tuple[int, int, int, int]:
    """The four 16-bit quarters of a 64-bit hash given as 16 hex digits."""
    value = int(phash, 16)
    q0, q1, q2, q3 = ((value >> shift) & 0xFFFF for shift in (48, 32, 16, 0))
    return q0, q1, q2, q3


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


async def platform_file_id(session: AsyncSession, channel: str, sha256: str) -> str | None:
    query = select(PlatformFile.file_id).where(
        PlatformFile.channel == channel, PlatformFile.sha256 == sha256
    )
    return (await session.exec(query)).first()


async def _insert_ignoring_duplicate(session: AsyncSession, row: MediaFile | PlatformFile) -> None:
    """Two updates may store the same image at once; the second insert is a no-op."""
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        session.expunge(row)
