"""The operators' commands of `guongsang`: publish, broadcast list/status, movement import.

They write to the database; the running bot's leader sends what they schedule (it
looks for due broadcasts every few seconds).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import db
from bot.app import build_services
from bot.settings import Settings
from handlers.broadcasting import publish_approved, schedule_movement
from handlers.context import Services
from models.broadcasts import broadcasts_in
from models.movements import load_specs, save_movement
from models.outbox import delivery_counts
from models.tables import Broadcast, BroadcastStatus, OutboxStatus

Operation = Callable[[AsyncSession, Services, argparse.Namespace, datetime], Awaitable[int]]


async def run(settings: Settings, args: argparse.Namespace) -> int:
    operation = _operation(args)
    await db.upgrade(settings.database_url)
    engine = db.make_engine(settings.database_url)
    try:
        async with db.session_factory(engine)() as session, session.begin():
            return await operation(session, build_services(settings), args, datetime.now(UTC))
    finally:
        await engine.dispose()


def _operation(args: argparse.Namespace) -> Operation:
    if args.command == "publish":
        return publish_now
    if args.command == "movement":
        return import_movements
    return list_broadcasts if args.broadcast_command == "list" else broadcast_status


async def publish_now(
    session: AsyncSession, services: Services, args: argparse.Namespace, now: datetime
) -> int:
    published = await publish_approved(session, now, decided_by=None)
    if not published:
        print("No approved story is waiting.")
        return 0
    for broadcast in published:
        print(f"#{broadcast.id}  {broadcast.title}")
    print(f"{len(published)} stories published; the running bot sends them within seconds.")
    return 0


async def list_broadcasts(
    session: AsyncSession, services: Services, args: argparse.Namespace, now: datetime
) -> int:
    found = await broadcasts_in(session, frozenset(BroadcastStatus), limit=100, newest_first=True)
    if not found:
        print("No broadcast yet.")
        return 0
    zone = services.config.timezone
    print(f"{'ID':>6}  {'KIND':<12} {'STATUS':<10} {'WHEN':<16} {'TO':>7}  TITLE")
    for b in found:
        when = b.scheduled_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        print(f"{b.id:>6}  {b.kind:<12} {b.status:<10} {when:<16} {b.recipients:>7}  {b.title}")
    return 0


async def broadcast_status(
    session: AsyncSession, services: Services, args: argparse.Namespace, now: datetime
) -> int:
    broadcast = await session.get(Broadcast, args.id)
    if broadcast is None:
        print(f"No broadcast #{args.id}.")
        return 1
    counts = await delivery_counts(session, args.id)
    zone = services.config.timezone
    print(f"Broadcast #{broadcast.id}: {broadcast.kind} — {broadcast.title}")
    print(f"  status     : {broadcast.status}")
    print(f"  scheduled  : {broadcast.scheduled_at.astimezone(zone):%Y-%m-%d %H:%M}")
    print(f"  recipients : {broadcast.recipients}")
    for status in (OutboxStatus.SENT, OutboxStatus.FAILED, OutboxStatus.PENDING):
        print(f"  {status:<10} : {counts[status]}")
    print(f"  in flight  : {counts[OutboxStatus.SENDING]}")
    if broadcast.started_at is not None:
        end = broadcast.finished_at or now
        seconds = max((end - broadcast.started_at).total_seconds(), 0.001)
        print(f"  duration   : {seconds:.1f} s, {counts[OutboxStatus.SENT] / seconds:.1f} msg/s")
    return 0


async def import_movements(
    session: AsyncSession, services: Services, args: argparse.Namespace, now: datetime
) -> int:
    try:
        specs = load_specs(args.file)
    except (OSError, ValueError, ValidationError) as error:
        print(f"{args.file}: {error}")
        return 2
    for spec in specs:
        movement, created = await save_movement(session, spec, now)
        scheduled = await schedule_movement(session, services, movement, now)
        verb = "created" if created else "updated"
        print(f"{movement.slug}: {verb}; {scheduled} announcements scheduled")
    return 0
