"""A reporter's own reports: the list, and one by its code. Nobody sees another's."""

from __future__ import annotations

from handlers.basics import main_menu
from handlers.context import FlowContext
from handlers.labels import STATUS_LABELS
from handlers.messages import Button
from handlers.text import clip, fmt
from models.reports import own_report_by_code, photo_count, reports_of
from models.tables import Report, ReportStatus

OPEN_PREFIX = "my:"
"""`my:<code>`: open one of one's own reports from the list (the press carries no authority)."""
MAX_REPORT_BUTTONS = 10
"""The newest reports get a button each; older ones are still listed, with their code."""


def _status(ctx: FlowContext, report: Report) -> str:
    return ctx._(STATUS_LABELS[ReportStatus(report.status)])


def _local_date(ctx: FlowContext, report: Report) -> str:
    return report.created_at.astimezone(ctx.services.config.timezone).strftime("%d/%m/%Y")


async def list_reports(ctx: FlowContext) -> None:
    _ = ctx._
    assert ctx.person.id is not None
    reports = await reports_of(ctx.session, ctx.person.id)
    if not reports:
        ctx.say(_("You have not sent any report yet."), main_menu(ctx))
        return
    lines = [_("<b>Your reports</b>")]
    for report in reports:
        lines.append(
            fmt(
                "<code>{code}</code> · {date} · {name} — {status}",
                code=report.code,
                date=_local_date(ctx, report),
                name=clip(report.nominee_name, 40),
                status=_status(ctx, report),
            )
        )
    lines.append("")
    lines.append(_("Press a report to see it, or send /status CODE."))
    ctx.say("\n".join(lines), _open_buttons(reports[:MAX_REPORT_BUTTONS]))


def _open_buttons(reports: list[Report]) -> list[list[Button]]:
    return [
        [Button(f"{report.code} · {clip(report.nominee_name, 24)}", OPEN_PREFIX + report.code)]
        for report in reports
    ]


async def on_button(ctx: FlowContext, payload: str) -> None:
    await _show_report(ctx, payload.removeprefix(OPEN_PREFIX))


async def show_status(ctx: FlowContext) -> None:
    _ = ctx._
    code = ctx.inbound.args.strip()
    if not code:
        ctx.say(
            _("Send the code of your report after the command, for example: /status GS-2026-000123")
        )
        return
    await _show_report(ctx, code)


async def _show_report(ctx: FlowContext, code: str) -> None:
    _ = ctx._
    assert ctx.person.id is not None
    report = await own_report_by_code(ctx.session, ctx.person.id, code)
    if report is None:
        ctx.say(fmt(_("I found no report of yours with the code {code}."), code=clip(code, 40)))
        return
    assert report.id is not None
    photos = await photo_count(ctx.session, report.id)
    ctx.say(
        "\n".join(
            [
                fmt(_("<b>Report {code}</b>"), code=report.code),
                fmt(_("Sent on: {date}"), date=_local_date(ctx, report)),
                fmt(_("Nominee: {name}"), name=report.nominee_name),
                fmt(_("Place: {commune}"), commune=report.commune_name),
                fmt(_("Photos: {count}"), count=photos),
                fmt(_("Status: {status}"), status=_status(ctx, report)),
            ]
        )
    )
