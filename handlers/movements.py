"""Emulation movements in chat: everyone reads them; administrators create and edit them.

Creation is guided, one question per field (the same fields as the YAML import of
`guongsang movement import`); editing shows the summary and changes one field at a time.
Saving (re)schedules the movement's announcements: launch, reminders, reviews.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from pydantic import ValidationError

from handlers import report
from handlers.admin import is_admin
from handlers.broadcasting import schedule_movement
from handlers.context import FlowContext
from handlers.labels import GROUP_LABELS
from handlers.messages import Button
from handlers.publications import movement_lines
from handlers.text import N_, clip, esc, fmt
from models.folding import fold
from models.movements import (
    DateConflict,
    MovementSpec,
    current_and_coming,
    date_conflicts,
    movement_by_slug,
    save_movement,
    slug_for,
)
from models.tables import Movement, NomineeGroup

FLOW = "movement"
SUMMARY = "summary"
EDIT = "edit"

FIELDS: dict[str, tuple[str, bool]] = {
    "name": (N_("The movement's full name?"), True),
    "short_name": (N_("A short, memorable name (it also makes the link to the movement)?"), True),
    "slogan": (N_("Its slogan?"), False),
    "description": (N_("A description: what is it for, who takes part?"), False),
    "criteria": (
        N_(
            "The concrete criteria? Type them one per line or separated by semicolons (;), "
            'or send them one message each; then press Done (or type "xong").'
        ),
        True,
    ),
    "starts_on": (N_("Start date (DD/MM/YYYY)?"), True),
    "ends_on": (N_("End date (DD/MM/YYYY)?"), True),
    "target_groups": (N_("Which groups is it for? Press each, then Done (none: everyone)."), False),
    "interim_review_on": (N_("Date of the interim review, sơ kết (DD/MM/YYYY)?"), False),
    "final_review_on": (N_("Date of the final review, tổng kết (DD/MM/YYYY)?"), False),
    "reminders": (N_("Reminder dates, separated by commas (DD/MM/YYYY, …)?"), False),
}
"""Each field's question and whether it is required, in the order they are asked."""
FIELD_LABELS: dict[str, str] = {
    "name": N_("Name"),
    "short_name": N_("Short name"),
    "slogan": N_("Slogan"),
    "description": N_("Description"),
    "criteria": N_("Criteria"),
    "starts_on": N_("Start date"),
    "ends_on": N_("End date"),
    "target_groups": N_("Groups"),
    "interim_review_on": N_("Interim review"),
    "final_review_on": N_("Final review"),
    "reminders": N_("Reminders"),
}
DATE_FIELDS = ("starts_on", "ends_on", "interim_review_on", "final_review_on")
DATE_NAMES: dict[str, str] = {
    "starts_on": N_("the start date"),
    "ends_on": N_("the end date"),
    "interim_review_on": N_("the interim review"),
    "final_review_on": N_("the final review"),
    "reminders": N_("the reminder"),
}
"""The dates as named inside a sentence, when one conflicts with another."""
CONFLICTS = {
    "before": N_("Not possible: {field} ({day}) must not be before {other} ({other_day})."),
    "after": N_("Not possible: {field} ({day}) must not be after {other} ({other_day})."),
}
CRITERIA_LIMIT = 20
DONE_WORDS = frozenset({"xong", "done"})
TEXT_LIMITS = {"name": 256, "short_name": 64, "slogan": 256, "description": 4000}


# ---- everyone ---------------------------------------------------------------------------


async def list_movements(ctx: FlowContext) -> None:
    today = ctx.now.astimezone(ctx.services.config.timezone).date()
    movements = await current_and_coming(ctx.session, today)
    if not movements:
        ctx.say(ctx._("No emulation movement is running or planned at the moment."))
        return
    ctx.say(ctx._("<b>Emulation movements</b>"))
    for movement in movements:
        buttons = [[Button(ctx._("ℹ️ Details"), f"mv:i:{movement.id}")]]
        if movement.starts_on <= today:
            label = ctx._("📝 Report for {name}").format(name=movement.name)
            buttons.insert(0, [Button(label, f"mv:r:{movement.id}")])
        ctx.say("\n".join(movement_lines(movement, ctx._, full=False)), buttons)


async def on_button(ctx: FlowContext, payload: str) -> None:
    """mv:i:<id> details · mv:r:<id> report for it."""
    _, action, raw_id = ([*payload.split(":", 2), "", ""])[:3]
    movement = await ctx.session.get(Movement, int(raw_id)) if raw_id.isdigit() else None
    if movement is None:
        ctx.say(ctx._("That button is from an earlier message and no longer works."))
        return
    if action == "r":
        await report_for(ctx, movement)
    else:
        lines = movement_lines(movement, ctx._, full=True)
        lines += ["", fmt(ctx._("Link: /start movement_{slug}"), slug=movement.slug)]
        ctx.say("\n".join(lines))


async def report_for(ctx: FlowContext, movement: Movement) -> None:
    today = ctx.now.astimezone(ctx.services.config.timezone).date()
    if not movement.starts_on <= today <= movement.ends_on:
        ctx.say(
            fmt(
                ctx._("The movement {name} runs from {start} to {end}; it is not open now."),
                name=movement.name,
                start=movement.starts_on.strftime("%d/%m/%Y"),
                end=movement.ends_on.strftime("%d/%m/%Y"),
            )
        )
        return
    await report.start(ctx, movement)


async def deep_link(ctx: FlowContext, slug: str) -> None:
    """`/start movement_<slug>`: a report for that movement."""
    movement = await movement_by_slug(ctx.session, slug.lower())
    if movement is None:
        ctx.say(ctx._("I don't know that movement. Here are the current ones:"))
        await list_movements(ctx)
        return
    await report_for(ctx, movement)


# ---- administrators ---------------------------------------------------------------------


async def new_movement(ctx: FlowContext) -> None:
    """/newmovement: the guided creation."""
    if not is_admin(ctx):
        return
    state = ctx.conversation
    state.flow, state.step, state.data = FLOW, "name", {"spec": {}, "editing": False}
    _ask(ctx, "name")


async def edit_movement(ctx: FlowContext) -> None:
    """/editmovement <slug>: the summary, from which any field can be changed."""
    if not is_admin(ctx):
        return
    movement = await movement_by_slug(ctx.session, ctx.inbound.args.strip().lower())
    if movement is None:
        ctx.say(ctx._("Usage: /editmovement short-name (see /movements)"))
        return
    spec = movement.model_dump(include=set(MovementSpec.model_fields), mode="json")
    state = ctx.conversation
    state.flow, state.step = FLOW, SUMMARY
    state.data = {"spec": spec, "editing": True, "slug": movement.slug}
    _show_summary(ctx)


async def on_admin_button(ctx: FlowContext, payload: str) -> None:
    """ma:skip · ma:g:<group> · ma:gdone · ma:save · ma:edit · ma:f:<field> · ma:cancel."""
    if not is_admin(ctx):
        return
    state = ctx.conversation
    if state.flow != FLOW:
        ctx.say(ctx._("That button is from an earlier message and no longer works."))
        return
    action = payload.removeprefix("ma:")
    spec: dict[str, Any] = state.data["spec"]
    if action == "cancel":
        state.flow, state.step, state.data = "", "", {}
        ctx.say(ctx._("Cancelled. Nothing was saved."))
    elif action == "skip" and state.step in FIELDS and not FIELDS[state.step][1]:
        spec.pop(state.step, None)
        _next(ctx)
    elif action.startswith("g:") and state.step == "target_groups":
        groups = set(spec.get("target_groups", []))
        groups ^= {action[2:]} & {g.value for g in NomineeGroup}
        spec["target_groups"] = sorted(groups)
        _ask(ctx, "target_groups")
    elif action == "gdone" and state.step == "target_groups":
        _next(ctx)
    elif action == "cdone" and state.step == "criteria":
        _finish_criteria(ctx)
    elif action == "edit":
        state.step = EDIT
        rows = [[Button(ctx._(FIELD_LABELS[f]), f"ma:f:{f}")] for f in FIELDS]
        ctx.say(ctx._("What would you like to change?"), rows)
    elif action.startswith("f:") and action[2:] in FIELDS:
        state.data.pop("new_criteria", None)
        state.step = action[2:]
        _ask(ctx, state.step)
    elif action == "save" and state.step == SUMMARY:
        await _save(ctx)
    else:
        ctx.say(ctx._("That button is from an earlier message and no longer works."))


async def on_input(ctx: FlowContext) -> None:
    """The administrator's answer to the current field's question (checked again each time)."""
    if not is_admin(ctx):
        ctx.conversation.flow, ctx.conversation.step, ctx.conversation.data = "", "", {}
        return
    state = ctx.conversation
    field = state.step
    if field not in FIELDS or field == "target_groups":
        ctx.say(ctx._("Please choose one of the options below."))
        if field in FIELDS:
            _ask(ctx, field)
        else:
            _show_summary(ctx)
        return
    text = ctx.inbound.text.strip()
    if field == "criteria" and text:
        _take_criteria(ctx, text)
        return
    value, problem = _parse(ctx, field, text)
    if problem:
        ctx.say(problem)
        _ask(ctx, field)
        return
    state.data["spec"][field] = value
    _next(ctx)


def _parse(ctx: FlowContext, field: str, text: str) -> tuple[Any, str]:
    """The field's value from the typed text, or an explanation of what is wrong."""
    _ = ctx._
    if not text:
        return None, _("Please type an answer, or press Skip.")
    if field in DATE_FIELDS:
        day = parse_day(text)
        if day is None:
            return None, _("Please type a date like 25/12/2026.")
        return day.isoformat(), _date_problem(ctx, field, day.isoformat())
    if field == "reminders":
        days = [parse_day(part) for part in text.split(",")]
        if None in days:
            return None, _("Please type dates like 01/03/2027, 01/06/2027.")
        value = sorted({d.isoformat() for d in days if d})
        return value, _date_problem(ctx, field, value)
    if field == "short_name" and not slug_for(text):
        return None, _("Please use letters or digits in the short name.")
    limit = TEXT_LIMITS[field]
    if len(text) > limit:
        return None, fmt(_("That is too long: at most {limit} characters."), limit=limit)
    return text, ""


def _date_problem(ctx: FlowContext, field: str, value: Any) -> str:
    """What is wrong with `field` set to `value` among the movement's other dates, if anything."""
    spec = {**ctx.conversation.data["spec"], field: value}
    conflicts = [c for c in _spec_date_conflicts(spec) if field in (c.field, c.other)]
    return _conflict_text(ctx, conflicts[0]) if conflicts else ""


def _spec_date_conflicts(spec: dict[str, Any]) -> list[DateConflict]:
    """The date conflicts of a movement being written (dates as ISO strings)."""
    dates = {f: date.fromisoformat(spec[f]) if spec.get(f) else None for f in DATE_FIELDS}
    reminders = [date.fromisoformat(day) for day in spec.get("reminders") or []]
    return date_conflicts(dates, reminders)


def _conflict_text(ctx: FlowContext, conflict: DateConflict) -> str:
    return fmt(
        ctx._(CONFLICTS[conflict.relation]),
        field=ctx._(DATE_NAMES[conflict.field]),
        day=conflict.day.strftime("%d/%m/%Y"),
        other=ctx._(DATE_NAMES[conflict.other]),
        other_day=conflict.other_day.strftime("%d/%m/%Y"),
    )


def _take_criteria(ctx: FlowContext, text: str) -> None:
    """Criteria come one per line, separated by semicolons, or one message each."""
    if fold(text).strip(" .!") in DONE_WORDS:
        _finish_criteria(ctx)
        return
    items = [item.strip(" -•\t") for item in re.split(r"[\n;]", text)]
    taken: list[str] = ctx.conversation.data.setdefault("new_criteria", [])
    taken += [clip(item, 500) for item in items if item][: CRITERIA_LIMIT - len(taken)]
    listed = "\n".join(f"{n}. {item}" for n, item in enumerate(taken, 1))
    ctx.say(
        fmt(
            ctx._(
                'Criteria so far:\n{criteria}\n\nSend another one, or press Done (or type "xong").'
            ),
            criteria=listed,
        ),
        [[Button(ctx._("Done"), "ma:cdone")], [Button(ctx._("✖️ Cancel"), "ma:cancel")]],
    )


def _finish_criteria(ctx: FlowContext) -> None:
    taken = ctx.conversation.data.pop("new_criteria", [])
    if not taken:
        ctx.say(ctx._("Please type at least one criterion first."))
        _ask(ctx, "criteria")
        return
    ctx.conversation.data["spec"]["criteria"] = taken
    _next(ctx)


def parse_day(text: str) -> date | None:
    """25/12/2026, 25-12-2026, 25.12.2026, 2026-12-25, or 25/12/26 (this century)."""
    numbers = re.findall(r"\d+", text)
    if len(numbers) != 3 or any(len(n) > 4 for n in numbers):
        return None
    parts = [int(n) for n in numbers]
    day, month, year = (parts[2], parts[1], parts[0]) if len(numbers[0]) == 4 else parts
    if year < 100:
        year += 2000
    if year < 2000:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _next(ctx: FlowContext) -> None:
    """After a field: the next one while creating; the summary while editing."""
    state = ctx.conversation
    order = list(FIELDS)
    position = order.index(state.step) if state.step in order else len(order)
    if state.data.get("editing") or position + 1 >= len(order):
        state.step = SUMMARY
        state.data["editing"] = True  # from now on, a changed field returns here
        _show_summary(ctx)
        return
    state.step = order[position + 1]
    _ask(ctx, state.step)


def _ask(ctx: FlowContext, field: str) -> None:
    _ = ctx._
    question, required = FIELDS[field]
    rows: list[list[Button]] = []
    if field == "target_groups":
        chosen = set(ctx.conversation.data["spec"].get("target_groups", []))
        rows = [
            [Button(("✅ " if g.value in chosen else "") + _(label), f"ma:g:{g.value}")]
            for g, label in GROUP_LABELS.items()
        ]
        rows.append([Button(_("Done"), "ma:gdone")])
    elif field == "criteria":
        rows.append([Button(_("Done"), "ma:cdone")])
    elif not required:
        rows.append([Button(_("Skip"), "ma:skip")])
    rows.append([Button(_("✖️ Cancel"), "ma:cancel")])
    ctx.say(_(question), rows)


def _show_summary(ctx: FlowContext) -> None:
    _ = ctx._
    spec: dict[str, Any] = ctx.conversation.data["spec"]
    lines = [_("<b>Please check the movement</b>")]
    for field, label in FIELD_LABELS.items():
        lines.append(f"<b>{esc(_(label))}:</b> {esc(_display(ctx, field, spec.get(field)))}")
    ctx.say(
        "\n".join(lines),
        [
            [Button(_("💾 Save"), "ma:save")],
            [Button(_("✏️ Edit"), "ma:edit"), Button(_("✖️ Cancel"), "ma:cancel")],
        ],
    )


def _display(ctx: FlowContext, field: str, value: Any) -> str:
    if value in (None, "", []):
        return "—"
    if field in DATE_FIELDS:
        return date.fromisoformat(value).strftime("%d/%m/%Y")
    if field == "reminders":
        return ", ".join(date.fromisoformat(v).strftime("%d/%m/%Y") for v in value)
    if field == "criteria":
        return "; ".join(value)
    if field == "target_groups":
        return ", ".join(ctx._(GROUP_LABELS[NomineeGroup(g)]) for g in value)
    return clip(str(value), 300)


async def _save(ctx: FlowContext) -> None:
    state = ctx.conversation
    fields = dict(state.data["spec"])
    if state.data.get("slug"):
        fields["slug"] = state.data["slug"]
    conflicts = _spec_date_conflicts(fields)
    if conflicts:
        ctx.say(_conflict_text(ctx, conflicts[0]))
        state.step = conflicts[0].field
        _ask(ctx, state.step)
        return
    try:
        spec = MovementSpec.model_validate(fields)
    except ValidationError as error:
        missing = [str(e["loc"][0]) for e in error.errors() if e["loc"]]
        field = next((f for f in FIELDS if f in missing), None)
        ctx.say(ctx._("Something is missing or wrong; please answer this again."))
        if field is None:
            _show_summary(ctx)
            return
        state.step = field
        _ask(ctx, field)
        return
    existing = await movement_by_slug(ctx.session, spec.slug)
    if existing is not None and not state.data.get("slug"):
        ctx.say(ctx._("A movement with this short name exists already; choose another one."))
        state.step = "short_name"
        _ask(ctx, "short_name")
        return
    movement, _created = await save_movement(ctx.session, spec, ctx.now, ctx.person.id)
    scheduled = await schedule_movement(ctx.session, ctx.services, movement, ctx.now)
    state.flow, state.step, state.data = "", "", {}
    ctx.say(
        fmt(
            ctx._(
                "Saved: {name}. {count} announcements are scheduled (launch, reminders, "
                "reviews). People can report for it with /start movement_{slug}"
            ),
            name=movement.name,
            count=scheduled,
            slug=movement.slug,
        )
    )
