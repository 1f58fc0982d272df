"""/cancel: each flow leaves what it is doing, and says truthfully what was left."""

from __future__ import annotations

from handlers import announcements, basics, movements, report, subscriptions
from handlers.context import FlowContext
from handlers.text import N_

LEFT: dict[str, str] = {
    subscriptions.FLOW: N_("Cancelled: your commune was not changed."),
    movements.FLOW: N_("Cancelled. Nothing was saved."),
    announcements.FLOW: N_("Cancelled. Nothing was sent."),
}
"""What ending each flow leaves undone; a report instead leaves only its current step."""


async def cancel(ctx: FlowContext) -> None:
    flow = ctx.conversation.flow
    if flow == report.FLOW:
        await report.cancel(ctx)
    elif flow in LEFT:
        basics.leave_flow(ctx, ctx._(LEFT[flow]))
    else:
        await basics.nothing_to_cancel(ctx)
