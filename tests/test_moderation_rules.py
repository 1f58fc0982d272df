"""The report state machine on its own, on SQLite and PostgreSQL, with real concurrency."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from handlers.router import SessionFactory
from models.concurrency import ConcurrentUpdate
from models.moderation import Action, Actor, Refusal, Rules, transition
from models.people import get_or_create_person
from models.reports import create_report
from models.tables import (
    AuditEntry,
    NomineeGroup,
    NomineeKind,
    Person,
    Report,
    ReportStatus,
    Role,
)

RULES = Rules()
MODERATOR = frozenset({Role.MODERATOR})


async def person(sessions: SessionFactory, external_id: str) -> Person:
    async with sessions() as session, session.begin():
        return await get_or_create_person(session, "test", external_id, locale="vi")


async def new_report(sessions: SessionFactory, reporter: Person) -> int:
    assert reporter.id is not None
    async with sessions() as session, session.begin():
        report = Report(
            reporter_id=reporter.id, channel="test", locale="vi",
            nominee_kind=NomineeKind.INDIVIDUAL, nominee_name="Lò Văn A",
            nominee_group=NomineeGroup.FARMER, province_code=20, commune_code=6184,
            commune_name="Xã Đồng Đăng", story="x" * 40,
        )  # fmt: skip
        await create_report(session, report, [])
        assert report.id is not None
        return report.id


async def attempt(sessions: SessionFactory, report_id: int, actor: Actor, action: Action) -> str:
    """One moderator's press, retried from fresh state when it lost the race, as in the router."""
    for _ in range(5):
        try:
            async with sessions() as session, session.begin():
                outcome = await transition(session, report_id, action, actor,
                                           datetime.now(UTC), rules=RULES)  # fmt: skip
                return "won" if outcome.ok else str(outcome.refusal)
        except ConcurrentUpdate:
            continue
    raise AssertionError("never settled")


async def test_racing_moderators_exactly_one_wins(sessions: SessionFactory) -> None:
    reporter = await person(sessions, "reporter")
    moderators = [Actor(await person(sessions, f"mod{i}"), MODERATOR) for i in range(4)]
    report_id = await new_report(sessions, reporter)
    results = await asyncio.gather(
        *(
            attempt(sessions, report_id, m, a)
            for m, a in zip(
                moderators,
                [Action.APPROVE, Action.REJECT, Action.APPROVE, Action.REJECT],
                strict=True,
            )
        )
    )
    assert results.count("won") == 1
    assert results.count(str(Refusal.ALREADY_DECIDED)) == 3
    async with sessions() as session:
        entries = (await session.exec(select(AuditEntry))).all()
        report = await session.get(Report, report_id)
    assert len(entries) == 1 and report is not None
    assert report.status in (ReportStatus.APPROVED, ReportStatus.REJECTED)


@pytest.mark.parametrize(
    ("roles", "own", "expected"),
    [
        (frozenset(), False, Refusal.NOT_ALLOWED),
        (frozenset({Role.OFFICER}), False, Refusal.NOT_ALLOWED),
        (MODERATOR, True, Refusal.OWN_REPORT),
    ],
)
async def test_who_may_not_moderate(
    sessions: SessionFactory, roles: frozenset[Role], own: bool, expected: Refusal
) -> None:
    reporter = await person(sessions, "reporter")
    report_id = await new_report(sessions, reporter)
    actor = Actor(reporter if own else await person(sessions, "someone"), roles)
    assert await attempt(sessions, report_id, actor, Action.APPROVE) == str(expected)
    async with sessions() as session:
        report = await session.get(Report, report_id)
    assert report is not None and report.status == ReportStatus.SUBMITTED


async def test_outdated_card_is_refused(sessions: SessionFactory) -> None:
    reporter = await person(sessions, "reporter")
    moderator = Actor(await person(sessions, "mod"), MODERATOR)
    report_id = await new_report(sessions, reporter)
    async with sessions() as session, session.begin():
        outcome = await transition(session, report_id, Action.EDIT, moderator, datetime.now(UTC),
                                   rules=RULES, changes={"headline": "Tấm gương"})  # fmt: skip
        assert outcome.ok and outcome.report is not None and outcome.report.content_version == 1
    async with sessions() as session, session.begin():
        stale = await transition(session, report_id, Action.APPROVE, moderator, datetime.now(UTC),
                                 rules=RULES, content_version=0)  # fmt: skip
    assert stale.refusal is Refusal.OUTDATED
