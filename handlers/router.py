"""The single entry point for every inbound message of every channel.

`handle_inbound` opens one database session per update, finds the person and their
conversation, lets the right flow decide, saves the conversation with
compare-and-set, and returns the replies for the channel to send after the commit.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers import (
    admin,
    announcements,
    answers,
    basics,
    cancelling,
    moderation,
    movements,
    myreports,
    report,
    subscriptions,
)
from handlers.cards import moderation_chat
from handlers.choices import match_choice
from handlers.context import FlowContext, Services
from handlers.flood import Verdict
from handlers.messages import Capabilities, Inbound, InboundKind, Outbound
from handlers.ports import MediaProblem, StoredImage
from handlers.uploads import receive_image
from models.conversations import ConcurrentUpdate, save_conversation
from models.moderation import MODERATORS
from models.pending import clear_input
from models.state import load_sender
from models.tables import Person

SessionFactory = Callable[[], AsyncSession]
Flow = Callable[[FlowContext], Awaitable[None]]

MAX_ATTEMPTS = 5
ID_MAX_LENGTH: int = Person.__table__.c.external_id.type.length  # type: ignore[attr-defined]
"""No platform's ids are longer; a longer one is forged and would not fit the tables."""

log = structlog.get_logger(__name__)

COMMAND_FLOWS: dict[str, Flow] = {
    "help": basics.show_help,
    "lang": basics.choose_language,
    "cancel": cancelling.cancel,
    "report": report.start,
    "myreports": myreports.list_reports,
    "status": myreports.show_status,
    "queue": moderation.queue_command,
    "history": moderation.history_command,
    "duyet": moderation.approve_command,
    "approve": moderation.approve_command,
    "tuchoi": moderation.reject_command,
    "reject": moderation.reject_command,
    "bosung": moderation.ask_command,
    "askmore": moderation.ask_command,
    "grant": admin.grant,
    "revoke": admin.revoke,
    "ban": admin.ban_command,
    "unban": admin.unban_command,
    "subscribe": subscriptions.subscribe_command,
    "unsubscribe": subscriptions.unsubscribe_command,
    "movements": movements.list_movements,
    "newmovement": movements.new_movement,
    "editmovement": movements.edit_movement,
    "announce": announcements.announce,
    "broadcasts": announcements.list_broadcasts,
    "publish": announcements.publish_now,
}
GROUP_COMMANDS = frozenset(
    {"queue", "history", "duyet", "approve", "tuchoi", "reject", "bosung", "askmore"}
)
"""What a moderators' group may ask; everything else said in a group is not for the bot."""

MENU_FLOWS: dict[str, Flow] = {
    "report": report.start,
    "myreports": myreports.list_reports,
    "help": basics.show_help,
    "lang": basics.choose_language,
    "subscribe": subscriptions.subscribe_command,
    "movements": movements.list_movements,
}

FLOW_INPUTS: dict[str, Flow] = {
    report.FLOW: report.on_input,
    subscriptions.FLOW: subscriptions.on_input,
    movements.FLOW: movements.on_input,
    announcements.FLOW: announcements.on_input,
}
"""Who takes a person's next message while they are in the middle of a flow."""


async def handle_inbound(
    services: Services, sessions: SessionFactory, inbound: Inbound, capabilities: Capabilities
) -> list[Outbound]:
    """Handle one update; updates of one person run one at a time, in arrival order."""
    if max(len(inbound.user_id), len(inbound.chat_id)) > ID_MAX_LENGTH:
        log.warning("update.id_too_long", channel=inbound.channel, update_id=inbound.update_id)
        return []
    verdict = services.flood.check_inbound(inbound, time.monotonic())
    if verdict is Verdict.DROP:
        return []
    async with services.locks.hold(f"{inbound.channel}:{inbound.user_id}"):
        upload = None
        if inbound.attachment is not None and verdict is Verdict.ALLOW and not inbound.in_group:
            upload = await receive_image(services.media, inbound.attachment)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                async with sessions() as session, session.begin():
                    return await _handle_once(
                        services, session, inbound, capabilities, verdict, upload
                    )
            except (ConcurrentUpdate, IntegrityError):
                if attempt == MAX_ATTEMPTS:
                    raise
                log.info("update.retry", update_id=inbound.update_id, attempt=attempt)
    raise AssertionError("unreachable")


async def _handle_once(
    services: Services,
    session: AsyncSession,
    inbound: Inbound,
    capabilities: Capabilities,
    verdict: Verdict,
    upload: StoredImage | MediaProblem | None,
) -> list[Outbound]:
    sender = await load_sender(
        session,
        inbound.channel,
        inbound.user_id,
        inbound.chat_id,
        locale=services.config.default_locale,
        display_name=inbound.display_name[:256],
    )
    conversation = sender.conversation
    was_in_flow = bool(conversation.flow)
    ctx = FlowContext(
        services=services,
        session=session,
        inbound=inbound,
        capabilities=capabilities,
        person=sender.person,
        roles=sender.roles,
        conversation=conversation,
        now=datetime.now(UTC),
        upload=upload,
        pending=sender.pending,
    )
    if verdict is Verdict.WARN:
        ctx.say(
            ctx._(
                "You are sending messages faster than I can read them. Please wait about "
                "ten seconds, then send again what you sent in the meantime: those "
                "messages were not read. Everything before them is kept."
            )
        )
        return ctx.replies
    await route(ctx)
    if conversation.flow or was_in_flow:
        await save_conversation(session, conversation, ctx.now)
    return ctx.replies


PENDING_INPUT_TTL = timedelta(minutes=30)


async def route(ctx: FlowContext) -> None:
    inbound = ctx.inbound
    if inbound.in_group and not await _in_moderators_chat(ctx):
        _refuse_outside_moderators_chat(ctx)
        return
    if await _drop_abandoned_prompt(ctx) and inbound.command == "cancel":
        ctx.say(ctx._("Cancelled. Nothing was sent."))
        return
    if inbound.kind is InboundKind.COMMAND:
        if not inbound.in_group or inbound.command in GROUP_COMMANDS:
            await _route_command(ctx)
    elif inbound.kind is InboundKind.BUTTON:
        await _route_button(ctx)
    elif await _route_pending(ctx) or inbound.in_group:
        return
    elif ctx.conversation.flow in FLOW_INPUTS:
        await FLOW_INPUTS[ctx.conversation.flow](ctx)
    elif inbound.kind in (InboundKind.PHOTO, InboundKind.DOCUMENT):
        if not await answers.answer_unprompted(ctx):
            ctx.say(
                ctx._("To send photos of a good deed, start a report first."),
                basics.main_menu(ctx),
            )
    elif inbound.kind is InboundKind.UNSUPPORTED:
        report.refuse_unsupported(ctx, basics.main_menu(ctx))
    else:
        await _route_idle_text(ctx)


async def _in_moderators_chat(ctx: FlowContext) -> bool:
    """Whether this group is the moderators' chat of its channel: no other group sees
    moderation output (cards, queues, histories name reporters)."""
    chat = await moderation_chat(ctx.session, ctx.services, ctx.inbound.channel)
    return chat == ctx.inbound.chat_id


def _refuse_outside_moderators_chat(ctx: FlowContext) -> None:
    """In another group a pressed button, or a moderator's moderation command, is told
    where moderation happens; anything else is not for the bot (silence, as elsewhere)."""
    inbound = ctx.inbound
    typed = inbound.command in GROUP_COMMANDS and bool(ctx.roles & MODERATORS)
    if inbound.kind is InboundKind.BUTTON or (inbound.kind is InboundKind.COMMAND and typed):
        ctx.say(
            ctx._(
                "Moderation happens only in the moderators' group or in your private chat "
                "with the bot."
            ),
            toast=True,
        )


async def _route_idle_text(ctx: FlowContext) -> None:
    """Outside any flow, a menu item typed by name ("bao cao viec tot") runs; other text
    answers the council's question when one waits for this person; else the menu."""
    choice = match_choice(ctx.inbound.text, basics.main_menu(ctx))
    if choice is not None:
        await MENU_FLOWS[choice.removeprefix("menu:")](ctx)
    elif not await answers.answer_unprompted(ctx):
        await basics.idle_hint(ctx)


async def _drop_abandoned_prompt(ctx: FlowContext) -> bool:
    """A prompt is abandoned by any command, by pressing another kind of button, or by age.

    True when a prompt still awaited was left (an expired one is not what /cancel meant).
    """
    pending = ctx.pending
    if pending is None:
        return False
    inbound = ctx.inbound
    other_button = inbound.kind is InboundKind.BUTTON and not inbound.payload.startswith(
        ("m:", "a:")
    )
    expired = ctx.now - pending.created_at > PENDING_INPUT_TTL
    if inbound.kind is InboundKind.COMMAND or other_button or expired:
        assert ctx.person.id is not None
        await clear_input(ctx.session, ctx.person.id, inbound.chat_id)
        ctx.pending = None
        return not expired
    return False


async def _route_pending(ctx: FlowContext) -> bool:
    """A prompt waiting for this person's next message in this chat takes it first."""
    assert ctx.person.id is not None
    pending = ctx.pending
    if pending is None:
        return False
    if pending.action in (answers.ANSWER, answers.CHOOSING):
        await answers.on_pending(ctx, pending)
    elif ctx.inbound.kind is InboundKind.TEXT:
        await moderation.on_pending(ctx, pending)
    else:
        ctx.say(ctx._("Please type some text in your next message."), force_reply=True)
    return True


async def _route_command(ctx: FlowContext) -> None:
    command = ctx.inbound.command
    if command == "start":
        await _deep_link(ctx, ctx.inbound.args.strip())
        return
    await COMMAND_FLOWS.get(command, basics.unknown_command)(ctx)


async def _deep_link(ctx: FlowContext, argument: str) -> None:
    """`/start <argument>`, from a link such as t.me/<bot>?start=subscribe."""
    if argument == "report":
        await report.start(ctx)
    elif argument == "subscribe":
        await subscriptions.subscribe_command(ctx)
    elif argument.startswith("movement_"):
        await movements.deep_link(ctx, argument.removeprefix("movement_"))
    else:
        await basics.greet(ctx)


BUTTON_FLOWS: dict[str, Callable[[FlowContext, str], Awaitable[None]]] = {
    "r": report.on_button,
    "m": moderation.on_button,
    "a": answers.on_button,
    "s": subscriptions.on_button,
    "mv": movements.on_button,
    "ma": movements.on_admin_button,
    "an": announcements.on_button,
    "bc": announcements.on_button,
    "my": myreports.on_button,
}
"""Button payloads are `<prefix>:…`; the prefix names the flow that made the button."""


async def _route_button(ctx: FlowContext) -> None:
    prefix, _, value = ctx.inbound.payload.partition(":")
    if ctx.inbound.in_group and prefix != "m":
        return
    if prefix in BUTTON_FLOWS:
        await BUTTON_FLOWS[prefix](ctx, ctx.inbound.payload)
    elif prefix == "menu" and value in MENU_FLOWS:
        await MENU_FLOWS[value](ctx)
    elif prefix == "lang":
        await basics.set_language(ctx, value)
    else:
        ctx.say(ctx._("That button is from an earlier message and no longer works."))
