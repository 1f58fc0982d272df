"""Administrators in chat: roles and bans, each one written to the audit log."""

from __future__ import annotations

from handlers.context import FlowContext
from handlers.text import clip, fmt
from handlers.waiting import tell_new_moderator
from models.bans import ban, unban
from models.moderation import MODERATORS, Actor, audit
from models.people import find_person, grant_role, revoke_role
from models.reports import report_by_code
from models.tables import Person, Role


def is_admin(ctx: FlowContext) -> bool:
    """Whether the person is an administrator; if not, they are told so."""
    if Role.ADMIN in ctx.roles:
        return True
    ctx.say(ctx._("Only administrators can do this."))
    return False


async def grant(ctx: FlowContext) -> None:
    await _change_role(ctx, granting=True)


async def revoke(ctx: FlowContext) -> None:
    await _change_role(ctx, granting=False)


async def _change_role(ctx: FlowContext, *, granting: bool) -> None:
    """/grant telegram:123456 moderator — or /revoke with the same arguments."""
    if not is_admin(ctx):
        return
    parts = ctx.inbound.args.split()
    roles = [r.value for r in Role]
    if len(parts) != 2 or ":" not in parts[0] or parts[1] not in roles:
        ctx.say(
            fmt(
                ctx._("Usage: /{command} channel:id role (role: {roles})"),
                command=ctx.inbound.command,
                roles=", ".join(roles),
            )
        )
        return
    channel, _, external_id = parts[0].partition(":")
    role = Role(parts[1])
    if granting:
        changed = await grant_role(
            ctx.session,
            channel,
            external_id,
            role,
            granted_by=f"{ctx.person.channel}:{ctx.person.external_id}",
        )
    else:
        changed = await revoke_role(ctx.session, channel, external_id, role)
    if changed:
        audit(
            ctx.session,
            None,
            Actor(ctx.person, ctx.roles),
            "grant" if granting else "revoke",
            detail=f"{parts[0]} {role}",
        )
    newcomer = await find_person(ctx.session, channel, external_id) if granting else None
    if changed and newcomer is not None and role in MODERATORS:
        await tell_new_moderator(ctx.session, ctx.services, newcomer)
    template = (
        ctx._("{person}: role {role} granted.")
        if granting
        else ctx._("{person}: role {role} revoked.")
    )
    ctx.say(fmt(template, person=parts[0], role=role) if changed else ctx._("Nothing to change."))


async def _person_from(ctx: FlowContext, reference: str) -> Person | None:
    """A reporter named by one of their report codes (so moderators need not see who)."""
    if ":" in reference and not reference.upper().startswith("GS"):
        channel, _, external_id = reference.partition(":")
        return await find_person(ctx.session, channel, external_id)
    report = await report_by_code(ctx.session, reference)
    return await ctx.session.get(Person, report.reporter_id) if report else None


async def ban_command(ctx: FlowContext) -> None:
    """/ban GS-2026-000123 reason — bans the reporter of that report."""
    if not is_admin(ctx):
        return
    reference, _, reason = ctx.inbound.args.partition(" ")
    person = await _person_from(ctx, reference) if reference else None
    if person is None or person.id is None:
        ctx.say(ctx._("Usage: /ban CODE-OF-A-REPORT reason (or channel:id)"))
        return
    if await ban(ctx.session, person.id, ctx.person.id, reason.strip()):
        audit(
            ctx.session,
            None,
            Actor(ctx.person, ctx.roles),
            "ban",
            detail=f"person {person.id} via {clip(reference, 40)}: {reason.strip()}",
        )
        ctx.say(
            fmt(
                ctx._("The reporter of {reference} is banned: new reports are refused."),
                reference=reference,
            )
        )
    else:
        ctx.say(ctx._("Nothing to change."))


async def unban_command(ctx: FlowContext) -> None:
    if not is_admin(ctx):
        return
    reference = ctx.inbound.args.strip()
    person = await _person_from(ctx, reference) if reference else None
    if person is None or person.id is None:
        ctx.say(ctx._("Usage: /unban CODE-OF-A-REPORT (or channel:id)"))
        return
    if await unban(ctx.session, person.id):
        audit(
            ctx.session,
            None,
            Actor(ctx.person, ctx.roles),
            "unban",
            detail=f"person {person.id} via {clip(reference, 40)}",
        )
        ctx.say(fmt(ctx._("The reporter of {reference} may report again."), reference=reference))
    else:
        ctx.say(ctx._("Nothing to change."))
