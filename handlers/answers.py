"""A reporter answers the council's question: text and photos, then Done.

The answer is opened with the question's "Answer" button, so that a reporter busy with a
new report never has that draft's messages taken for an answer. Outside any flow, text or
a photo answers without the button: at once when one question waits for this person;
when several do, they are kept and the reporter picks the report.
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
from models.queue import photos_of, questions_waiting
from models.tables import PendingInput, Report, ReportNote, ReportPhoto

ANSWER = "answer"
CHOOSING = "answer-which"
"""Several questions wait: what the reporter sent is kept until they pick the report."""
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
        kept = ctx.pending.data if ctx.pending and ctx.pending.action == CHOOSING else {}
        await _open_answer(ctx, outcome.report)
        if kept:
            await _keep(ctx, outcome.report, kept.get("texts", []), kept.get("photos", []))
            return
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


async def _open_answer(ctx: FlowContext, report: Report) -> None:
    """The person's next messages in this chat answer the question about `report`."""
    assert ctx.person.id is not None and report.id is not None
    await expect_input(
        ctx.session, ctx.person.id, ctx.inbound.chat_id, ANSWER, report.id, report.version
    )


async def answer_unprompted(ctx: FlowContext) -> bool:
    """Text or a photo outside any flow answers the question waiting for this person.

    Returns whether a question waits (and so took the message).
    """
    assert ctx.person.id is not None
    waiting = await questions_waiting(ctx.session, ctx.person.id)
    texts, photos = _message_parts(ctx)
    if not waiting or not (texts or photos):
        return False
    if isinstance(ctx.upload, StoredImage):
        await remember_upload(ctx, ctx.upload)
    if len(waiting) == 1:
        await _open_answer(ctx, waiting[0])
        await _keep(ctx, waiting[0], texts, photos)
        return True
    first = waiting[0]
    assert first.id is not None
    await expect_input(
        ctx.session,
        ctx.person.id,
        ctx.inbound.chat_id,
        CHOOSING,
        first.id,
        first.version,
        {"texts": texts, "photos": photos},
    )
    _ask_which(ctx, waiting)
    return True


def _message_parts(ctx: FlowContext) -> tuple[list[str], list[str]]:
    """The text and the photo of this message, as kept for an answer."""
    text = ctx.inbound.text.strip() if ctx.inbound.kind is InboundKind.TEXT else ""
    photo = ctx.upload.sha256 if isinstance(ctx.upload, StoredImage) else ""
    return ([clip(text, 4000)] if text else []), ([photo] if photo else [])


def _ask_which(ctx: FlowContext, waiting: list[Report]) -> None:
    rows = [[Button(clip(f"{r.code} · {r.nominee_name}", 60), f"a:start:{r.id}")] for r in waiting]
    ctx.say(
        ctx._("The council asked about several of your reports. Which one is this answer about?"),
        rows,
        coalesce_key=f"answer-which:{ctx.inbound.chat_id}",
    )


async def _still_choosing(ctx: FlowContext, pending: PendingInput) -> None:
    """More messages before the reporter picks the report: kept with the first ones."""
    texts, photos = _message_parts(ctx)
    if isinstance(ctx.upload, StoredImage):
        await remember_upload(ctx, ctx.upload)
    pending.data = {
        "texts": [*pending.data.get("texts", []), *texts],
        "photos": [*pending.data.get("photos", []), *photos],
    }
    ctx.session.add(pending)
    assert ctx.person.id is not None
    _ask_which(ctx, await questions_waiting(ctx.session, ctx.person.id))


async def _keep(ctx: FlowContext, report: Report, texts: list[str], photos: list[str]) -> None:
    """What the reporter sent before the answer was opened, kept as its first part."""
    assert ctx.person.id is not None and report.id is not None
    report_id = report.id
    for text in texts:
        ctx.session.add(
            ReportNote(report_id=report_id, author_id=ctx.person.id, kind="answer", text=text)
        )
    known = await photos_of(ctx.session, report_id)
    for sha256 in photos:
        if sha256 not in known and len(known) < MAX_REPORT_PHOTOS:
            ctx.session.add(ReportPhoto(report_id=report_id, position=len(known), sha256=sha256))
            known.append(sha256)
    ctx.say(
        fmt(
            ctx._(
                "This is kept as your answer about {code}. Add more, or press Done to send "
                "it to the council."
            ),
            code=report.code,
        ),
        _done_button(ctx, report_id),
    )


async def on_pending(ctx: FlowContext, pending: PendingInput) -> None:
    """A message while answering: kept with the report until the reporter presses Done."""
    assert ctx.person.id is not None
    if pending.action == CHOOSING:
        await _still_choosing(ctx, pending)
    elif ctx.inbound.kind is InboundKind.TEXT and ctx.inbound.text.strip():
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
