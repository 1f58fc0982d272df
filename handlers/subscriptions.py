"""Subscribing to publications: /subscribe, /unsubscribe, topics and one's commune."""

from __future__ import annotations

from handlers.context import FlowContext
from handlers.messages import Button
from handlers.places import offer_communes
from handlers.text import fmt
from models.subscriptions import end_subscriptions_of, subscribe, subscription_of
from models.tables import Subscription

FLOW = "subscribe"
COMMUNE_STEP = "commune"


async def subscribe_command(ctx: FlowContext) -> None:
    subscription, new = await subscribe(ctx.session, ctx.person, ctx.inbound.chat_id, ctx.now)
    if new:
        ctx.say(
            ctx._(
                "🔔 You are subscribed. You will receive the stories the council honours "
                "(at most at each publication time) and news of emulation movements."
            )
        )
    _show_settings(ctx, subscription)


async def unsubscribe_command(ctx: FlowContext) -> None:
    ended = await end_subscriptions_of(
        ctx.session, ctx.person.channel, ctx.inbound.chat_id, "unsubscribed", ctx.now
    )
    if ended:
        ctx.say(
            ctx._("🔕 You will no longer receive publications. You can come back at any time."),
            [[Button(ctx._("🔔 Subscribe again"), "s:on")]],
        )
    else:
        ctx.say(
            ctx._("You are not subscribed."),
            [[Button(ctx._("🔔 Subscribe"), "s:on")]],
        )


async def on_button(ctx: FlowContext, payload: str) -> None:
    """s:on · s:off · s:stories · s:announcements · s:commune · s:province · s:c:<code>."""
    action = payload.removeprefix("s:")
    if action == "on":
        await subscribe_command(ctx)
        return
    if action == "off":
        await unsubscribe_command(ctx)
        return
    assert ctx.person.id is not None
    subscription = await subscription_of(ctx.session, ctx.person.id)
    if subscription is None or not subscription.active:
        ctx.say(ctx._("You are not subscribed."), [[Button(ctx._("🔔 Subscribe"), "s:on")]])
        return
    if action in ("stories", "announcements"):
        _toggle(ctx, subscription, action)
    elif action == "commune":
        ctx.conversation.flow, ctx.conversation.step, ctx.conversation.data = FLOW, COMMUNE_STEP, {}
        ctx.say(
            ctx._("Type part of the name of your commune or ward:"),
            [[Button(ctx._("🗺️ The whole province"), "s:province")]],
        )
        return
    elif action == "province":
        subscription.commune_code, subscription.commune_name = None, None
    elif action.startswith("c:") and action[2:].isdigit():
        commune = ctx.services.communes.get(int(action[2:]))
        if commune is None:
            ctx.say(ctx._("That button is from an earlier message and no longer works."))
            return
        subscription.commune_code, subscription.commune_name = commune.code, commune.name
    else:
        ctx.say(ctx._("That button is from an earlier message and no longer works."))
        return
    _leave_flow(ctx)
    subscription.updated_at = ctx.now
    ctx.session.add(subscription)
    _show_settings(ctx, subscription)


async def on_input(ctx: FlowContext) -> None:
    """The commune typed after "Only my commune"."""
    text = ctx.inbound.text.strip()
    if not text:
        ctx.say(ctx._("Type part of the name of your commune or ward:"))
        return
    offer_communes(ctx, text, "s:c:", [[Button(ctx._("🗺️ The whole province"), "s:province")]])


def _toggle(ctx: FlowContext, subscription: Subscription, topic: str) -> None:
    turning_off = bool(getattr(subscription, topic))
    other = "announcements" if topic == "stories" else "stories"
    if turning_off and not getattr(subscription, other):
        ctx.say(
            ctx._("Keep at least one topic, or unsubscribe."),
            [[Button(ctx._("🔕 Unsubscribe"), "s:off")]],
            toast=True,
        )
        return
    setattr(subscription, topic, not turning_off)


def _leave_flow(ctx: FlowContext) -> None:
    if ctx.conversation.flow == FLOW:
        ctx.conversation.flow, ctx.conversation.step, ctx.conversation.data = "", "", {}


def _show_settings(ctx: FlowContext, subscription: Subscription) -> None:
    _ = ctx._

    def mark(on: bool) -> str:
        return "✅" if on else "⬜"

    place = (
        _("only {commune}").format(commune=subscription.commune_name)
        if subscription.commune_name
        else _("the whole province")
    )
    ctx.say(
        "\n".join(
            [
                _("<b>Your subscription</b>"),
                fmt(_("Area: {place}"), place=place),
                _("Press a button to change what you receive."),
            ]
        ),
        [
            [Button(f"{mark(subscription.stories)} {_('Honoured stories')}", "s:stories")],
            [
                Button(
                    f"{mark(subscription.announcements)} {_('Movements and announcements')}",
                    "s:announcements",
                )
            ],
            [Button(_("📍 Choose my commune"), "s:commune")],
            [Button(_("🔕 Unsubscribe"), "s:off")],
        ],
    )
