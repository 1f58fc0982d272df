"""Administrators announce: compose, preview, schedule; list and cancel broadcasts.

/announce asks for the text, an optional photo, the movement it belongs to, who
receives it (topics, communes), shows it exactly as subscribers will see it, and
schedules it now or later. /broadcasts lists what is scheduled or running.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, time, timedelta
from typing import Any

from handlers.admin import is_admin
from handlers.broadcasting import describe, publish_approved
from handlers.context import FlowContext
from handlers.labels import BROADCAST_STATUS_LABELS
from handlers.messages import Button, InboundKind
from handlers.movements import parse_day
from handlers.places import offer_communes
from handlers.ports import StoredImage
from handlers.publications import announcement_message
from handlers.text import clip, fmt
from handlers.uploads import remember_upload
from models.broadcasts import broadcasts_in, cancel, create_broadcast
from models.movements import active_movements
from models.tables import Broadcast, BroadcastKind, BroadcastStatus, Movement

FLOW = "announce"
TEXT_LIMITS = (10, 3000)
AUDIENCES = {"all": (True, True), "announcements": (False, True), "stories": (True, False)}
"""Audience button → (subscribers of stories, subscribers of announcements)."""


async def announce(ctx: FlowContext) -> None:
    if not is_admin(ctx):
        return
    state = ctx.conversation
    state.flow, state.step, state.data = FLOW, "text", {"communes": []}
    ctx.say(
        fmt(
            ctx._("Type the announcement ({min} to {max} characters)."),
            min=TEXT_LIMITS[0],
            max=TEXT_LIMITS[1],
        ),
        [[Button(ctx._("✖️ Cancel"), "an:cancel")]],
    )


async def on_input(ctx: FlowContext) -> None:
    """What the administrator types or sends while composing (checked again each time)."""
    if not is_admin(ctx):
        ctx.conversation.flow, ctx.conversation.step, ctx.conversation.data = "", "", {}
        return
    state = ctx.conversation
    inbound = ctx.inbound
    if state.step == "text" and inbound.kind is InboundKind.TEXT:
        await _take_text(ctx, inbound.text.strip())
    elif state.step == "photo" and inbound.kind in (InboundKind.PHOTO, InboundKind.DOCUMENT):
        if not isinstance(ctx.upload, StoredImage):
            ctx.say(ctx._("This file is not a photo I can use. Send a photo, or press Skip."))
            return
        await remember_upload(ctx, ctx.upload)
        state.data["photos"] = [ctx.upload.sha256]
        await _ask_movement(ctx)
    elif state.step == "communes" and inbound.kind is InboundKind.TEXT:
        offer_communes(ctx, inbound.text, "an:c:", [[Button(ctx._("Done"), "an:cdone")]])
    elif state.step == "time" and inbound.kind is InboundKind.TEXT:
        when = parse_moment(inbound.text, ctx.now, ctx.services.config.timezone)
        if when is None or when < ctx.now - timedelta(minutes=1):
            ctx.say(ctx._("Please type a time to come, like 19:30 or 25/12/2026 08:00."))
            return
        await _schedule(ctx, when)
    else:
        ctx.say(ctx._("Please choose one of the options above, or /cancel."))


async def _take_text(ctx: FlowContext, text: str) -> None:
    if not TEXT_LIMITS[0] <= len(text) <= TEXT_LIMITS[1]:
        ctx.say(
            fmt(
                ctx._("The announcement must have {min} to {max} characters (now {count})."),
                min=TEXT_LIMITS[0],
                max=TEXT_LIMITS[1],
                count=len(text),
            )
        )
        return
    ctx.conversation.data["text"] = text
    ctx.conversation.step = "photo"
    ctx.say(
        ctx._("Send a photo to go with it, or press Skip."),
        [[Button(ctx._("Skip"), "an:nophoto")]],
    )


async def _ask_movement(ctx: FlowContext) -> None:
    today = ctx.now.astimezone(ctx.services.config.timezone).date()
    movements = await active_movements(ctx.session, today)
    if not movements:
        await _ask_audience(ctx)
        return
    ctx.conversation.step = "movement"
    rows = [[Button(f"🚩 {m.name}", f"an:m:{m.id}")] for m in movements]
    rows.append([Button(ctx._("General announcement"), "an:m:none")])
    ctx.say(ctx._("Is it about an emulation movement?"), rows)


async def _ask_audience(ctx: FlowContext) -> None:
    _ = ctx._
    ctx.conversation.step = "audience"
    ctx.say(
        _("Who should receive it?"),
        [
            [Button(_("Every subscriber"), "an:a:all")],
            [Button(_("Subscribers of movements and announcements"), "an:a:announcements")],
            [Button(_("Subscribers of honoured stories"), "an:a:stories")],
        ],
    )


def _ask_communes(ctx: FlowContext) -> None:
    _ = ctx._
    ctx.conversation.step = "communes"
    chosen = ctx.conversation.data["communes"]
    names = [c.name for code in chosen if (c := ctx.services.communes.get(code))]
    text = (
        fmt(_("Communes chosen: {names}. Type another, or press Done."), names=", ".join(names))
        if names
        else _("For the whole province, or only some communes? Type a commune's name to add it.")
    )
    rows = (
        [[Button(_("Done"), "an:cdone")]]
        if names
        else [[Button(_("🗺️ The whole province"), "an:cdone")]]
    )
    ctx.say(text, rows)


async def on_button(ctx: FlowContext, payload: str) -> None:
    """an:… presses while composing; bc:x:<id> cancels a scheduled broadcast."""
    if not is_admin(ctx):
        return
    if payload.startswith("bc:x:"):
        await _cancel(ctx, payload.removeprefix("bc:x:"))
        return
    state = ctx.conversation
    action = payload.removeprefix("an:")
    if action == "cancel":
        if state.flow == FLOW:
            state.flow, state.step, state.data = "", "", {}
        ctx.say(ctx._("Cancelled. Nothing was sent."))
        return
    if state.flow != FLOW:
        ctx.say(ctx._("That button is from an earlier message and no longer works."))
        return
    await _composing_button(ctx, action, state.data)


async def _composing_button(ctx: FlowContext, action: str, data: dict[str, Any]) -> None:
    step = ctx.conversation.step
    if action == "nophoto" and step == "photo":
        data["photos"] = []
        await _ask_movement(ctx)
    elif action.startswith("m:") and step == "movement":
        data["movement_id"] = int(action[2:]) if action[2:].isdigit() else None
        await _ask_audience(ctx)
    elif action.startswith("a:") and step == "audience" and action[2:] in AUDIENCES:
        data["audience"] = action[2:]
        _ask_communes(ctx)
    elif action.startswith("c:") and step == "communes" and action[2:].isdigit():
        if ctx.services.communes.get(int(action[2:])) and int(action[2:]) not in data["communes"]:
            data["communes"].append(int(action[2:]))
        _ask_communes(ctx)
    elif action == "cdone" and step == "communes":
        await _preview(ctx)
    elif action == "now" and step == "preview":
        await _schedule(ctx, ctx.now)
    elif action == "later" and step == "preview":
        ctx.conversation.step = "time"
        ctx.say(ctx._("When? Type a time like 19:30 (today) or 25/12/2026 08:00."))
    else:
        ctx.say(ctx._("That button is from an earlier message and no longer works."))


async def _draft(ctx: FlowContext) -> tuple[Broadcast, Movement | None]:
    data = ctx.conversation.data
    stories, announcements = AUDIENCES[data.get("audience", "all")]
    movement_id = data.get("movement_id")
    broadcast = Broadcast(
        key=f"announcement:{uuid.uuid4().hex}",
        kind=BroadcastKind.ANNOUNCEMENT,
        stories=stories,
        announcements=announcements,
        commune_codes=list(data.get("communes", [])),
        title=clip(data.get("text", ""), 80),
        text=data.get("text", ""),
        photos=list(data.get("photos", [])),
        movement_id=movement_id,
        created_by_id=ctx.person.id,
    )
    movement = await ctx.session.get(Movement, movement_id) if movement_id else None
    return broadcast, movement


async def _preview(ctx: FlowContext) -> None:
    _ = ctx._
    ctx.conversation.step = "preview"
    broadcast, movement = await _draft(ctx)
    preview = announcement_message(broadcast, movement, _)
    ctx.say(_("<b>Preview</b> — subscribers will see exactly this:"))
    ctx.say(preview.text, photos=preview.photos)
    ctx.say(
        _("Send it now, or schedule it?"),
        [
            [Button(_("📣 Send now"), "an:now"), Button(_("🕒 Schedule"), "an:later")],
            [Button(_("✖️ Cancel"), "an:cancel")],
        ],
    )


async def _schedule(ctx: FlowContext, when: datetime) -> None:
    broadcast, _movement = await _draft(ctx)
    broadcast.scheduled_at = when
    assert await create_broadcast(ctx.session, broadcast) is not None  # its key is new
    await ctx.session.flush()
    ctx.conversation.flow, ctx.conversation.step, ctx.conversation.data = "", "", {}
    if when <= ctx.now:
        ctx.say(
            fmt(
                ctx._("📣 Broadcast #{id} is going out now; you will see its progress here."),
                id=broadcast.id,
            )
        )
        return
    local = when.astimezone(ctx.services.config.timezone)
    ctx.say(
        fmt(
            ctx._(
                "Scheduled as broadcast #{id} for {when}. You will see its progress here. "
                "/broadcasts lists what is scheduled (and can cancel it)."
            ),
            id=broadcast.id,
            when=local.strftime("%H:%M %d/%m/%Y"),
        )
    )


async def publish_now(ctx: FlowContext) -> None:
    """/publish: the approved stories go out now, without waiting for the next slot."""
    if not is_admin(ctx):
        return
    published = await publish_approved(ctx.session, ctx.now, decided_by=None)
    if not published:
        ctx.say(ctx._("No approved story is waiting."))
        return
    ctx.say(
        fmt(
            ctx._("{count} stories are published; subscribers receive them within seconds."),
            count=len(published),
        )
    )


async def list_broadcasts(ctx: FlowContext) -> None:
    """/broadcasts: scheduled and running broadcasts, with a cancel button for each scheduled."""
    if not is_admin(ctx):
        return
    statuses = frozenset({BroadcastStatus.SCHEDULED, BroadcastStatus.RUNNING})
    found = await broadcasts_in(ctx.session, statuses, limit=20)
    if not found:
        ctx.say(ctx._("Nothing is scheduled or being sent."))
        return
    zone = ctx.services.config.timezone
    for broadcast in found:
        when = broadcast.scheduled_at.astimezone(zone).strftime("%H:%M %d/%m/%Y")
        status = ctx._(BROADCAST_STATUS_LABELS[BroadcastStatus(broadcast.status)])
        line = f"{describe(broadcast, ctx._)}\n{fmt('{status} · {when}', status=status, when=when)}"
        buttons = (
            [[Button(ctx._("✖️ Cancel this broadcast"), f"bc:x:{broadcast.id}")]]
            if broadcast.status == BroadcastStatus.SCHEDULED
            else []
        )
        ctx.say(line, buttons)


async def _cancel(ctx: FlowContext, raw_id: str) -> None:
    if raw_id.isdigit() and await cancel(ctx.session, int(raw_id)):
        ctx.say(fmt(ctx._("Broadcast #{id} is cancelled."), id=raw_id))
    else:
        ctx.say(ctx._("This broadcast has already started or does not exist."), toast=True)


def parse_moment(text: str, now: datetime, zone: Any) -> datetime | None:
    """ "19:30" (today, or tomorrow if past), or "25/12/2026 08:00", in the local zone."""
    match = re.search(r"(\d{1,2})[:h](\d{2})", text)
    if match is None:
        return None
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        return None
    rest = (text[: match.start()] + " " + text[match.end() :]).strip()
    local_now = now.astimezone(zone)
    day = parse_day(rest) if rest else local_now.date()
    if day is None:
        return None
    moment = datetime.combine(day, time(hour, minute), tzinfo=zone)
    if not rest and moment < local_now.replace(second=0, microsecond=0):
        moment += timedelta(days=1)
    return moment
