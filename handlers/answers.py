"""A reporter answers the council's question: text and photos, then Done.

The answer is opened with the question's "Answer" button, so that a reporter busy with a
new report never has that draft's messages taken for an answer.
"""

from __future__ import annotations

from handlers.basics import main_menu
from handlers.cards import post_cards, refresh_cards
from handlers.context import FlowContext
from handlers.messages import Button, InboundKind
from handlers.ports import StoredImage
from handlers.text import clip, fmt
from handlers.uploads import remember_upload
from models.moderation import Action, Actor, Rules, check, transition
from models.pending import clear_input, expect_input
from models.queue import photos_of
from models.tables import PendingInput, ReportNote, ReportPhoto

ANSWER = "answer"
MAX_REPORT_PHOTOS = 20
"""The report's own photos plus those sent in answers."""


def _done_button(ctx: FlowContext, report_id: int) -> list[list[Button]]:
    return [[Button(ctx._("✅ Done, send to the council"), f"a:done:{report_id}")]]


async def on_button(ctx: FlowContext, payload: str) -> None:
    _, action, report_id_text = ([*payload.split(":"), "", "", ""])[:3]
    if not (report_id_text.isascii() and report_id_text.isdecimal() and len(report_id_text) < 12):
        ctx.say(ctx._("That button is from an earlier message and no longer works."))
        return
    report_id = int(report_id_text)
    outcome = await check(
        ctx.session, report_id, Action.ANSWER, Actor(ctx.person, ctx.roles), ctx.now
    )
    if not outcome.ok or outcome.report is None:
        ctx.say(ctx._("That question has already been answered or closed. Thank you!"))
        return
    assert ctx.person.id is not None
    if action == "start":
        await expect_input(
            ctx.session,
            ctx.person.id,
            ctx.inbound.chat_id,
            ANSWER,
            report_id,
            outcome.report.version,
        )
        ctx.say(
            fmt(
                ctx._(
                    "Write your answer about {code}; you can also send photos. Press "
                    "Done when you have finished."
                ),
                code=outcome.report.code,
            ),
            _done_button(ctx, report_id),
        )
    elif action == "done":
        await _finish(ctx, report_id)


async def on_pending(ctx: FlowContext, pending: PendingInput) -> None:
    """A message while answering: kept with the report until the reporter presses Done."""
    assert ctx.person.id is not None
    if ctx.inbound.kind is InboundKind.TEXT and ctx.inbound.text.strip():
        ctx.session.add(
            ReportNote(
                report_id=pending.report_id,
                author_id=ctx.person.id,
                kind="answer",
                text=clip(ctx.inbound.text.strip(), 4000),
            )
        )
        ctx.say(ctx._("Noted. Add more, or press Done."), _done_button(ctx, pending.report_id))
    elif isinstance(ctx.upload, StoredImage):
        await _attach_photo(ctx, pending.report_id, ctx.upload)
    else:
        ctx.say(
            ctx._("Please send text or photos, then press Done."),
            _done_button(ctx, pending.report_id),
        )


async def _attach_photo(ctx: FlowContext, report_id: int, stored: StoredImage) -> None:
    photos = await photos_of(ctx.session, report_id)
    if len(photos) >= MAX_REPORT_PHOTOS:
        ctx.say(ctx._("This report has all the photos it can take."))
        return
    await remember_upload(ctx, stored)
    if stored.sha256 not in photos:
        ctx.session.add(
            ReportPhoto(report_id=report_id, position=len(photos), sha256=stored.sha256)
        )
    ctx.say(
        ctx._("Photo received. Add more, or press Done."),
        _done_button(ctx, report_id),
        coalesce_key=f"answer:{ctx.inbound.chat_id}",
    )


async def _finish(ctx: FlowContext, report_id: int) -> None:
    assert ctx.person.id is not None
    config = ctx.services.config
    rules = Rules(
        approvals_required=config.approvals_required, claim_duration=config.claim_duration
    )
    outcome = await transition(
        ctx.session, report_id, Action.ANSWER, Actor(ctx.person, ctx.roles), ctx.now, rules=rules
    )
    if not outcome.ok or outcome.report is None:
        ctx.say(ctx._("That question has already been answered or closed. Thank you!"))
        return
    await clear_input(ctx.session, ctx.person.id, ctx.inbound.chat_id)
    await refresh_cards(ctx.session, ctx.services, outcome.report, ctx.now)
    await post_cards(ctx.session, ctx.services, outcome.report, ctx.now)
    ctx.say(
        fmt(
            ctx._("Thank you! Your answer about {code} was sent to the council."),
            code=outcome.report.code,
        ),
        main_menu(ctx),
    )
