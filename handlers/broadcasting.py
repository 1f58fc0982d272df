"""When things are published: slots, the weekly digest, movements; starting and watching.

Every function takes `now`, so tests control time instead of waiting for it. Each tick
is idempotent and coalesces what it missed: a bot that was down over two slots
publishes the waiting stories once when it is back (a broadcast's unique key makes each
publication happen once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import structlog
from sqlmodel import col, delete
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers import notify
from handlers.cards import format_age, moderation_chat, refresh_cards
from handlers.context import Services, Translator
from handlers.labels import BROADCAST_KIND_LABELS, MOVEMENT_EVENT_LABELS
from handlers.messages import Outbound
from handlers.ports import SendNow
from handlers.publications import DIGEST_PERIOD, movement_event, movement_key, render
from handlers.text import clip, fmt
from models.broadcasts import (
    broadcasts_in,
    claim_start,
    create_broadcast,
    due_broadcasts,
    materialize,
    start,
)
from models.moderation import SYSTEM, Action, Rules, transition
from models.outbox import delivery_counts
from models.reports import approved_waiting, published_between
from models.tables import (
    Broadcast,
    BroadcastKind,
    BroadcastStatus,
    Movement,
    OutboxStatus,
    Person,
    Report,
)

SessionFactory = Callable[[], AsyncSession]
DIGEST_GRACE = timedelta(days=1)
"""A digest more than a day late (the bot was down) is skipped, not sent stale."""
MOVEMENT_GRACE = timedelta(days=1)

log = structlog.get_logger(__name__)


def _at(services: Services, day: date, moment: time) -> datetime:
    return datetime.combine(day, moment, tzinfo=services.config.timezone)


def latest_slot(services: Services, now: datetime) -> datetime:
    """The most recent publication slot at or before `now`."""
    today = now.astimezone(services.config.timezone).date()
    slots = [
        _at(services, today - timedelta(days=back), slot)
        for back in (0, 1)
        for slot in services.config.publication_slots
    ]
    return max(slot for slot in slots if slot <= now)


def latest_digest(services: Services, now: datetime) -> datetime:
    today = now.astimezone(services.config.timezone).date()
    back = (today.weekday() - services.config.digest_weekday) % 7
    candidate = _at(services, today - timedelta(days=back), services.config.digest_time)
    return candidate if candidate <= now else candidate - timedelta(days=7)


# ---- deciding what to publish ----------------------------------------------------------


async def publish_approved(
    session: AsyncSession, now: datetime, decided_by: datetime | None
) -> list[Broadcast]:
    """Publish approved stories (decided by `decided_by`; None: all), one broadcast each."""
    published = []
    for report in await approved_waiting(session, decided_by):
        assert report.id is not None
        outcome = await transition(session, report.id, Action.PUBLISH, SYSTEM, now, rules=Rules())
        if not outcome.ok:
            continue
        broadcast = await create_broadcast(
            session,
            Broadcast(
                key=f"story:{report.id}",
                kind=BroadcastKind.STORY,
                stories=True,
                commune_codes=[report.commune_code],
                report_id=report.id,
                movement_id=report.movement_id,
                title=clip(f"{report.code} {report.public_name or report.nominee_name}", 256),
                scheduled_at=now,
            ),
        )
        if broadcast is not None:
            published.append(broadcast)
    return published


async def publication_tick(services: Services, sessions: SessionFactory, now: datetime) -> int:
    """Publish what was approved before the latest slot; returns how many stories."""
    async with sessions() as session, session.begin():
        published = await publish_approved(session, now, latest_slot(services, now))
    if published:
        log.info("publication.slot", stories=len(published))
    return len(published)


async def digest_tick(services: Services, sessions: SessionFactory, now: datetime) -> bool:
    """Schedule this week's digest once its time has come (if anything was published)."""
    due = latest_digest(services, now)
    if now - due > DIGEST_GRACE:
        return False
    async with sessions() as session, session.begin():
        reports = await published_between(session, due - DIGEST_PERIOD, due)
        if not reports:
            return False
        created = await create_broadcast(
            session,
            Broadcast(
                key=f"digest:{due.date().isoformat()}",
                kind=BroadcastKind.DIGEST,
                stories=True,
                commune_codes=sorted({r.commune_code for r in reports}),
                title=f"digest {due.date().isoformat()}",
                scheduled_at=due,
            ),
        )
    return created is not None


async def schedule_movement(
    session: AsyncSession, services: Services, movement: Movement, now: datetime
) -> int:
    """(Re)schedule a movement's launch, reminders and reviews; returns how many are ahead.

    Called whenever a movement is saved: scheduled announcements are replaced, those
    already sent stay sent (their keys include the day, so a moved date is announced anew).
    """
    assert movement.id is not None
    await session.exec(
        delete(Broadcast).where(
            col(Broadcast.movement_id) == movement.id,
            col(Broadcast.kind) == BroadcastKind.MOVEMENT,
            col(Broadcast.status) == BroadcastStatus.SCHEDULED,
        )
    )
    events = [("launch", movement.starts_on)]
    events += [("reminder", date.fromisoformat(day)) for day in movement.reminders]
    if movement.interim_review_on:
        events.append(("interim", movement.interim_review_on))
    if movement.final_review_on:
        events.append(("final", movement.final_review_on))
    scheduled = 0
    for event, day in events:
        at = _at(services, day, services.config.movement_announce_time)
        if at < now - MOVEMENT_GRACE:
            continue
        created = await create_broadcast(
            session,
            Broadcast(
                key=movement_key(movement.id, event, day),
                kind=BroadcastKind.MOVEMENT,
                announcements=True,
                movement_id=movement.id,
                title=clip(movement.name, 256),
                scheduled_at=max(at, now),
                created_by_id=movement.created_by_id,
            ),
        )
        scheduled += created is not None
    return scheduled


# ---- running broadcasts ----------------------------------------------------------------


async def start_due(services: Services, sessions: SessionFactory, now: datetime) -> int:
    """Render each due broadcast and write one delivery per recipient; returns how many."""
    async with sessions() as session, session.begin():
        due = await due_broadcasts(session, now)
        for broadcast in due:
            if not await claim_start(session, broadcast, now):
                continue  # cancelled since it was read
            payloads = await render(session, services, broadcast)
            locale = services.config.default_locale
            public = [(ch, chat, locale) for ch, chat in services.config.publication_chats.items()]
            recipients = await materialize(
                session, broadcast, public, now, services.config.channels or None
            )
            broadcast.progress_chats = await _progress_chats(session, services, broadcast)
            await start(session, broadcast, payloads, recipients, now)
            if broadcast.kind == BroadcastKind.STORY and broadcast.report_id is not None:
                await _story_is_out(session, services, broadcast.report_id, now)
            log.info(
                "broadcast.started",
                broadcast_id=broadcast.id,
                kind=broadcast.kind,
                recipients=recipients,
            )
    return len(due)


async def _story_is_out(
    session: AsyncSession, services: Services, report_id: int, now: datetime
) -> None:
    """The reporter is told their story is published; the cards say so too."""
    report = await session.get(Report, report_id)
    if report is None:
        return
    await notify.tell_reporter(session, services, report, notify.published(report))
    await refresh_cards(session, services, report, now)


async def _progress_chats(
    session: AsyncSession, services: Services, broadcast: Broadcast
) -> list[dict[str, str]]:
    """The author's private chat (if a person started it) and the moderators' groups."""
    chats = []
    author = await session.get(Person, broadcast.created_by_id) if broadcast.created_by_id else None
    if author is not None:
        chats.append(
            {"channel": author.channel, "chat_id": author.external_id, "locale": author.locale}
        )
    for channel in services.config.moderation_chats:
        group = await moderation_chat(session, services, channel)
        if group:
            chats.append(
                {"channel": channel, "chat_id": group, "locale": services.config.default_locale}
            )
    return [{**chat, "message_id": ""} for chat in chats]


@dataclass(frozen=True, slots=True)
class _Update:
    broadcast_id: int
    index: int
    chat: dict[str, str]
    outbound: Outbound


async def report_progress(
    services: Services, sessions: SessionFactory, send: SendNow, now: datetime
) -> int:
    """Show each running broadcast's progress (one message per chat, edited); finish it.

    Network calls happen outside any transaction. At most one message per chat per
    call, so a group sees at most one edit per interval whatever is running.
    """
    updates: list[_Update] = []
    busy: set[tuple[str, str]] = set()
    async with sessions() as session, session.begin():
        for broadcast in await broadcasts_in(session, frozenset({BroadcastStatus.RUNNING})):
            assert broadcast.id is not None
            counts = await delivery_counts(session, broadcast.id)
            chats = [
                (index, chat)
                for index, chat in enumerate(broadcast.progress_chats)
                if (chat["channel"], chat["chat_id"]) not in busy
            ]
            busy.update((chat["channel"], chat["chat_id"]) for _, chat in chats)
            finished = counts[OutboxStatus.PENDING] + counts[OutboxStatus.SENDING] == 0
            if finished and len(chats) == len(broadcast.progress_chats):
                # Done once every progress message can show the final report now.
                broadcast.status, broadcast.finished_at = BroadcastStatus.DONE, now
                session.add(broadcast)
                log.info("broadcast.finished", broadcast_id=broadcast.id, **_plain(counts))
            for index, chat in chats:
                _ = services.translator(chat.get("locale", ""))
                outbound = Outbound(
                    chat_id=chat["chat_id"],
                    text=progress_text(broadcast, counts, now, _),
                    edit_message_id=chat["message_id"],
                )
                updates.append(_Update(broadcast.id, index, chat, outbound))
    sent = [await _send_progress(send, update) for update in updates]
    async with sessions() as session, session.begin():
        for update, message_id in zip(updates, sent, strict=True):
            if message_id and not update.chat["message_id"]:
                shown = await session.get(Broadcast, update.broadcast_id)
                assert shown is not None
                progress = [dict(chat) for chat in shown.progress_chats]
                progress[update.index]["message_id"] = message_id
                shown.progress_chats = progress
                session.add(shown)
    return len(updates)


async def _send_progress(send: SendNow, update: _Update) -> str:
    try:
        return await send(
            update.chat["channel"], update.chat["chat_id"], update.outbound.to_payload()
        )
    except Exception as error:
        log.info("broadcast.progress_failed", broadcast_id=update.broadcast_id, error=repr(error))
        return ""


def describe(broadcast: Broadcast, _: Translator) -> str:
    """`#id · kind · title` in the reader's language: no internal name of a kind or event."""
    kind = BroadcastKind(broadcast.kind)
    label = (
        MOVEMENT_EVENT_LABELS[movement_event(broadcast)]
        if kind == BroadcastKind.MOVEMENT
        else BROADCAST_KIND_LABELS[kind]
    )
    title = (
        date.fromisoformat(broadcast.key.removeprefix("digest:")).strftime("%d/%m/%Y")
        if kind == BroadcastKind.DIGEST
        else clip(broadcast.title, 60)
    )
    return fmt("#{id} · {kind} · {title}", id=broadcast.id, kind=_(label), title=title)


def progress_text(
    broadcast: Broadcast, counts: dict[OutboxStatus, int], now: datetime, _: Translator
) -> str:
    """The live progress message; `describe` has escaped the only user text in it."""
    sent, failed = counts[OutboxStatus.SENT], counts[OutboxStatus.FAILED]
    remaining = counts[OutboxStatus.PENDING] + counts[OutboxStatus.SENDING]
    elapsed = now - (broadcast.started_at or now)
    head = describe(broadcast, _)
    if broadcast.status == BroadcastStatus.DONE:
        took = (
            _("{n} s").format(n=int(elapsed.total_seconds()))
            if elapsed < timedelta(minutes=1)
            else format_age(_, elapsed)
        )
        return _(
            "✅ Broadcast {head} finished: {sent} sent, {failed} failed, in {duration}."
        ).format(head=head, sent=sent, failed=failed, duration=took)
    rate = sent / max(elapsed.total_seconds(), 1.0)
    left = format_age(_, timedelta(seconds=remaining / rate)) if rate > 0 else "?"
    return "\n".join(
        [
            _("📣 Broadcast {head}").format(head=head),
            _("Sent {sent} of {total} · failed {failed} · remaining {remaining}").format(
                sent=sent, total=broadcast.recipients, failed=failed, remaining=remaining
            ),
            _("Rate {rate}/s · about {left} left").format(rate=f"{rate:.0f}", left=left),
        ]
    )


def _plain(counts: dict[OutboxStatus, int]) -> dict[str, int]:
    return {str(status): count for status, count in counts.items()}
