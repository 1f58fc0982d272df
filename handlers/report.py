"""The guided report: who, which group, where, what they did, photos, who reports, confirm.

The draft lives in `Conversation.data`; each step reads and writes it, so the flow
survives a restart at any point. Buttons carry `r:<step>:<value>`: a press that does
not match the current step (an old message, a double press) is refused, never applied.
/cancel leaves only the current step: a change begun from the summary is undone, and the
whole draft is discarded only when the person confirms it.
"""

from __future__ import annotations

import copy
import unicodedata
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum

import phonenumbers

from handlers.basics import leave_flow, main_menu
from handlers.cards import post_cards
from handlers.choices import match_choice
from handlers.context import FlowContext
from handlers.labels import GROUP_LABELS, KIND_LABELS
from handlers.messages import Button, InboundKind
from handlers.places import commune_label, offer_communes
from handlers.ports import MediaProblem, StoredImage
from handlers.text import N_, clip, esc, fmt
from handlers.uploads import remember_upload
from models.bans import is_banned
from models.movements import active_movements
from models.reports import count_reports_since, create_report
from models.tables import Movement, NomineeGroup, NomineeKind, Report, Role

FLOW = "report"
MAX_PHOTOS = 10
NAME_LIMITS = (2, 120)
STORY_LIMITS = (30, 3000)
UNIT_LIMITS = (2, 200)
CONSENT_VERSION = "2026-01"
SUMMARY_STORY_CHARS = 1500


class Step(StrEnum):
    KIND = "kind"
    NAME = "name"
    GROUP = "group"
    COMMUNE = "commune"
    STORY = "story"
    PHOTOS = "photos"
    IDENTITY = "identity"
    CONSENT = "consent"
    REPORTER_NAME = "reporter_name"
    REPORTER_PHONE = "reporter_phone"
    UNIT = "unit"
    MOVEMENT = "movement"
    SUMMARY = "summary"
    EDIT = "edit"
    RESUME = "resume"
    DISCARD = "discard"


STEP_NUMBER = {
    Step.KIND: 1,
    Step.NAME: 1,
    Step.GROUP: 2,
    Step.COMMUNE: 3,
    Step.STORY: 4,
    Step.PHOTOS: 5,
    Step.IDENTITY: 6,
    Step.CONSENT: 6,
    Step.REPORTER_NAME: 6,
    Step.REPORTER_PHONE: 6,
    Step.UNIT: 6,
    Step.SUMMARY: 7,
}
TOTAL_STEPS = 7

EDITABLE: dict[str, tuple[Step, str]] = {
    "nominee": (Step.KIND, N_("Person or collective, and name")),
    "group": (Step.GROUP, N_("Group")),
    "commune": (Step.COMMUNE, N_("Commune or ward")),
    "story": (Step.STORY, N_("Story")),
    "photos": (Step.PHOTOS, N_("Photos")),
    "reporter": (Step.IDENTITY, N_("Your name and phone")),
    "unit": (Step.UNIT, N_("Your unit")),
    "movement": (Step.MOVEMENT, N_("Emulation movement")),
}

UNSUPPORTED_NAMES = {
    "sticker": N_("a sticker"),
    "video": N_("a video"),
    "voice": N_("a voice message"),
    "audio": N_("an audio file"),
    "animation": N_("an animation"),
    "video_note": N_("a video message"),
    "location": N_("a location"),
    "poll": N_("a poll"),
}

CONSENT_TEXT = N_(
    "<b>Consent to the processing of personal data</b> (version {version})\n"
    "If you give your name and phone number, the provincial Emulation and Commendation "
    "Council will keep them with this report, so that its moderators can contact you to "
    "check the facts. They are never published or broadcast. You can ask to delete them "
    "at any time. Under the Law on Personal Data Protection, we need your explicit "
    "consent.\n\nDo you agree?"
)


# ---- entry points ---------------------------------------------------------------------


async def start(ctx: FlowContext, movement: Movement | None = None) -> None:
    """Begin a report (for `movement`, from its deep link), or offer to continue one."""
    state = ctx.conversation
    if state.flow == FLOW and movement is not None:
        _attach_movement(ctx, movement.id, movement.name)
    if state.flow == FLOW and state.step != Step.KIND:
        if state.step not in (Step.RESUME, Step.DISCARD):
            state.data["resume_step"] = state.step
        await _go(ctx, Step.RESUME)
        return
    if await _refused_reporter(ctx) or await _daily_limit_reached(ctx):
        return
    state.flow, state.data = FLOW, {"officer": Role.OFFICER in ctx.roles}
    if movement is not None:
        _attach_movement(ctx, movement.id, movement.name)
    await _go(ctx, Step.KIND)


def _attach_movement(ctx: FlowContext, movement_id: int | None, name: str) -> None:
    ctx.conversation.data.update(movement_id=movement_id, movement_name=name)
    ctx.say(fmt(ctx._("🚩 This report is for the movement {name}."), name=name))


async def on_button(ctx: FlowContext, payload: str) -> None:
    """A button press `r:<step>:<value>`, applied only if it belongs to the current step."""
    _, step, value = ([*payload.split(":", 2), "", ""])[:3]
    state = ctx.conversation
    if state.flow != FLOW or step != state.step:
        ctx.say(ctx._("That button is from an earlier message and no longer works."))
        if state.flow == FLOW:
            await _prompt(ctx, Step(state.step))
        return
    handler = _CHOICE_HANDLERS.get(Step(step))
    if handler is None:
        await _prompt(ctx, Step(state.step))
        return
    await handler(ctx, value)


async def cancel(ctx: FlowContext) -> None:
    """/cancel: undo a change begun from the summary, or ask before discarding the draft."""
    state = ctx.conversation
    step = Step(state.step)
    if step is Step.EDIT or state.data.get("editing"):
        state.data = state.data.get("before_edit", state.data)
        text = ctx._("Change cancelled: your report is as it was before.")
        ctx.say(text, remove_keyboard=ctx.capabilities.contact_request)
        await _go(ctx, Step.SUMMARY)
    elif step is Step.DISCARD:
        await _discard(ctx, "no")
    elif step is Step.KIND:
        leave_flow(ctx, ctx._("Cancelled. Nothing was sent."))
    else:
        if step is not Step.RESUME:
            state.data["resume_step"] = step
        await _go(ctx, Step.DISCARD)


async def on_input(ctx: FlowContext) -> None:
    """Anything but a button or a command, while a report is in progress."""
    inbound = ctx.inbound
    step = Step(ctx.conversation.step)
    if inbound.kind in (InboundKind.PHOTO, InboundKind.DOCUMENT):
        await _on_file(ctx, step)
    elif inbound.kind is InboundKind.CONTACT:
        await _on_contact(ctx, step)
    elif inbound.kind is InboundKind.UNSUPPORTED:
        await _on_unsupported(ctx, step)
    elif step in _TEXT_HANDLERS:
        await _TEXT_HANDLERS[step](ctx, _clean_text(inbound.text))
    else:
        await _on_typed_choice(ctx, step)


# ---- moving between steps -------------------------------------------------------------


def _natural_next(ctx: FlowContext, step: Step) -> Step:
    data = ctx.conversation.data
    named = data.get("identity") == "named"
    after_reporter = Step.UNIT if data.get("officer") else Step.SUMMARY
    return {
        Step.KIND: Step.NAME,
        Step.NAME: Step.GROUP,
        Step.GROUP: Step.COMMUNE,
        Step.COMMUNE: Step.STORY,
        Step.STORY: Step.PHOTOS,
        Step.PHOTOS: Step.IDENTITY,
        Step.IDENTITY: Step.CONSENT if named else after_reporter,
        Step.CONSENT: Step.REPORTER_NAME if named else after_reporter,
        Step.REPORTER_NAME: Step.REPORTER_PHONE,
        Step.REPORTER_PHONE: after_reporter,
        Step.UNIT: Step.SUMMARY,
    }[step]


_CHAINED = {Step.KIND, Step.REPORTER_NAME}
"""Steps whose answer needs the next step's too, even when editing a single field."""


async def _advance(ctx: FlowContext, done: Step) -> None:
    nxt = _natural_next(ctx, done)
    chained = done in _CHAINED or nxt in (Step.CONSENT, Step.REPORTER_NAME)
    if ctx.conversation.data.get("editing") and not chained:
        nxt = Step.SUMMARY
    await _go(ctx, nxt)


async def _go(ctx: FlowContext, step: Step) -> None:
    ctx.conversation.step = step
    if step is Step.SUMMARY:
        ctx.conversation.data.pop("editing", None)
        ctx.conversation.data.pop("before_edit", None)
    if step is Step.MOVEMENT:
        today = ctx.now.astimezone(ctx.services.config.timezone).date()
        running = await active_movements(ctx.session, today)
        ctx.conversation.data["movement_choices"] = [[m.id, m.name] for m in running]
    await _prompt(ctx, step)


def _step_label(ctx: FlowContext, step: Step) -> str:
    return fmt(ctx._("Step {n}/{total}"), n=STEP_NUMBER[step], total=TOTAL_STEPS)


async def _prompt(ctx: FlowContext, step: Step) -> None:
    """Ask the question of `step` (again)."""
    text, buttons = _question(ctx, step)
    if step is Step.REPORTER_PHONE and ctx.capabilities.contact_request:
        ctx.say(text, buttons, request_contact_label=ctx._("📱 Share my phone number"))
    else:
        ctx.say(text, buttons)


def _question(ctx: FlowContext, step: Step) -> tuple[str, list[list[Button]]]:
    _ = ctx._
    data = ctx.conversation.data
    head = f"<i>{_step_label(ctx, step)}</i>\n" if step in STEP_NUMBER else ""
    if step is Step.KIND:
        buttons = [[Button(_(label), f"r:kind:{kind}") for kind, label in KIND_LABELS.items()]]
        return head + _("Whom would you like to honour?"), buttons
    if step is Step.NAME:
        if data.get("kind") == NomineeKind.COLLECTIVE:
            return head + _("What is the collective's name?"), []
        return head + _("What is the person's full name?"), []
    if step is Step.GROUP:
        return head + _("Which group do they belong to?"), _group_buttons(ctx)
    if step is Step.COMMUNE:
        directory = ctx.services.communes
        return head + fmt(
            _(
                "In which commune or ward of {province}? Type part of its name, "
                "for example: {example}"
            ),
            province=directory.province_name,
            example=directory.example_query,
        ), []
    if step is Step.STORY:
        return head + fmt(
            _(
                "What did they do, and when? Tell the story in your own words "
                "({min} to {max} characters)."
            ),
            min=STORY_LIMITS[0],
            max=STORY_LIMITS[1],
        ), []
    if step is Step.PHOTOS:
        count = len(data.get("photos", []))
        text = fmt(
            _(
                "Send up to {max} photos, one by one or together. Choose Done when finished, "
                "or Skip if you have none. Photos so far: {count}."
            ),
            max=MAX_PHOTOS,
            count=count,
        )
        return head + text, _photo_buttons(ctx)
    if step is Step.IDENTITY:
        buttons = [
            [Button(_("Stay anonymous"), "r:identity:anonymous")],
            [Button(_("Give my name and phone"), "r:identity:named")],
        ]
        return head + _(
            "Would you like to give your name and phone number so the council can contact "
            "you? Anonymous reports are welcome too."
        ), buttons
    if step is Step.CONSENT:
        buttons = [
            [Button(_("I agree"), "r:consent:yes")],
            [Button(_("No, stay anonymous"), "r:consent:no")],
        ]
        return head + fmt(_(CONSENT_TEXT), version=CONSENT_VERSION), buttons
    if step is Step.REPORTER_NAME:
        return head + _("Your full name?"), []
    if step is Step.REPORTER_PHONE:
        if ctx.capabilities.contact_request:
            return head + _("Your phone number? Press the button below, or type it."), []
        return head + _("Your phone number?"), []
    if step is Step.UNIT:
        return head + _("As an officer, which unit are you reporting for?"), []
    if step is Step.MOVEMENT:
        choices = data.get("movement_choices", [])
        rows = [[Button(f"🚩 {name}", f"r:movement:{mid}")] for mid, name in choices]
        text = (
            _("Is this good deed part of one of these emulation movements?")
            if choices
            else _("No emulation movement is running at the moment.")
        )
        return text, [*rows, [Button(_("No movement"), "r:movement:none")]]
    if step is Step.SUMMARY:
        return _summary(ctx), [
            [Button(_("✅ Confirm and send"), "r:summary:confirm")],
            [Button(_("✏️ Edit"), "r:summary:edit"), Button(_("✖️ Cancel"), "r:summary:cancel")],
        ]
    if step is Step.EDIT:
        fields = [k for k in EDITABLE if k != "unit" or data.get("officer")]
        rows = [[Button(_(EDITABLE[k][1]), f"r:edit:{k}")] for k in fields]
        return _("What would you like to change?"), [*rows, [Button(_("Back"), "r:edit:back")]]
    if step is Step.DISCARD:
        return _(
            "Discard this unfinished report? What you have entered will be lost. "
            "Nothing has been sent yet."
        ), [
            [Button(_("Discard the report"), "r:discard:yes"), Button(_("Keep it"), "r:discard:no")]
        ]
    return _("You have an unfinished report. Continue it or start a new one?"), [
        [Button(_("Continue"), "r:resume:continue"), Button(_("Start again"), "r:resume:new")]
    ]


def _group_buttons(ctx: FlowContext) -> list[list[Button]]:
    buttons = [Button(ctx._(label), f"r:group:{group}") for group, label in GROUP_LABELS.items()]
    return [buttons[i : i + 2] for i in range(0, len(buttons), 2)]


def _photo_buttons(ctx: FlowContext) -> list[list[Button]]:
    if ctx.conversation.data.get("photos"):
        return [[Button(ctx._("✅ Done"), "r:photos:done")]]
    return [[Button(ctx._("✅ Done"), "r:photos:done"), Button(ctx._("Skip"), "r:photos:skip")]]


# ---- answers to button questions -------------------------------------------------------


async def _choose_kind(ctx: FlowContext, value: str) -> None:
    if value not in NomineeKind.__members__.values():
        await _prompt(ctx, Step.KIND)
        return
    ctx.conversation.data["kind"] = value
    await _advance(ctx, Step.KIND)


async def _choose_group(ctx: FlowContext, value: str) -> None:
    if value not in NomineeGroup.__members__.values():
        await _prompt(ctx, Step.GROUP)
        return
    ctx.conversation.data["group"] = value
    await _advance(ctx, Step.GROUP)


async def _choose_commune(ctx: FlowContext, value: str) -> None:
    commune = (
        ctx.services.communes.get(int(value)) if value.isascii() and value.isdecimal() else None
    )
    if commune is None:
        await _prompt(ctx, Step.COMMUNE)
        return
    ctx.conversation.data["commune"] = commune.code
    await _advance(ctx, Step.COMMUNE)


async def _finish_photos(ctx: FlowContext, _value: str) -> None:
    """Done and Skip both move on; photos already received are kept either way."""
    await _advance(ctx, Step.PHOTOS)


async def _choose_identity(ctx: FlowContext, value: str) -> None:
    data = ctx.conversation.data
    if value == "anonymous":
        data["identity"] = "anonymous"
        for key in ("reporter_name", "reporter_phone", "consent_at", "consent_version"):
            data.pop(key, None)
    else:
        data["identity"] = "named"
    await _advance(ctx, Step.IDENTITY)


async def _choose_consent(ctx: FlowContext, value: str) -> None:
    data = ctx.conversation.data
    if value == "yes":
        data["consent_at"] = ctx.now.isoformat()
        data["consent_version"] = CONSENT_VERSION
    else:
        data["identity"] = "anonymous"
    await _advance(ctx, Step.CONSENT)


async def _summary_action(ctx: FlowContext, value: str) -> None:
    if value == "confirm":
        await _confirm(ctx)
    elif value == "edit":
        await _go(ctx, Step.EDIT)
    else:
        ctx.conversation.data["resume_step"] = Step.SUMMARY
        await _go(ctx, Step.DISCARD)


async def _choose_movement(ctx: FlowContext, value: str) -> None:
    data = ctx.conversation.data
    choices = {str(mid): name for mid, name in data.pop("movement_choices", [])}
    if value in choices:
        data.update(movement_id=int(value), movement_name=choices[value])
    else:
        data.pop("movement_id", None)
        data.pop("movement_name", None)
    await _go(ctx, Step.SUMMARY)


async def _edit_field(ctx: FlowContext, value: str) -> None:
    if value not in EDITABLE:
        await _go(ctx, Step.SUMMARY)
        return
    step = EDITABLE[value][0]
    data = ctx.conversation.data
    data["before_edit"] = copy.deepcopy(data)
    data["editing"] = True
    if step is Step.PHOTOS:
        ctx.conversation.data["photos"] = []
    await _go(ctx, step)


async def _resume(ctx: FlowContext, value: str) -> None:
    data = ctx.conversation.data
    if value == "continue":
        await _go(ctx, _step_to_return_to(ctx))
        return
    movement_id, name = data.get("movement_id"), data.get("movement_name", "")
    ctx.conversation.flow, ctx.conversation.data = "", {}
    await start(ctx)
    if movement_id and ctx.conversation.flow == FLOW:  # a movement's link led here: keep it
        _attach_movement(ctx, movement_id, name)


async def _discard(ctx: FlowContext, value: str) -> None:
    """The answer to "Discard this unfinished report?"; keeping it goes back where it was."""
    if value == "yes":
        leave_flow(ctx, ctx._("The report was discarded. Nothing was sent."))
        return
    ctx.say(ctx._("Your report is kept."))
    await _go(ctx, _step_to_return_to(ctx))


def _step_to_return_to(ctx: FlowContext) -> Step:
    """Where the person was before the question about resuming or discarding."""
    saved = ctx.conversation.data.pop("resume_step", None)
    if saved in Step.__members__.values():
        return Step(saved)
    return _missing_step(ctx) or Step.SUMMARY


_CHOICE_HANDLERS: dict[Step, Callable[[FlowContext, str], Awaitable[None]]] = {
    Step.KIND: _choose_kind,
    Step.GROUP: _choose_group,
    Step.COMMUNE: _choose_commune,
    Step.PHOTOS: _finish_photos,
    Step.IDENTITY: _choose_identity,
    Step.CONSENT: _choose_consent,
    Step.MOVEMENT: _choose_movement,
    Step.SUMMARY: _summary_action,
    Step.EDIT: _edit_field,
    Step.RESUME: _resume,
    Step.DISCARD: _discard,
}


async def _on_typed_choice(ctx: FlowContext, step: Step) -> None:
    """Text typed where buttons were offered: accept it when it names one option."""
    _, buttons = _question(ctx, step)
    payload = match_choice(ctx.inbound.text, buttons)
    if payload is None:
        ctx.say(ctx._("Please choose one of the options below."))
        await _prompt(ctx, step)
        return
    await _CHOICE_HANDLERS[step](ctx, payload.split(":", 2)[2])


# ---- answers to typed questions --------------------------------------------------------


def _clean_text(text: str) -> str:
    """NFC, without control characters; what people type may come in NFD."""
    composed = unicodedata.normalize("NFC", text)
    kept = "".join(ch for ch in composed if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    return kept.strip()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _length_problem(ctx: FlowContext, text: str, limits: tuple[int, int]) -> str | None:
    if len(text) < limits[0]:
        return fmt(
            ctx._("That is a bit short: please write at least {min} characters."), min=limits[0]
        )
    if len(text) > limits[1]:
        return fmt(
            ctx._(
                "That is too long: please keep it to at most {max} characters (yours has {count})."
            ),
            max=limits[1],
            count=len(text),
        )
    return None


async def _text_step(
    ctx: FlowContext, step: Step, key: str, text: str, limits: tuple[int, int]
) -> None:
    problem = _length_problem(ctx, text, limits)
    if problem:
        ctx.say(problem)
        return
    ctx.conversation.data[key] = text
    await _advance(ctx, step)


async def _enter_name(ctx: FlowContext, text: str) -> None:
    await _text_step(ctx, Step.NAME, "name", _one_line(text), NAME_LIMITS)


async def _enter_story(ctx: FlowContext, text: str) -> None:
    await _text_step(ctx, Step.STORY, "story", text, STORY_LIMITS)


async def _enter_reporter_name(ctx: FlowContext, text: str) -> None:
    await _text_step(ctx, Step.REPORTER_NAME, "reporter_name", _one_line(text), NAME_LIMITS)


async def _enter_unit(ctx: FlowContext, text: str) -> None:
    await _text_step(ctx, Step.UNIT, "unit", _one_line(text), UNIT_LIMITS)


async def _enter_phone(ctx: FlowContext, text: str) -> None:
    phone = _normalise_phone(text)
    if phone is None:
        ctx.say(ctx._("That does not look like a phone number. Please type it like 0912 345 678."))
        return
    ctx.conversation.data["reporter_phone"] = phone
    if ctx.capabilities.contact_request:
        ctx.say(fmt(ctx._("Phone number saved: {phone}"), phone=phone), remove_keyboard=True)
    await _advance(ctx, Step.REPORTER_PHONE)


async def _search_commune(ctx: FlowContext, text: str) -> None:
    offer_communes(ctx, text, "r:commune:")


_TEXT_HANDLERS: dict[Step, Callable[[FlowContext, str], Awaitable[None]]] = {
    Step.NAME: _enter_name,
    Step.COMMUNE: _search_commune,
    Step.STORY: _enter_story,
    Step.REPORTER_NAME: _enter_reporter_name,
    Step.REPORTER_PHONE: _enter_phone,
    Step.UNIT: _enter_unit,
}


def _normalise_phone(text: str) -> str | None:
    try:
        number = phonenumbers.parse(text, "VN")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# ---- files, contacts and the rest --------------------------------------------------------


async def _on_file(ctx: FlowContext, step: Step) -> None:
    """Photos are welcome at any step of a report; they are kept for the photo step."""
    _ = ctx._
    photos: list[str] = ctx.conversation.data.setdefault("photos", [])
    if len(photos) >= MAX_PHOTOS:
        ctx.say(
            fmt(
                _("You have already added {max} photos, the most a report can have."),
                max=MAX_PHOTOS,
            ),
            _photo_buttons(ctx) if step is Step.PHOTOS else [],
        )
        return
    stored = ctx.upload
    if not isinstance(stored, StoredImage):
        ctx.say(_media_problem_text(ctx, stored or MediaProblem.NOT_AN_IMAGE))
        if step is Step.PHOTOS:
            await _prompt(ctx, step)
        return
    await remember_upload(ctx, stored)
    if stored.sha256 not in photos:
        photos.append(stored.sha256)
    ack = fmt(_("Photo received ({count}/{max})."), count=len(photos), max=MAX_PHOTOS)
    key = f"photos:{ctx.inbound.chat_id}"
    if step is Step.PHOTOS:
        ctx.say(ack + " " + _("Send more, or choose Done."), _photo_buttons(ctx), coalesce_key=key)
    else:
        question, buttons = _question(ctx, step)
        ctx.say(
            ack + " " + _("It will be attached to the report.") + "\n\n" + question,
            buttons,
            coalesce_key=key,
        )


def _media_problem_text(ctx: FlowContext, problem: MediaProblem) -> str:
    _ = ctx._
    if problem is MediaProblem.TOO_LARGE:
        return fmt(
            _("This file is too large (the limit is {mb} MB). Please send a smaller photo."),
            mb=ctx.services.media.max_bytes // (1024 * 1024),
        )
    if problem is MediaProblem.TOO_MANY_PIXELS:
        return _(
            "This picture is too big to process. Please send an ordinary photo taken with a phone."
        )
    if problem is MediaProblem.UNAVAILABLE:
        return _("I could not receive this photo. Please send it again.")
    return _(
        "This file is not a photo I can use (videos, PDFs and other files are not "
        "accepted). Please send a photo."
    )


async def _on_contact(ctx: FlowContext, step: Step) -> None:
    contact = ctx.inbound.contact
    assert contact is not None
    if step is not Step.REPORTER_PHONE:
        ctx.say(ctx._("Thank you, but I don't need a phone number at this step."))
        await _prompt(ctx, step)
        return
    if not contact.is_own:
        ctx.say(ctx._("Please share your own phone number, not someone else's."))
        return
    await _enter_phone(ctx, contact.phone)


async def _on_unsupported(ctx: FlowContext, step: Step) -> None:
    refuse_unsupported(ctx)
    await _prompt(ctx, step)


def refuse_unsupported(ctx: FlowContext, buttons: list[list[Button]] | None = None) -> None:
    """A sticker, a voice note, a video…: say, by its name, that it cannot be used."""
    _ = ctx._
    kind = UNSUPPORTED_NAMES.get(ctx.inbound.unsupported_type, N_("this kind of message"))
    text = fmt(_("Sorry, I can't use {kind} here. Please send text or photos."), kind=_(kind))
    ctx.say(text, buttons)


# ---- summary and confirmation ------------------------------------------------------------


def _summary(ctx: FlowContext) -> str:
    _ = ctx._
    data = ctx.conversation.data
    commune = ctx.services.communes.get(int(data.get("commune", 0)))
    lines = [
        f"<i>{_step_label(ctx, Step.SUMMARY)}</i>",
        _("<b>Please check your report</b>"),
        fmt(
            _("Nominee: {name} ({kind})"),
            name=data.get("name", ""),
            kind=_(KIND_LABELS[NomineeKind(data.get("kind", NomineeKind.INDIVIDUAL))]),
        ),
        fmt(_("Group: {group}"), group=_(GROUP_LABELS[NomineeGroup(data.get("group", "other"))])),
        fmt(
            _("Place: {commune}, {province}"),
            commune=commune_label(ctx, commune) if commune else "?",
            province=ctx.services.communes.province_name,
        ),
        fmt(_("Photos: {count}"), count=len(data.get("photos", []))),
    ]
    if data.get("identity") == "named":
        lines.append(
            fmt(
                _("Reporter: {name}, {phone} (seen only by the council)"),
                name=data.get("reporter_name", ""),
                phone=data.get("reporter_phone", ""),
            )
        )
    else:
        lines.append(_("Reporter: anonymous"))
    if data.get("officer"):
        lines.append(fmt(_("Officer's report for: {unit}"), unit=data.get("unit", "")))
    if data.get("movement_name"):
        lines.append(fmt(_("Movement: {name}"), name=data["movement_name"]))
    story = clip(data.get("story", ""), SUMMARY_STORY_CHARS)
    lines += ["", _("<b>Story</b>"), esc(story)]
    return "\n".join(lines)


async def _refused_reporter(ctx: FlowContext) -> bool:
    """A banned reporter is told, politely, that reports from them are not accepted."""
    assert ctx.person.id is not None
    if not await is_banned(ctx.session, ctx.person.id):
        return False
    ctx.conversation.flow, ctx.conversation.step, ctx.conversation.data = "", "", {}
    ctx.say(
        ctx._(
            "We are sorry, but the council no longer accepts reports from this account. "
            "If you think this is a mistake, please contact the provincial Emulation and "
            "Commendation Council."
        )
    )
    return True


async def _daily_limit_reached(ctx: FlowContext) -> bool:
    assert ctx.person.id is not None
    local_midnight = ctx.now.astimezone(ctx.services.config.timezone).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    limit = ctx.services.config.reports_per_day
    if await count_reports_since(ctx.session, ctx.person.id, local_midnight) < limit:
        return False
    ctx.say(
        fmt(
            ctx._(
                "You have already sent {limit} reports today, the daily limit. Thank "
                "you for your care! Please come back tomorrow."
            ),
            limit=limit,
        ),
        main_menu(ctx),
    )
    return True


def _missing_step(ctx: FlowContext) -> Step | None:
    data = ctx.conversation.data
    required = [
        ("kind", Step.KIND),
        ("name", Step.NAME),
        ("group", Step.GROUP),
        ("commune", Step.COMMUNE),
        ("story", Step.STORY),
        ("identity", Step.IDENTITY),
    ]
    if data.get("identity") == "named":
        required += [
            ("consent_at", Step.CONSENT),
            ("reporter_name", Step.REPORTER_NAME),
            ("reporter_phone", Step.REPORTER_PHONE),
        ]
    if data.get("officer"):
        required.append(("unit", Step.UNIT))
    return next((step for key, step in required if not data.get(key)), None)


async def _confirm(ctx: FlowContext) -> None:
    missing = _missing_step(ctx)
    if missing is not None:
        await _go(ctx, missing)
        return
    if await _refused_reporter(ctx):
        return
    if await _daily_limit_reached(ctx):
        ctx.say(ctx._("Your draft is kept: you can confirm it tomorrow."))
        return
    report = await create_report(
        ctx.session, _build_report(ctx), ctx.conversation.data.get("photos", [])
    )
    await post_cards(ctx.session, ctx.services, report, ctx.now)
    ctx.conversation.flow, ctx.conversation.step, ctx.conversation.data = "", "", {}
    _ = ctx._
    ctx.say(
        fmt(
            _(
                "Thank you! Your report has been received with the code <b>{code}</b>.\n"
                "The council will review it. To follow it, send /status {code}"
            ),
            code=report.code,
        ),
        main_menu(ctx),
    )


def _build_report(ctx: FlowContext) -> Report:
    data = ctx.conversation.data
    commune = ctx.services.communes.get(int(data["commune"]))
    assert commune is not None and ctx.person.id is not None
    named = data.get("identity") == "named"
    return Report(
        reporter_id=ctx.person.id,
        channel=ctx.inbound.channel,
        locale=ctx.person.locale,
        nominee_kind=NomineeKind(data["kind"]),
        nominee_name=data["name"],
        nominee_group=NomineeGroup(data["group"]),
        province_code=ctx.services.communes.province_code,
        commune_code=commune.code,
        commune_name=commune.name,
        area_tags=[str(tag) for tag in commune.area_tags],
        story=data["story"],
        anonymous=not named,
        reporter_name=data.get("reporter_name") if named else None,
        reporter_phone=data.get("reporter_phone") if named else None,
        consent_version=data.get("consent_version") if named else None,
        consent_at=datetime.fromisoformat(data["consent_at"]) if named else None,
        by_officer=bool(data.get("officer")),
        officer_unit=data.get("unit") if data.get("officer") else None,
        movement_id=data.get("movement_id"),
        created_at=ctx.now,
        updated_at=ctx.now,
    )
