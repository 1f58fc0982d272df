"""Receiving a file before the database transaction starts.

Downloading and decoding a photo takes far longer than deciding what to do with it,
so it happens first, outside any transaction (on SQLite a transaction holds the
write lock). The cleaned image is kept in memory: only when the flow uses it (a report's
draft, an answer, an announcement) is it written, by `remember_upload`. What no report,
draft, announcement or transcript refers to any more is deleted by
`handlers.unused_photos.forget_unused_photos`, a job of the leader.
"""

from __future__ import annotations

from handlers.context import FlowContext
from handlers.messages import Attachment
from handlers.ports import MediaProblem, MediaRejected, MediaStore, StoredImage
from models.media import record_media


def may_be_image(mime_type: str | None) -> bool:
    """A file declared as something else (a PDF, a video) is refused without downloading it.

    Images declared as images, or not declared at all, are decoded to find out.
    """
    return (
        not mime_type or mime_type.startswith("image/") or mime_type == "application/octet-stream"
    )


async def receive_image(media: MediaStore, attachment: Attachment) -> StoredImage | MediaProblem:
    try:
        if not may_be_image(attachment.mime_type):
            raise MediaRejected(MediaProblem.NOT_AN_IMAGE)
        if attachment.size is not None and attachment.size > media.max_bytes:
            raise MediaRejected(MediaProblem.TOO_LARGE)
        return await media.ingest(await attachment.download(media.max_bytes))
    except MediaRejected as rejected:
        return rejected.problem


async def remember_upload(ctx: FlowContext, stored: StoredImage) -> None:
    """Store the image the person sent with this update, now that the flow uses it, and
    record it with the channel's handle on it."""
    attachment = ctx.inbound.attachment
    assert attachment is not None
    await ctx.services.media.keep(stored)
    await record_media(
        ctx.session,
        sha256=stored.sha256,
        width=stored.width,
        height=stored.height,
        size=stored.size,
        mime_type=stored.mime_type,
        phash=stored.phash,
        channel=ctx.inbound.channel,
        file_id=attachment.file_id,
    )
