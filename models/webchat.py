"""The web chat's transcript and its browser sessions."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, delete, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import Conversation, Person, Report, ReportPhoto, WebMessage, WebSession

HISTORY_LIMIT = 100
PURGE_BATCH = 100


async def append_message(
    session: AsyncSession, chat_id: str, payload: dict[str, Any], *, from_bot: bool, keep: int
) -> WebMessage:
    """Add a message and forget the chat's older ones beyond the newest `keep`."""
    message = WebMessage(chat_id=chat_id, from_bot=from_bot, payload=payload)
    session.add(message)
    await session.flush()
    oldest_kept = (
        select(WebMessage.id)
        .where(WebMessage.chat_id == chat_id)
        .order_by(col(WebMessage.id).desc())
        .offset(keep - 1)
        .limit(1)
    )
    cutoff = (await session.exec(oldest_kept)).first()
    if cutoff is not None:
        await session.exec(
            delete(WebMessage).where(
                col(WebMessage.chat_id) == chat_id, col(WebMessage.id) < cutoff
            )
        )
    return message


async def recent_messages(
    session: AsyncSession, chat_id: str, limit: int = HISTORY_LIMIT
) -> list[WebMessage]:
    """The newest `limit` messages of the chat, oldest first."""
    query = (
        select(WebMessage)
        .where(WebMessage.chat_id == chat_id)
        .order_by(col(WebMessage.id).desc())
        .limit(limit)
    )
    return list(reversed((await session.exec(query)).all()))


async def edit_message(
    session: AsyncSession, chat_id: str, message_id: int, payload: dict[str, Any]
) -> WebMessage | None:
    message = await session.get(WebMessage, message_id)
    if message is None or message.chat_id != chat_id:
        return None
    message.payload = payload
    session.add(message)
    await session.flush()
    return message


# ---- sessions ----------------------------------------------------------------


def _hashed(token: str) -> str:
    """Only a hash of each token is stored: a copy of the database opens no session."""
    return hashlib.sha256(token.encode()).hexdigest()


async def open_session(
    session: AsyncSession, token: str, chat_id: str, identity: str, now: datetime
) -> WebSession:
    row = WebSession(token_hash=_hashed(token), chat_id=chat_id, identity=identity, last_seen=now)
    session.add(row)
    await session.flush()
    return row


async def find_session(
    session: AsyncSession, token: str, idle_since: datetime
) -> WebSession | None:
    """The live session of `token`; an idle one is forgotten with its transcript."""
    row = await session.get(WebSession, _hashed(token))
    if row is None or row.last_seen >= idle_since:
        return row
    await _forget(session, [row])
    return None


async def rotate_session(
    session: AsyncSession, row: WebSession, token: str, identity: str, now: datetime
) -> bool:
    """The same chat under a new token; the old token opens nothing any more.

    False when a concurrent request rotated the old token first (two tabs at once): then
    the cookie it set is the one to keep.
    """
    if not await _delete_sessions(session, [row.token_hash]):
        return False
    await open_session(session, token, row.chat_id, identity, now)
    return True


async def touch_session(session: AsyncSession, row: WebSession, now: datetime) -> None:
    await session.exec(
        update(WebSession).where(col(WebSession.token_hash) == row.token_hash).values(last_seen=now)
    )


async def purge_idle_sessions(session: AsyncSession, idle_since: datetime) -> None:
    """Forget up to PURGE_BATCH sessions idle since before `idle_since`, with their transcripts."""
    query = select(WebSession).where(col(WebSession.last_seen) < idle_since).limit(PURGE_BATCH)
    await _forget(session, list((await session.exec(query)).all()))


async def _forget(session: AsyncSession, rows: Sequence[WebSession]) -> None:
    """Delete sessions and the transcripts of their chats (the chat and its `chat.persona`s)."""
    for row in rows:
        await session.exec(delete(WebMessage).where(_chat_or_persona(row.chat_id)))
    await _delete_sessions(session, [row.token_hash for row in rows])


async def _delete_sessions(session: AsyncSession, token_hashes: list[str]) -> int:
    """Delete by statement, so that a row another request deleted first is no error."""
    if not token_hashes:
        return 0
    result = await session.exec(
        delete(WebSession).where(col(WebSession.token_hash).in_(token_hashes))
    )
    return int(result.rowcount)


def _chat_or_persona(chat_id: str) -> Any:
    return or_(
        col(WebMessage.chat_id) == chat_id,
        col(WebMessage.chat_id).startswith(f"{chat_id}.", autoescape=True),
    )


# ---- who may see a photo -----------------------------------------------------


async def chats_hold_photo(session: AsyncSession, chat_ids: Sequence[str], sha256: str) -> bool:
    """Whether the photo is in these chats' transcripts, or in their reports or drafts."""
    in_transcript = select(WebMessage.id).where(
        col(WebMessage.chat_id).in_(chat_ids), cast(WebMessage.payload, Text).contains(sha256)
    )
    people = select(Person.id).where(Person.channel == "web", col(Person.external_id).in_(chat_ids))
    in_report = (
        select(ReportPhoto.id)
        .join(Report, col(Report.id) == ReportPhoto.report_id)
        .where(ReportPhoto.sha256 == sha256, col(Report.reporter_id).in_(people))
    )
    in_draft = select(Conversation.person_id).where(
        col(Conversation.person_id).in_(people), cast(Conversation.data, Text).contains(sha256)
    )
    for query in (in_transcript, in_report, in_draft):
        if (await session.exec(query.limit(1))).first() is not None:
            return True
    return False
