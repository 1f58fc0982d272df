"""Deleting the stored photos that nothing refers to any more (a job of the leader).

A photo is stored when a flow keeps it (`handlers.uploads.remember_upload`); a draft can
be discarded, an answer still being chosen can be dropped, a transcript pruned. Whatever
no report, draft, pending answer, announcement, undelivered message or web transcript
refers to is deleted, unless it was kept within the grace period.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from handlers.context import Services
from handlers.router import SessionFactory
from models.media import referenced_images

UNUSED_PHOTO_GRACE = timedelta(hours=1)
"""A photo kept less than this long ago is never deleted: the update that keeps it may not
have committed its reference yet."""


async def forget_unused_photos(services: Services, sessions: SessionFactory, now: datetime) -> int:
    """Delete the stored photos nothing refers to any more; how many files went."""
    unused_since = now - UNUSED_PHOTO_GRACE  # taken before the references are read
    async with sessions() as session:
        referenced = await referenced_images(session)
    return await services.media.forget_unreferenced(referenced, unused_since=unused_since)
