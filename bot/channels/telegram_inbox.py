"""The Telegram Application's update queue, which keeps each update before taking it.

Every update reaches the Application through its `update_queue`: the webhook route puts
what Telegram posts, the polling Updater what `getUpdates` returned. This queue stores
the update in the inbox (`models/inbox.py`) before it takes it, so the webhook answers
200 only for a kept update, and polling confirms one (with the offset of its next
`getUpdates`) only once kept. A replayed `update_id` is not queued again. The channel
marks each update handled when its handling ends; on start, `replay` queues what a killed
run kept and never handled, oldest first.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from functools import partial

import structlog
from sqlalchemy.exc import DBAPIError
from telegram import Bot, Update
from telegram.error import NetworkError

from bot.db import WriteProbe, storage_problem
from handlers.router import SessionFactory
from models.inbox import keep_update, mark_handled, unhandled_updates

CHANNEL = "telegram"

log = structlog.get_logger(__name__)


class InboxQueue(asyncio.Queue[object]):
    def __init__(self, sessions: SessionFactory, storage: WriteProbe) -> None:
        super().__init__()
        self._sessions = sessions
        self._storage = storage
        self._queued: set[int] = set()
        """Update ids queued by this run and not handled yet (replay skips them)."""

    async def take(self, update: Update) -> None:
        """Keep `update`, then queue it (a replayed one is dropped). Raises when the
        database cannot keep it: the webhook then answers 503 and Telegram sends it again."""
        async with self._sessions() as session, session.begin():
            first = await keep_update(
                session, CHANNEL, update.update_id, update.to_dict(), datetime.now(UTC)
            )
        if not first:
            log.info("telegram.update.replayed", update_id=update.update_id)
            return
        self._queued.add(update.update_id)
        await super().put(update)

    async def put(self, item: object) -> None:
        """The polling Updater's way in: an update is kept, waiting for the database as long
        as it takes no writes (the Updater confirms nothing meanwhile); other items pass.
        Stopping meanwhile, the update is not confirmed: the next start gets it again."""
        if not isinstance(item, Update):
            await super().put(item)
            return
        try:
            await self._storage.retry(partial(self.take, item), "telegram.inbox")
        except ConnectionError as stopping:
            raise NetworkError(f"update {item.update_id} not kept: {stopping}") from None
        except DBAPIError as error:
            if storage_problem(error) is not None:  # still unavailable as the bot stops
                raise NetworkError(f"update {item.update_id} not kept: {error}") from None
            log.error("telegram.update.unkeepable", update_id=item.update_id, error=str(error))

    async def handled(self, update_id: int) -> None:
        self._queued.discard(update_id)
        await self._storage.retry(partial(self._mark_handled, update_id), "telegram.inbox")

    async def _mark_handled(self, update_id: int) -> None:
        async with self._sessions() as session, session.begin():
            await mark_handled(session, CHANNEL, update_id, datetime.now(UTC))

    async def replay(self, bot: Bot) -> int:
        """Queue the updates kept by an earlier run and not handled; returns how many."""
        async with self._sessions() as session:
            kept = await unhandled_updates(session, CHANNEL)
        replayed = 0
        for update_id, payload in kept:
            if update_id in self._queued:
                continue
            self._queued.add(update_id)
            self.put_nowait(Update.de_json(payload, bot))
            replayed += 1
        if replayed:
            log.warning("telegram.inbox.replayed", count=replayed)
        return replayed
