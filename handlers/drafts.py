"""Abandoned drafts expire, and their authors are told (through the outbox)."""

from __future__ import annotations

from datetime import datetime

import structlog

from handlers.context import Services
from handlers.messages import Outbound
from handlers.report import FLOW
from handlers.router import SessionFactory
from handlers.text import clip, fmt
from models.conversations import ConcurrentUpdate, save_conversation, stale_conversations
from models.outbox import enqueue
from models.tables import Person

log = structlog.get_logger(__name__)


async def expire_drafts(services: Services, sessions: SessionFactory, now: datetime) -> int:
    """Discard report drafts untouched for `draft_ttl`; returns how many were discarded."""
    ttl = services.config.draft_ttl
    expired = 0
    async with sessions() as session, session.begin():
        for state in await stale_conversations(session, FLOW, now - ttl):
            session.expunge(state)  # changed below: only the compare-and-set may write it
            person = await session.get(Person, state.person_id)
            assert person is not None
            nominee = state.data.get("name", "")
            state.flow, state.step, state.data = "", "", {}
            try:
                await save_conversation(session, state, now)
            except ConcurrentUpdate:
                continue  # the person wrote just now: the draft is alive after all
            _ = services.translator(person.locale)
            hours = round(ttl.total_seconds() / 3600)
            if nominee:
                text = fmt(
                    _(
                        "Your unfinished report about {name} was discarded after {hours} "
                        "hours without activity. Send /report whenever you want to start "
                        "again."
                    ),
                    name=clip(nominee, 60),
                    hours=hours,
                )
            else:
                text = fmt(
                    _(
                        "Your unfinished report was discarded after {hours} hours without "
                        "activity. Send /report whenever you want to start again."
                    ),
                    hours=hours,
                )
            outbound = Outbound(chat_id=person.external_id, text=text)
            enqueue(session, person.channel, person.external_id, outbound.to_payload())
            expired += 1
    if expired:
        log.info("drafts.expired", count=expired)
    return expired
