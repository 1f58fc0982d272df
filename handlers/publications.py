"""What the public reads: stories, digests, movement and council announcements.

Everything here may reach thousands of people and a public channel, so it never
carries the reporter's identity (name, phone, or even that someone was anonymous).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.context import Services, Translator
from handlers.labels import GROUP_LABELS
from handlers.messages import Outbound, Photo
from handlers.text import clip, esc, fmt
from models.queue import photos_of
from models.reports import published_between
from models.tables import Broadcast, BroadcastKind, Movement, NomineeGroup, Report

STORY_CHARS = 3000
DIGEST_ITEMS = 30
DIGEST_PERIOD = timedelta(days=7)

MOVEMENT_EVENTS = ("launch", "reminder", "interim", "final")


def movement_key(movement_id: int, event: str, day: date) -> str:
    """The broadcast key of a movement's event; the event is read back from it."""
    return f"movement:{movement_id}:{event}:{day.isoformat()}"


def movement_event(broadcast: Broadcast) -> str:
    return broadcast.key.split(":")[2]


def story_message(report: Report, movement: Movement | None, _: Translator) -> Outbound:
    """An honoured story as subscribers and the public channel see it."""
    lines = [_("🌟 <b>Good people, good deeds</b>")]
    if report.headline:
        lines.append(f"<b>{esc(report.headline)}</b>")
    lines.append(
        fmt(
            _("<b>{name}</b> · {group} · {commune}"),
            name=report.public_name or report.nominee_name,
            group=_(GROUP_LABELS[NomineeGroup(report.nominee_group)]),
            commune=report.commune_name,
        )
    )
    if movement is not None:
        lines.append(fmt(_("Movement: {name}"), name=movement.name))
    lines += ["", esc(clip(report.public_story or report.story, STORY_CHARS))]
    lines += [
        "",
        fmt(_("Honoured by the Emulation and Commendation Council · {code}"), code=report.code),
    ]
    return Outbound(chat_id="", text="\n".join(lines))


def movement_lines(movement: Movement, _: Translator, *, full: bool) -> list[str]:
    lines = [f"<b>{esc(movement.name)}</b>"]
    if movement.slogan:
        lines.append(f"<i>{esc(movement.slogan)}</i>")
    lines.append(
        fmt(
            _("From {start} to {end}"),
            start=_day(movement.starts_on),
            end=_day(movement.ends_on),
        )
    )
    if full and movement.description:
        lines += ["", esc(movement.description)]
    if movement.criteria:
        lines += ["", _("<b>Criteria</b>")]
        lines += [f"• {esc(item)}" for item in movement.criteria]
    if full and movement.target_groups:
        groups = ", ".join(_(GROUP_LABELS[NomineeGroup(g)]) for g in movement.target_groups)
        lines.append(fmt(_("For: {groups}"), groups=groups))
    if full:
        reviews = [
            fmt(_("Interim review (sơ kết): {day}"), day=_day(movement.interim_review_on))
            if movement.interim_review_on
            else "",
            fmt(_("Final review (tổng kết): {day}"), day=_day(movement.final_review_on))
            if movement.final_review_on
            else "",
        ]
        lines += [line for line in reviews if line]
    return lines


def movement_message(movement: Movement, event: str, _: Translator) -> Outbound:
    heading = {
        "launch": _("🚩 <b>A new emulation movement starts today</b>"),
        "reminder": _("🔔 <b>Reminder: an emulation movement is under way</b>"),
        "interim": _("📊 <b>Interim review of an emulation movement</b>"),
        "final": _("🏆 <b>Final review of an emulation movement</b>"),
    }[event]
    lines = [heading, "", *movement_lines(movement, _, full=event == "launch")]
    lines += [
        "",
        fmt(
            _("Know someone who fits? Report them: /start movement_{slug}"),
            slug=movement.slug,
        ),
    ]
    return Outbound(chat_id="", text="\n".join(lines))


def announcement_message(
    broadcast: Broadcast, movement: Movement | None, _: Translator
) -> Outbound:
    lines = [_("📢 <b>From the Emulation and Commendation Council</b>")]
    if movement is not None:
        lines.append(fmt(_("Movement: {name}"), name=movement.name))
    lines += ["", esc(broadcast.text)]
    return Outbound(
        chat_id="", text="\n".join(lines), photos=[Photo(sha) for sha in broadcast.photos]
    )


def digest_message(reports: list[Report], _: Translator) -> Outbound:
    lines = [_("📰 <b>This week's good people and good deeds</b>"), ""]
    for report in reports[:DIGEST_ITEMS]:
        lines.append(
            fmt(
                "• <b>{name}</b> · {group} · {commune} ({code})",
                name=report.public_name or report.nominee_name,
                group=_(GROUP_LABELS[NomineeGroup(report.nominee_group)]),
                commune=report.commune_name,
                code=report.code,
            )
        )
    if len(reports) > DIGEST_ITEMS:
        lines.append(fmt(_("… and {count} more."), count=len(reports) - DIGEST_ITEMS))
    lines += ["", _("Thank you to everyone who shared these stories.")]
    return Outbound(chat_id="", text="\n".join(lines))


async def render(
    session: AsyncSession, services: Services, broadcast: Broadcast
) -> dict[str, dict[str, Any]]:
    """The broadcast's message in every locale, ready for the outbox (marked as bulk)."""
    movement = await session.get(Movement, broadcast.movement_id) if broadcast.movement_id else None
    report = await session.get(Report, broadcast.report_id) if broadcast.report_id else None
    photos = await photos_of(session, report.id) if report and report.id else []
    digest = (
        await published_between(
            session, broadcast.scheduled_at - DIGEST_PERIOD, broadcast.scheduled_at
        )
        if broadcast.kind == BroadcastKind.DIGEST
        else []
    )
    payloads = {}
    for locale, _ in services.translations.items():
        if broadcast.kind == BroadcastKind.STORY and report is not None:
            outbound = story_message(report, movement, _)
            outbound.photos = [Photo(sha) for sha in photos]
        elif broadcast.kind == BroadcastKind.MOVEMENT and movement is not None:
            outbound = movement_message(movement, movement_event(broadcast), _)
        elif broadcast.kind == BroadcastKind.DIGEST:
            outbound = digest_message(digest, _)
        else:
            outbound = announcement_message(broadcast, movement, _)
        outbound.bulk = True
        payloads[locale] = outbound.to_payload()
    return payloads


def _day(day: date | None) -> str:
    return day.strftime("%d/%m/%Y") if day else ""
