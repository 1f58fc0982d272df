"""Telling a reporter what became of their report, in their language, through the outbox."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.context import Services, Translator
from handlers.messages import Button, Outbound
from handlers.text import N_, fmt
from models.outbox import enqueue
from models.tables import Person, Report

Composer = Callable[[Translator], Outbound]
"""Builds the message in the reporter's language."""


def next_publication(services: Services, now: datetime) -> datetime:
    """The first publication slot after `now`, in the configured time zone."""
    local = now.astimezone(services.config.timezone)
    for day in range(2):
        date = (local + timedelta(days=day)).date()
        for slot in sorted(services.config.publication_slots):
            candidate = datetime.combine(date, slot, tzinfo=services.config.timezone)
            if candidate > local:
                return candidate
    return local + timedelta(days=1)


async def tell_reporter(
    session: AsyncSession, services: Services, report: Report, compose: Composer
) -> None:
    reporter = await session.get(Person, report.reporter_id)
    assert reporter is not None
    outbound = compose(services.translator(reporter.locale))
    outbound.chat_id = reporter.external_id
    enqueue(
        session,
        reporter.channel,
        reporter.external_id,
        outbound.to_payload(),
        report_id=report.id,
        purpose="notice",
    )


def _message(
    template: str, *, buttons: list[list[Button]] | None = None, **values: object
) -> Composer:
    """A notice whose text is `template` (marked with N_) translated and filled in."""

    def compose(_: Translator) -> Outbound:
        labelled = [[Button(_(b.label), b.payload) for b in row] for row in buttons or []]
        return Outbound(chat_id="", text=fmt(_(template), **values), buttons=labelled)

    return compose


def approved(services: Services, report: Report, now: datetime) -> Composer:
    """The next slot is when it is due (the slot publishes what was approved before it);
    an operator may publish sooner, so the reporter is told again once it is out."""
    return _message(
        N_(
            "🎉 Good news! Your report {code} about {name} has been approved by the "
            "council. It is due to be published at {when}; you will be told when it is. "
            "Thank you for sharing this good example!"
        ),
        code=report.code,
        name=report.nominee_name,
        when=next_publication(services, now).strftime("%H:%M %d/%m/%Y"),
    )


def published(report: Report) -> Composer:
    """Sent when the story's broadcast starts (a slot, /publish or `publish --now`).

    When stories get a public page, its link belongs here: a `{link}` in the template,
    filled from the report's code.
    """
    return _message(
        N_(
            "📣 Your report {code} about {name} is now published: subscribers are receiving "
            "the story. Thank you!"
        ),
        code=report.code,
        name=report.public_name or report.nominee_name,
    )


def rejected(report: Report, reason: str) -> Composer:
    return _message(
        N_(
            "Your report {code} about {name} was not approved by the council.\n"
            "Reason: {reason}\nThank you all the same for your care."
        ),
        code=report.code,
        name=report.nominee_name,
        reason=reason,
    )


def duplicate(report: Report, original: Report) -> Composer:
    return _message(
        N_(
            "Your report {code} tells of the same good deed as report {original}, which "
            "the council is already handling. Thank you!"
        ),
        code=report.code,
        original=original.code,
    )


def question(report: Report, text: str) -> Composer:
    return _message(
        N_(
            "The council has a question about your report {code} ({name}):\n\n"
            "<i>{question}</i>\n\nPress Answer, then write or send photos."
        ),
        buttons=[[Button(N_("✍️ Answer"), f"a:start:{report.id}")]],
        code=report.code,
        name=report.nominee_name,
        question=text,
    )
