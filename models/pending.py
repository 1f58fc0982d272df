"""Prompts waiting for a person's next message in a chat (a reason, a question, an answer)."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, delete
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import PendingInput


async def expect_input(
    session: AsyncSession,
    person_id: int,
    chat_id: str,
    action: str,
    report_id: int,
    report_version: int,
    data: dict[str, Any] | None = None,
) -> None:
    """Make `person`'s next message in `chat_id` the answer to `action` (replacing any other)."""
    await clear_input(session, person_id, chat_id)
    session.add(
        PendingInput(
            person_id=person_id,
            chat_id=chat_id,
            action=action,
            report_id=report_id,
            report_version=report_version,
            data=data or {},
        )
    )
    await session.flush()


async def clear_input(session: AsyncSession, person_id: int, chat_id: str) -> None:
    await session.exec(
        delete(PendingInput).where(
            col(PendingInput.person_id) == person_id, col(PendingInput.chat_id) == chat_id
        )
    )
