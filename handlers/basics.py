"""Greeting, menu, help, language and cancel: available at every step."""

from __future__ import annotations

from handlers.context import FlowContext
from handlers.messages import Button
from handlers.text import N_, fmt
from handlers.waiting import tell_what_waits
from models.tables import Role

LOCALES = {"vi": "Tiếng Việt", "en": "English"}

COMMANDS: list[tuple[str, str]] = [
    ("start", N_("Start and main menu")),
    ("report", N_("Report a good person or good deed")),
    ("myreports", N_("My reports")),
    ("status", N_("Status of a report: /status CODE")),
    ("subscribe", N_("Receive honoured stories and movement news")),
    ("unsubscribe", N_("Stop receiving them")),
    ("movements", N_("Emulation movements")),
    ("help", N_("Help")),
    ("lang", N_("Language: Vietnamese or English")),
    ("cancel", N_("Cancel what you are doing")),
]
"""The commands every user has, in menu order; channels publish them where they can."""

MODERATOR_COMMANDS: list[tuple[str, str]] = [
    ("queue", N_("Reports waiting for review")),
    ("history", N_("History of a report: /history CODE")),
]
DECISION_COMMANDS: list[tuple[str, str]] = [
    ("duyet", N_("Approve a report: /duyet CODE")),
    ("tuchoi", N_("Reject a report with a reason: /tuchoi CODE reason")),
    ("bosung", N_("Ask the reporter for more: /bosung CODE question")),
]
"""Decisions typed instead of pressed (the way to decide on channels without buttons)."""
ADMIN_COMMANDS: list[tuple[str, str]] = [
    ("grant", N_("Grant a role: /grant channel:id role")),
    ("revoke", N_("Revoke a role: /revoke channel:id role")),
    ("ban", N_("Ban the reporter of a report: /ban CODE reason")),
    ("unban", N_("Lift a ban: /unban CODE")),
    ("newmovement", N_("Create an emulation movement")),
    ("editmovement", N_("Edit a movement: /editmovement short-name")),
    ("announce", N_("Announce to subscribers")),
    ("broadcasts", N_("Scheduled and running broadcasts")),
    ("publish", N_("Publish the approved stories now")),
]


def main_menu(ctx: FlowContext) -> list[list[Button]]:
    _ = ctx._
    return [
        [Button(_("📝 Report a good deed"), "menu:report")],
        [Button(_("📋 My reports"), "menu:myreports"), Button(_("🚩 Movements"), "menu:movements")],
        [Button(_("🔔 Subscribe to news"), "menu:subscribe"), Button(_("❓ Help"), "menu:help")],
        [Button(_("🌐 Language / Ngôn ngữ"), "menu:lang")],
    ]


async def greet(ctx: FlowContext) -> None:
    _ = ctx._
    ctx.say(
        _welcome(ctx)
        + "\n\n"
        + _(
            "Here you can tell the province's Emulation and Commendation Council about "
            "good people and good deeds around you, with photos.\n"
            "Every report is checked by the council; honoured stories are published "
            "for everyone to read.\n"
            "It takes about a minute. You may stay anonymous."
        ),
        main_menu(ctx),
    )
    await tell_what_waits(ctx)


def _welcome(ctx: FlowContext) -> str:
    if ctx.person.display_name:
        return fmt(ctx._("Welcome to <b>Gương Sáng</b>, {name}!"), name=ctx.person.display_name)
    return ctx._("Welcome to <b>Gương Sáng</b>!")


async def show_help(ctx: FlowContext) -> None:
    _ = ctx._
    lines = [_("<b>What I can do</b>")]
    lines += [f"/{name} — {_(description)}" for name, description in COMMANDS]
    lines.append("")
    lines.append(
        fmt(
            _(
                "You can write without diacritics. /cancel leaves the current step: a change "
                "to your report goes back to its summary, and a report is discarded only "
                "when you confirm. An unfinished report is kept for {hours} hours; /report "
                "continues it."
            ),
            hours=round(ctx.services.config.draft_ttl.total_seconds() / 3600),
        )
    )
    if ctx.roles & {Role.MODERATOR, Role.ADMIN}:
        staff = MODERATOR_COMMANDS + DECISION_COMMANDS
        staff += ADMIN_COMMANDS if Role.ADMIN in ctx.roles else []
        lines += ["", _("<b>For the council</b>")]
        lines += [f"/{name} — {_(description)}" for name, description in staff]
        lines.append(_("In English: /approve, /reject and /askmore do the same."))
    ctx.say("\n".join(lines), main_menu(ctx))


async def choose_language(ctx: FlowContext) -> None:
    requested = ctx.inbound.args.strip().lower()
    if requested in LOCALES:
        await set_language(ctx, requested)
        return
    buttons = [[Button(label, f"lang:{code}") for code, label in LOCALES.items()]]
    ctx.say(ctx._("Choose your language / Chọn ngôn ngữ:"), buttons)


async def set_language(ctx: FlowContext, code: str) -> None:
    if code not in LOCALES:
        await choose_language(ctx)
        return
    ctx.person.locale = code
    ctx.session.add(ctx.person)
    ctx.say(fmt(ctx._("Language set to {language}."), language=LOCALES[code]), main_menu(ctx))


def leave_flow(ctx: FlowContext, text: str) -> None:
    """End the person's flow, say `text` and offer the main menu (a phone keyboard goes)."""
    ctx.conversation.flow, ctx.conversation.step, ctx.conversation.data = "", "", {}
    if ctx.capabilities.contact_request:
        ctx.say(text, remove_keyboard=True)
        ctx.say(ctx._("Choose what you would like to do:"), main_menu(ctx))
    else:
        ctx.say(text, main_menu(ctx))


async def nothing_to_cancel(ctx: FlowContext) -> None:
    ctx.say(ctx._("There is nothing to cancel."), main_menu(ctx))


async def unknown_command(ctx: FlowContext) -> None:
    ctx.say(
        fmt(
            ctx._("I don't know the command /{command}. Here is what I can do:"),
            command=ctx.inbound.command,
        ),
        main_menu(ctx),
    )


async def idle_hint(ctx: FlowContext) -> None:
    ctx.say(ctx._("Choose what you would like to do:"), main_menu(ctx))
