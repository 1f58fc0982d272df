"""Rows that describe stored images and the platforms' handles on them."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import MediaFile, PlatformFile


async def record_media(
    session: AsyncSession,
    *,
    sha256: str,
    width: int,
    height: int,
    size: int,
    mime_type: str,
    channel: str,
    file_id: str,
) -> None:
    """Remember an ingested image and the channel's file id for it (both idempotent)."""
    if await session.get(MediaFile, sha256) is None:
        await _insert_ignoring_duplicate(
            session,
            MediaFile(sha256=sha256, width=width, height=height, size=size, mime_type=mime_type),
        )
    query = select(PlatformFile).where(
        PlatformFile.channel == channel, PlatformFile.sha256 == sha256
    )
    if (await session.exec(query)).first() is None:
        await _insert_ignoring_duplicate(
            session, PlatformFile(channel=channel, sha256=sha256, file_id=file_id)
        )


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
