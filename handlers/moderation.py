"""Moderation in chat: the card's buttons, the prompts they open, /queue and /history.

Card buttons carry `m:<action>:<report id>:<content version>[:<extra>]` and no
authority: every press goes through `models.moderation`, which checks the presser's
role, the report's state and the card's freshness on the server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog

from handlers import notify
from handlers.basics import main_menu
from handlers.cards import Target, format_age, person_name, refresh_cards, send_card
from handlers.choices import match_choice
from handlers.context import FlowContext, Translator
from handlers.labels import ACTION_LABELS, GROUP_LABELS, STATUS_LABELS
from handlers.messages import Button
from handlers.text import N_, clip, fmt
from models.moderation import (
    MODERATORS,
    Action,
    Actor,
    Outcome,
    Refusal,
    Rules,
    check,
    history,
    transition,
)
from models.movements import movement_by_slug, slug_for
from models.pending import clear_input, expect_input
from models.queue import QueueFilter, queue_page
from models.reports import report_by_code
from models.tables import (
    AuditEntry,
    NomineeGroup,
    PendingInput,
    Report,
    ReportNote,
    ReportStatus,
)

log = structlog.get_logger(__name__)

_Handler = Callable[[FlowContext, int, int, list[str]], Awaitable[None]]

REJECT_PRESETS = (
    N_("The facts could not be verified"),
    N_("Not a good deed within the scope of the movement"),
    N_("Not enough information, and the reporter cannot be reached"),
    N_("Inappropriate content"),
)
PROMPTS = {
    "reject": N_("Type the reason for rejecting {code} in your next message:"),
    "ask": N_("Type your question for the reporter of {code} in your next message:"),
    "duplicate": N_("Type the code of the report that {code} duplicates in your next message:"),
    "name": N_(
        "Type the nominee's name as it should be published for {code} in your next message, "
        "or a single dash (-) to keep it:"
    ),
    "headline": N_(
        "Type the headline for publishing {code} in your next message, or a single dash (-) "
        "to keep it:"
    ),
    "story": N_(
        "Type the story of {code} as it should be published in your next message, or a "
        "single dash (-) to keep it:"
    ),
}
"""Worded for every channel: the web chat and Zalo have no reply-to (in a Telegram group the
prompt forces a reply, so the answer reaches the bot despite privacy mode)."""
EDIT_STEPS = {"name": "public_name", "headline": "headline", "story": "public_story"}
"""The prompts of the Edit button, in order, and the published field each one sets."""
EDIT_SHOWN_CHARS = 3000
PROMPT_LIMITS = {
    "reject": 1000,
    "ask": 1000,
    "duplicate": 40,
    "name": 200,
    "headline": 200,
    "story": 3000,
}
"""Longest text each prompt accepts (the columns' sizes, with room to spare)."""
COMMAND_EXAMPLES = {
    Action.REJECT: N_("the facts could not be verified"),
    Action.ASK: N_("who else saw it?"),
}
"""What follows the code in the example of a typed command's usage."""
EXAMPLE_CODE = "GS-2026-000123"


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdecimal() and len(text) < 12


def _actor(ctx: FlowContext) -> Actor:
    return Actor(ctx.person, ctx.roles)


def _rules(ctx: FlowContext) -> Rules:
    config = ctx.services.config
    return Rules(approvals_required=config.approvals_required, claim_duration=config.claim_duration)


# ---- buttons ----------------------------------------------------------------------------


async def on_button(ctx: FlowContext, payload: str) -> None:
    parts = payload.split(":")
    if len(parts) < 4 or not _is_number(parts[2]) or not _is_number(parts[3]):
        ctx.say(ctx._("That button is from an earlier message and no longer works."), toast=True)
        return
    code, report_id, version, extra = parts[1], int(parts[2]), int(parts[3]), parts[4:]
    if code == "q":
        await show_queue(ctx, page=report_id, where=_filter_from(version, extra))
        return
    handler = _BUTTONS.get(code)
    if handler is None:
        ctx.say(ctx._("That button is from an earlier message and no longer works."), toast=True)
        return
    await handler(ctx, report_id, version, extra)


async def _approve(ctx: FlowContext, report_id: int, version: int, _extra: list[str]) -> None:
    outcome = await _apply(ctx, report_id, Action.APPROVE, version)
    if outcome is None:
        return
    report = outcome.report
    assert report is not None
    if report.status == ReportStatus.APPROVED:
        await notify.tell_reporter(
            ctx.session, ctx.services, report, notify.approved(ctx.services, report, ctx.now)
        )
        ctx.say(fmt(ctx._("✅ {code} approved."), code=report.code), toast=True)
    else:
        ctx.say(
            fmt(
                ctx._("👍 Your approval of {code} is recorded ({count}/{required})."),
                code=report.code,
                count=outcome.approvals,
                required=ctx.services.config.approvals_required,
            ),
            toast=True,
        )


async def _claim(ctx: FlowContext, report_id: int, version: int, _extra: list[str]) -> None:
    outcome = await _apply(ctx, report_id, Action.CLAIM, version)
    if outcome is not None and outcome.report is not None:
        minutes = int(ctx.services.config.claim_duration.total_seconds() // 60)
        ctx.say(
            fmt(
                ctx._("🔒 {code} is yours for {minutes} minutes."),
                code=outcome.report.code,
                minutes=minutes,
            ),
            toast=True,
        )


async def _reject_menu(ctx: FlowContext, report_id: int, version: int, _extra: list[str]) -> None:
    report = await _checked(ctx, report_id, Action.REJECT, version)
    if report is None:
        return
    _ = ctx._
    key = f"{report_id}:{version}"
    rows = [[Button(clip(_(text), 60), f"m:rr:{key}:{i}")] for i, text in enumerate(REJECT_PRESETS)]
    rows.append([Button(_("✍️ Another reason"), f"m:ro:{key}")])
    ctx.say(fmt(_("Why is {code} rejected?"), code=report.code), rows)


async def _reject_preset(ctx: FlowContext, report_id: int, version: int, extra: list[str]) -> None:
    index = int(extra[0]) if extra and _is_number(extra[0]) else -1
    if not 0 <= index < len(REJECT_PRESETS):
        await _reject_menu(ctx, report_id, version, [])
        return
    await _reject(ctx, report_id, version, ctx._(REJECT_PRESETS[index]))


async def _reject(ctx: FlowContext, report_id: int, version: int, reason: str) -> None:
    outcome = await _apply(
        ctx, report_id, Action.REJECT, version, reason, changes={"reason": reason}
    )
    if outcome is None or outcome.report is None:
        return
    await notify.tell_reporter(
        ctx.session, ctx.services, outcome.report, notify.rejected(outcome.report, reason)
    )
    ctx.say(fmt(ctx._("❌ {code} rejected."), code=outcome.report.code), toast=True)


def _prompting(action: str, gate: Action) -> _Handler:
    """A button that asks the moderator to type something (reason, question, code, text)."""

    async def handler(ctx: FlowContext, report_id: int, version: int, _extra: list[str]) -> None:
        report = await _checked(ctx, report_id, gate, version)
        if report is None:
            return
        await _prompt(ctx, action, report, version)

    return handler


async def _prompt(
    ctx: FlowContext,
    action: str,
    report: Report,
    version: int,
    data: dict[str, object] | None = None,
) -> None:
    """Ask for the text of `action`; an edit step offers the current text to edit."""
    assert ctx.person.id is not None and report.id is not None
    await expect_input(
        ctx.session, ctx.person.id, ctx.inbound.chat_id, action, report.id, version, data
    )
    text = fmt(ctx._(PROMPTS[action]), code=report.code)
    current = _published(report, action)
    if current and not ctx.capabilities.text_prefill:
        text += "\n\n" + fmt("<code>{current}</code>", current=clip(current, EDIT_SHOWN_CHARS))
    prefill = current if ctx.capabilities.text_prefill else ""
    ctx.say(text, force_reply=True, prefill=prefill)


def _published(report: Report, action: str) -> str:
    """What would be published now for the edit step `action` ("" for other prompts)."""
    if action == "name":
        return report.public_name or report.nominee_name
    if action == "headline":
        return report.headline or ""
    if action == "story":
        return report.public_story or report.story
    return ""


async def _history(ctx: FlowContext, report_id: int, _version: int, _extra: list[str]) -> None:
    report = await ctx.session.get(Report, report_id)
    if report is None or not _may_moderate(ctx):
        await _refuse(
            ctx,
            Outcome(report, Refusal.NOT_FOUND if report is None else Refusal.NOT_ALLOWED),
            Action.EDIT,
        )
        return
    await _say_history(ctx, report)


async def _open(ctx: FlowContext, report_id: int, _version: int, _extra: list[str]) -> None:
    report = await ctx.session.get(Report, report_id)
    if report is None or not _may_moderate(ctx):
        ctx.say(ctx._("Only moderators can do this."), toast=True)
        return
    target = Target(ctx.inbound.channel, ctx.inbound.chat_id, ctx.person.locale)
    await send_card(ctx.session, ctx.services, report, target, ctx.now)


# ---- typed answers to prompts --------------------------------------------------------------


async def on_pending(ctx: FlowContext, pending: PendingInput) -> None:
    """The moderator's text after a prompt: a reason, a question, a code or publication text."""
    text = " ".join(ctx.inbound.text.split()) if pending.action != "story" else ctx.inbound.text
    text = text.strip()
    if not text:
        ctx.say(ctx._("Please type some text in your next message."), force_reply=True)
        return
    if _too_long(ctx, pending.action, text):
        return
    assert ctx.person.id is not None
    await clear_input(ctx.session, ctx.person.id, ctx.inbound.chat_id)
    report_id, version = pending.report_id, pending.report_version
    if pending.action == "reject":
        await _reject(ctx, report_id, version, text)
    elif pending.action == "ask":
        await _ask(ctx, report_id, version, text)
    elif pending.action == "duplicate":
        await _mark_duplicate(ctx, report_id, version, text)
    else:
        await _edit_step(ctx, pending, text)


async def _edit_step(ctx: FlowContext, pending: PendingInput, text: str) -> None:
    """One answer of the Edit button's prompts; the last one saves the published fields."""
    changes = dict(pending.data)
    if text != "-":
        changes[EDIT_STEPS[pending.action]] = text
    steps = list(EDIT_STEPS)
    following = steps[steps.index(pending.action) + 1 :]
    report = await ctx.session.get(Report, pending.report_id)
    if following and report is not None:
        await _prompt(ctx, following[0], report, pending.report_version, changes)
        return
    if not changes:
        ctx.say(ctx._("Nothing to change."))
        return
    outcome = await _apply(
        ctx, pending.report_id, Action.EDIT, pending.report_version, changes=changes
    )
    if outcome is not None and outcome.report is not None:
        ctx.say(
            fmt(
                ctx._(
                    "✏️ {code}: the text for publication is saved; the reporter's original is kept."
                ),
                code=outcome.report.code,
            )
        )


def _too_long(ctx: FlowContext, action: str, text: str) -> bool:
    """Say so when `text` is longer than the prompt of `action` accepts."""
    limit = PROMPT_LIMITS.get(action, 1000)
    if len(text) <= limit:
        return False
    ctx.say(
        fmt(
            ctx._("That is too long: at most {max} characters, please (yours has {count})."),
            max=limit,
            count=len(text),
        ),
        force_reply=True,
    )
    return True


async def _ask(ctx: FlowContext, report_id: int, version: int, text: str) -> None:
    outcome = await _apply(ctx, report_id, Action.ASK, version, text)
    if outcome is None or outcome.report is None:
        return
    assert ctx.person.id is not None
    ctx.session.add(
        ReportNote(report_id=report_id, author_id=ctx.person.id, kind="question", text=text)
    )
    await notify.tell_reporter(
        ctx.session, ctx.services, outcome.report, notify.question(outcome.report, text)
    )
    await refresh_cards(ctx.session, ctx.services, outcome.report, ctx.now)
    ctx.say(
        fmt(
            ctx._("❓ Your question about {code} was sent to the reporter."),
            code=outcome.report.code,
        )
    )


async def _mark_duplicate(ctx: FlowContext, report_id: int, version: int, code: str) -> None:
    original = await report_by_code(ctx.session, code)
    if original is None or original.id == report_id:
        ctx.say(fmt(ctx._("There is no other report with the code {code}."), code=clip(code, 40)))
        return
    if original.status in (ReportStatus.DUPLICATE, ReportStatus.REJECTED, ReportStatus.WITHDRAWN):
        ctx.say(
            fmt(
                ctx._("{code} cannot be the original: it is itself {status}."),
                code=original.code,
                status=ctx._(STATUS_LABELS[ReportStatus(original.status)]),
            )
        )
        return
    outcome = await _apply(
        ctx,
        report_id,
        Action.DUPLICATE,
        version,
        original.code,
        changes={"duplicate_of_id": original.id},
    )
    if outcome is None or outcome.report is None:
        return
    await notify.tell_reporter(
        ctx.session, ctx.services, outcome.report, notify.duplicate(outcome.report, original)
    )
    ctx.say(
        fmt(
            ctx._("🔁 {code} marked as a duplicate of {original}."),
            code=outcome.report.code,
            original=original.code,
        )
    )


# ---- typed commands: /duyet, /tuchoi, /bosung (and /approve, /reject, /askmore) ------------
#
# The same decisions as the card's buttons, for every channel, and the way to decide on
# channels without buttons. A command names the report by its code and acts on the report
# as it stands (its current content version); without a reason or a question it opens the
# same prompt as the button.


async def approve_command(ctx: FlowContext) -> None:
    target = await _command_target(ctx, Action.APPROVE)
    if target is not None:
        report, _rest = target
        assert report.id is not None
        await _approve(ctx, report.id, report.content_version, [])


async def reject_command(ctx: FlowContext) -> None:
    await _decide_with_text(ctx, "reject", Action.REJECT, _reject)


async def ask_command(ctx: FlowContext) -> None:
    await _decide_with_text(ctx, "ask", Action.ASK, _ask)


async def _decide_with_text(
    ctx: FlowContext,
    prompt: str,
    action: Action,
    decide: Callable[[FlowContext, int, int, str], Awaitable[None]],
) -> None:
    target = await _command_target(ctx, action)
    if target is None:
        return
    report, text = target
    assert report.id is not None
    if not text:
        await _prompting(prompt, action)(ctx, report.id, report.content_version, [])
    elif not _too_long(ctx, prompt, text):
        await decide(ctx, report.id, report.content_version, text)


async def _command_target(ctx: FlowContext, action: Action) -> tuple[Report, str] | None:
    """The report the command names, and the text after its code (spaces tidied)."""
    if not _may_moderate(ctx):
        await _refuse(ctx, Outcome(None, Refusal.NOT_ALLOWED), action)
        return None
    code, _, rest = ctx.inbound.args.strip().partition(" ")
    if not code:
        example = COMMAND_EXAMPLES.get(action)
        usage = f"/{ctx.inbound.command} {EXAMPLE_CODE}"
        ctx.say(
            fmt(
                ctx._("Send the report's code after the command, for example: {example}"),
                example=f"{usage} {ctx._(example)}" if example else usage,
            )
        )
        return None
    report = await _report_named(ctx, code)
    return None if report is None else (report, " ".join(rest.split()))


async def _report_named(ctx: FlowContext, code: str) -> Report | None:
    """The report with `code`; when there is none, the moderator is told so."""
    report = await report_by_code(ctx.session, code)
    if report is None:
        ctx.say(fmt(ctx._("There is no report with the code {code}."), code=clip(code, 40)))
    return report


# ---- the rules applied, and refusals explained ----------------------------------------------


async def _apply(
    ctx: FlowContext,
    report_id: int,
    action: Action,
    version: int,
    detail: str = "",
    changes: dict[str, object] | None = None,
) -> Outcome | None:
    """Run the transition; refresh the cards when it happened, explain when it did not."""
    outcome = await transition(
        ctx.session,
        report_id,
        action,
        _actor(ctx),
        ctx.now,
        rules=_rules(ctx),
        content_version=version,
        detail=detail,
        changes=changes,
    )
    if not outcome.ok:
        await _refuse(ctx, outcome, action)
        return None
    assert outcome.report is not None
    await refresh_cards(ctx.session, ctx.services, outcome.report, ctx.now)
    return outcome


async def _checked(ctx: FlowContext, report_id: int, action: Action, version: int) -> Report | None:
    outcome = await check(
        ctx.session, report_id, action, _actor(ctx), ctx.now, content_version=version
    )
    if not outcome.ok:
        await _refuse(ctx, outcome, action)
        return None
    return outcome.report


async def _refuse(ctx: FlowContext, outcome: Outcome, action: Action) -> None:
    _ = ctx._
    refusal = outcome.refusal
    code = outcome.report.code if outcome.report else "?"
    name = person_name(outcome.other)
    if refusal is Refusal.NOT_ALLOWED:
        log.warning(
            "moderation.refused",
            person_id=ctx.person.id,
            action=str(action),
            update_id=ctx.inbound.update_id,
        )
        text = _("Only moderators can do this.")
    elif refusal is Refusal.OWN_REPORT:
        text = _("You cannot moderate a report you sent yourself.")
    elif refusal is Refusal.ALREADY_DECIDED:
        status = _(STATUS_LABELS[ReportStatus(outcome.report.status)]) if outcome.report else ""
        text = fmt(
            _("{code} is already {status} (by {name})."), code=code, status=status, name=name
        )
    elif refusal is Refusal.OUTDATED:
        text = fmt(_("This card of {code} is out of date: use the newest card."), code=code)
    elif refusal is Refusal.CLAIMED_BY_OTHER:
        text = fmt(_("{name} is working on {code} right now."), name=name, code=code)
    elif refusal is Refusal.ALREADY_APPROVED:
        text = fmt(
            _("You have already approved {code}: another moderator must approve too."), code=code
        )
    else:
        text = _("That report does not exist.")
    ctx.say(text, toast=True)


def _may_moderate(ctx: FlowContext) -> bool:
    return bool(ctx.roles & MODERATORS)


# ---- /queue and /history -------------------------------------------------------------------


def _filter_from(commune: int, extra: list[str]) -> QueueFilter:
    """The filter carried by a pager button: `m:q:<page>:<commune>:<group>:<movement>`."""
    group = extra[0] if extra and extra[0] in NomineeGroup.__members__.values() else None
    movement = int(extra[1]) if len(extra) > 1 and _is_number(extra[1]) else 0
    return QueueFilter(commune_code=commune or None, group=group, movement_id=movement or None)


async def queue_command(ctx: FlowContext) -> None:
    await show_queue(ctx, page=0, where=await _parse_filter(ctx, ctx.inbound.args))


async def _parse_filter(ctx: FlowContext, args: str) -> QueueFilter:
    """`/queue dan-van-kheo` by movement, `/queue nong dan` by group, `/queue dong dang`
    by commune."""
    if not args.strip():
        return QueueFilter()
    movement = await movement_by_slug(ctx.session, slug_for(args))
    if movement is not None:
        return QueueFilter(movement_id=movement.id)
    groups = [[Button(ctx._(label), str(group)) for group, label in GROUP_LABELS.items()]]
    group = match_choice(args, groups)
    if group is not None:
        return QueueFilter(group=group)
    communes = ctx.services.communes.search(args, limit=1)
    return QueueFilter(commune_code=communes[0].code if communes else -1)


async def show_queue(ctx: FlowContext, page: int, where: QueueFilter) -> None:
    _ = ctx._
    if not _may_moderate(ctx):
        ctx.say(_("Only moderators can do this."), toast=True)
        return
    size = ctx.services.config.queue_page_size
    reports, more = await queue_page(ctx.session, page, size, where)
    if not reports:
        ctx.say(_("No report is waiting. 🎉") if page == 0 else _("No more reports."))
        return
    target = ctx.services.config.moderation_target
    lines = [fmt(_("<b>Waiting for review</b> (page {page})"), page=page + 1)]
    rows: list[list[Button]] = []
    for report in reports:
        age = ctx.now - report.created_at
        late = "⏰ " if age > target else ""
        lines.append(
            fmt(
                "{late}<code>{code}</code> · {age} · {name} · {commune}",
                late=late,
                code=report.code,
                age=format_age(_, age),
                name=clip(report.nominee_name, 30),
                commune=report.commune_name,
            )
        )
        rows.append(
            [
                Button(
                    fmt(_("Open {code}"), code=report.code),
                    f"m:op:{report.id}:{report.content_version}",
                )
            ]
        )
    suffix = f"{where.commune_code or 0}:{where.group or ''}:{where.movement_id or 0}"
    nav = []
    if page > 0:
        nav.append(Button(_("◀ Newer"), f"m:q:{page - 1}:{suffix}"))
    if more:
        nav.append(Button(_("Older ▶"), f"m:q:{page + 1}:{suffix}"))
    if nav:
        rows.append(nav)
    ctx.say("\n".join(lines), rows)


async def history_command(ctx: FlowContext) -> None:
    _ = ctx._
    if not _may_moderate(ctx):
        ctx.say(_("Only moderators can do this."))
        return
    code = ctx.inbound.args.strip()
    if not code:
        ctx.say(
            fmt(
                _("Send the report's code after the command, for example: {example}"),
                example=f"/{ctx.inbound.command} {EXAMPLE_CODE}",
            )
        )
        return
    report = await _report_named(ctx, code)
    if report is not None:
        await _say_history(ctx, report)


async def _say_history(ctx: FlowContext, report: Report) -> None:
    _ = ctx._
    assert report.id is not None
    lines = [
        fmt(_("<b>History of {code}</b>"), code=report.code),
        fmt(_("{time} · submitted"), time=_local(ctx, report.created_at)),
    ]
    for entry, actor in await history(ctx.session, report.id):
        if actor is not None and actor.id == report.reporter_id:
            who = _("the reporter")  # never named here, even when the report is not anonymous
        elif actor is not None:
            who = actor.display_name or f"{actor.channel}:{actor.external_id}"
        else:
            who = _("automatic")
        lines.append(
            fmt(
                "{time} · {who} · {action}",
                time=_local(ctx, entry.created_at),
                who=who,
                action=_history_action(_, entry),
            )
        )
    ctx.say("\n".join(lines), main_menu(ctx) if not ctx.inbound.in_group else None)


def _history_action(_: Translator, entry: AuditEntry) -> str:
    """An audit entry in the moderator's words ("approval (1/2): waiting → approved · …"),
    as plain text: the caller escapes it."""
    name, _space, count = entry.action.partition(" ")
    if name == "refused":
        attempted = entry.detail.partition(":")[0]
        return _("refused, not allowed: {action}").format(action=_action_label(_, attempted))
    text = f"{_action_label(_, name)} {count}".rstrip()
    if entry.from_status and entry.to_status:
        text += f": {_status_label(_, entry.from_status)} → {_status_label(_, entry.to_status)}"
    return text + (f" · {clip(entry.detail, 200)}" if entry.detail else "")


def _action_label(_: Translator, action: str) -> str:
    return _(ACTION_LABELS[action]) if action in ACTION_LABELS else action


def _status_label(_: Translator, status: str) -> str:
    known = status in ReportStatus.__members__.values()
    return _(STATUS_LABELS[ReportStatus(status)]) if known else status


def _local(ctx: FlowContext, moment: datetime) -> str:
    return moment.astimezone(ctx.services.config.timezone).strftime("%d/%m/%Y %H:%M")


_BUTTONS: dict[str, _Handler] = {
    "ap": _approve,
    "cl": _claim,
    "rj": _reject_menu,
    "rr": _reject_preset,
    "ro": _prompting("reject", Action.REJECT),
    "aq": _prompting("ask", Action.ASK),
    "du": _prompting("duplicate", Action.DUPLICATE),
    "ed": _prompting("name", Action.EDIT),
    "hi": _history,
    "op": _open,
}
