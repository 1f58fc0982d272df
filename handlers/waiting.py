"""What waits for the moderators, told to a moderator who arrives after the reports did.

Cards reach only the moderators known when a report is sent; a moderator who first
writes later (or is granted the role later) is told how many reports wait, with a
button to the queue, on every channel.
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.context import FlowContext, Services, Translator
from handlers.messages import Button, Outbound
from handlers.text import fmt
from models.moderation import MODERATORS
from models.outbox import enqueue
from models.queue import count_waiting
from models.tables import Person

QUEUE_BUTTON = "m:q:0:0"
"""The first page of the queue, unfiltered (see handlers.moderation.on_button)."""


def waiting_notice(_: Translator, count: int) -> Outbound:
    return Outbound(
        chat_id="",
        text=fmt(_("📋 Reports waiting for review: {count}."), count=count),
        buttons=[[Button(_("📋 Open the queue"), QUEUE_BUTTON)]],
    )


async def tell_what_waits(ctx: FlowContext) -> None:
    """A moderator's greeting ends with what waits for review (nothing when none does)."""
    if not ctx.roles & MODERATORS:
        return
    count = await count_waiting(ctx.session)
    if count:
        notice = waiting_notice(ctx._, count)
        ctx.say(notice.text, notice.buttons)


async def tell_new_moderator(session: AsyncSession, services: Services, person: Person) -> None:
    """Through the outbox: the person just made a moderator learns what waits."""
    _ = services.translator(person.locale)
    notice = waiting_notice(_, await count_waiting(session))
    notice.chat_id = person.external_id
    notice.text = _("You can now moderate reports on Gương Sáng.") + "\n" + notice.text
    enqueue(session, person.channel, person.external_id, notice.to_payload(), purpose="notice")
