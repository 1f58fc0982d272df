"""Moderation cards: what moderators see of a report, where it goes, how it is kept current.

A card is an outbox message (purpose "card", with the report's id) sent to the
moderators' group of a channel (Telegram's TELEGRAM_MODERATION_CHAT_ID, following its
migration to a supergroup) or, on channels without one (web chat, Zalo), to each
moderator's private chat. Once sent, its platform message id says where to edit it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.context import Services, Translator
from handlers.labels import AREA_TAG_LABELS, GROUP_LABELS, KIND_LABELS, STATUS_LABELS
from handlers.messages import Button, Outbound, Photo
from handlers.text import clip, esc, fmt
from models.communes import AreaTag
from models.moderation import FINAL, claim_active
from models.outbox import enqueue
from models.queue import duplicate_hints, notes_of, photos_of
from models.runtime_settings import get_value
from models.tables import (
    Movement,
    NomineeGroup,
    NomineeKind,
    OutboxMessage,
    OutboxStatus,
    Person,
    Report,
    ReportApproval,
    ReportStatus,
    Role,
    RoleGrant,
)

CARD = "card"
CARD_EDIT = "card-edit"
CARD_STORY_CHARS = 2000
STATUS_ICONS = {
    ReportStatus.SUBMITTED: "🆕",
    ReportStatus.CLAIMED: "🔒",
    ReportStatus.NEEDS_INFO: "❓",
    ReportStatus.APPROVED: "✅",
    ReportStatus.REJECTED: "❌",
    ReportStatus.DUPLICATE: "🔁",
    ReportStatus.PUBLISHED: "📣",
    ReportStatus.WITHDRAWN: "↩️",
}
MIGRATED_CHAT_KEY = "moderation_chat:{channel}"


@dataclass(frozen=True, slots=True)
class Target:
    channel: str
    chat_id: str
    locale: str


async def moderation_chat(session: AsyncSession, services: Services, channel: str) -> str | None:
    """The moderators' group of `channel`, following a migration to a supergroup."""
    configured = services.config.moderation_chats.get(channel)
    if configured is None:
        return None
    return await get_value(session, MIGRATED_CHAT_KEY.format(channel=channel)) or configured


async def moderation_targets(session: AsyncSession, services: Services) -> list[Target]:
    locale = services.config.default_locale
    targets = []
    for channel in services.config.moderation_chats:
        chat = await moderation_chat(session, services, channel)
        if chat:
            targets.append(Target(channel, chat, locale))
    query = (
        select(Person)
        .join(RoleGrant, col(RoleGrant.person_id) == col(Person.id))
        .where(col(RoleGrant.role).in_([Role.MODERATOR, Role.ADMIN]))
        .where(col(Person.channel).not_in(list(services.config.moderation_chats)))
        .distinct()
    )
    for person in (await session.exec(query)).all():
        targets.append(Target(person.channel, person.external_id, person.locale))
    return targets


def card_buttons(_: Translator, report: Report) -> list[list[Button]]:
    key = f"{report.id}:{report.content_version}"
    history = Button(_("📜 History"), f"m:hi:{key}")
    if ReportStatus(report.status) in FINAL:
        return [[history]]
    if report.status == ReportStatus.NEEDS_INFO:
        return [
            [Button(_("❌ Reject"), f"m:rj:{key}"), Button(_("🔁 Duplicate"), f"m:du:{key}")],
            [history],
        ]
    return [
        [Button(_("✅ Approve"), f"m:ap:{key}"), Button(_("❌ Reject"), f"m:rj:{key}")],
        [Button(_("❓ Ask for more"), f"m:aq:{key}"), Button(_("🔁 Duplicate"), f"m:du:{key}")],
        [Button(_("🔒 Claim"), f"m:cl:{key}"), Button(_("✏️ Edit"), f"m:ed:{key}")],
    ]


async def render_card(
    session: AsyncSession, services: Services, report: Report, _: Translator, now: datetime
) -> Outbound:
    """The card's text, buttons and photos, as the report stands now."""
    assert report.id is not None
    lines = [_headline(services, report, _, now)]
    lines += _nominee_lines(services, report, _)
    lines += await _people_lines(session, services, report, _, now)
    lines += await _notes_lines(session, report, _)
    lines += await _duplicate_lines(session, services, report, _)
    lines += await _movement_lines(session, report, _)
    lines += ["", _("<b>Story</b>"), esc(clip(report.story, CARD_STORY_CHARS))]
    if report.headline or report.public_story or report.public_name:
        lines += ["", fmt(_("<b>For publication:</b> {headline}"), headline=report.headline or "")]
        if report.public_name:
            lines.append(fmt(_("Name: {name}"), name=report.public_name))
        if report.public_story:
            lines.append(esc(clip(report.public_story, 800)))
    photos = [Photo(sha) for sha in await photos_of(session, report.id)]
    return Outbound(
        chat_id="", text="\n".join(lines), buttons=card_buttons(_, report), photos=photos
    )


async def _movement_lines(session: AsyncSession, report: Report, _: Translator) -> list[str]:
    """The movement the report is for, with the criteria moderators check it against."""
    movement = await session.get(Movement, report.movement_id) if report.movement_id else None
    if movement is None:
        return []
    lines = ["", fmt(_("🚩 <b>Movement:</b> {name}"), name=movement.name), _("Criteria:")]
    return lines + [f"• {esc(criterion)}" for criterion in movement.criteria]


def _headline(services: Services, report: Report, _: Translator, now: datetime) -> str:
    age = now - report.created_at
    late = age > services.config.moderation_target and report.status in (
        ReportStatus.SUBMITTED,
        ReportStatus.CLAIMED,
    )
    return fmt(
        _("{icon} <b>{code}</b> · {status} · {age}"),
        icon="⏰" if late else STATUS_ICONS[ReportStatus(report.status)],
        code=report.code,
        status=_(STATUS_LABELS[ReportStatus(report.status)]),
        age=format_age(_, age),
    )


def format_age(_: Translator, age: timedelta) -> str:
    hours = int(age.total_seconds() // 3600)
    if hours < 1:
        return fmt(_("{n} min"), n=max(int(age.total_seconds() // 60), 0))
    if hours < 48:
        return fmt(_("{n} h"), n=hours)
    return fmt(_("{n} days"), n=hours // 24)


def _nominee_lines(services: Services, report: Report, _: Translator) -> list[str]:
    tags = ", ".join(_(AREA_TAG_LABELS[AreaTag(t)]) for t in report.area_tags)
    place = fmt(
        "{commune}, {province}",
        commune=report.commune_name,
        province=services.communes.province_name,
    )
    return [
        fmt(
            _("Nominee: {name} ({kind})"),
            name=report.nominee_name,
            kind=_(KIND_LABELS[NomineeKind(report.nominee_kind)]),
        ),
        fmt(_("Group: {group}"), group=_(GROUP_LABELS[NomineeGroup(report.nominee_group)])),
        fmt(_("Place: {commune}"), commune=f"{place} ({tags})" if tags else place),
    ]


async def _people_lines(
    session: AsyncSession, services: Services, report: Report, _: Translator, now: datetime
) -> list[str]:
    required = services.config.approvals_required
    tz = services.config.timezone
    lines = []
    if report.anonymous:
        lines.append(_("Reporter: anonymous"))
    else:
        lines.append(
            fmt(
                _("Reporter: {name}, {phone} (seen only by the council)"),
                name=report.reporter_name or "",
                phone=report.reporter_phone or "",
            )
        )
    if report.by_officer:
        lines.append(fmt(_("Officer's report for: {unit}"), unit=report.officer_unit or ""))
    if claim_active(report, now):
        claimer = await session.get(Person, report.claimed_by_id)
        until = (
            report.claimed_until.astimezone(tz).strftime("%H:%M") if report.claimed_until else ""
        )
        lines.append(
            fmt(_("🔒 Claimed by {name} until {until}"), name=person_name(claimer), until=until)
        )
    if required > 1 and report.status in (ReportStatus.SUBMITTED, ReportStatus.CLAIMED):
        approvals = len(
            (
                await session.exec(
                    select(ReportApproval.id).where(ReportApproval.report_id == report.id)
                )
            ).all()
        )
        lines.append(fmt(_("👍 Approvals: {count}/{required}"), count=approvals, required=required))
    if report.decided_by_id is not None and report.decided_at is not None:
        decider = await session.get(Person, report.decided_by_id)
        lines.append(
            fmt(
                _("Decided by {name} at {time}"),
                name=person_name(decider),
                time=report.decided_at.astimezone(tz).strftime("%H:%M %d/%m/%Y"),
            )
        )
    if report.reject_reason:
        lines.append(fmt(_("Reason: {reason}"), reason=report.reject_reason))
    if report.duplicate_of_id:
        original = await session.get(Report, report.duplicate_of_id)
        lines.append(fmt(_("Duplicate of {code}"), code=original.code if original else "?"))
    return lines


async def _notes_lines(session: AsyncSession, report: Report, _: Translator) -> list[str]:
    assert report.id is not None
    lines = []
    for note in await notes_of(session, report.id):
        template = _("❓ Council: {text}") if note.kind == "question" else _("💬 Reporter: {text}")
        lines.append(fmt(template, text=clip(note.text, 500)))
    return lines


async def _duplicate_lines(
    session: AsyncSession, services: Services, report: Report, _: Translator
) -> list[str]:
    hints = await duplicate_hints(session, report, services.config.duplicate_window)
    if not hints:
        return []
    described = []
    for hint in hints:
        why = [_("same name and commune")] if hint.same_name else []
        if hint.similar_photo:
            why.append(_("similar photo"))
        described.append(fmt("{code} ({why})", code=hint.report.code, why=", ".join(why)))
    return [fmt(_("⚠️ Possible duplicates: {list}"), list="; ".join(described))]


def person_name(person: Person | None) -> str:
    """How moderators see a person: their name, else their channel and id."""
    if person is None:
        return "?"
    return person.display_name or f"{person.channel}:{person.external_id}"


async def post_cards(
    session: AsyncSession, services: Services, report: Report, now: datetime
) -> None:
    """Queue a card for every moderation target (in the caller's transaction)."""
    for target in await moderation_targets(session, services):
        await send_card(session, services, report, target, now)


async def send_card(
    session: AsyncSession, services: Services, report: Report, target: Target, now: datetime
) -> None:
    """Queue one copy of the card; once sent, `refresh_cards` keeps it current."""
    card = await render_card(session, services, report, services.translator(target.locale), now)
    card.chat_id = target.chat_id
    enqueue(
        session,
        target.channel,
        target.chat_id,
        card.to_payload(),
        report_id=report.id,
        purpose=CARD,
        locale=target.locale,
    )


async def refresh_cards(
    session: AsyncSession, services: Services, report: Report, now: datetime
) -> None:
    """Queue an edit of every card of `report` already sent, showing its current state."""
    query = select(OutboxMessage).where(
        OutboxMessage.report_id == report.id,
        OutboxMessage.purpose == CARD,
        OutboxMessage.status == OutboxStatus.SENT,
        col(OutboxMessage.platform_message_id).is_not(None),
    )
    for sent in (await session.exec(query)).all():
        locale = sent.locale or services.config.default_locale
        card = await render_card(session, services, report, services.translator(locale), now)
        card.chat_id = sent.chat_id
        card.edit_message_id = sent.platform_message_id or ""
        enqueue(
            session,
            sent.channel,
            sent.chat_id,
            card.to_payload(),
            report_id=report.id,
            purpose=CARD_EDIT,
        )
