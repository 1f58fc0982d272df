"""The report state machine: the one place that decides which transition is legal.

Every transition checks the actor's role server-side (a button carries no authority),
writes the report with compare-and-set on its `version`, and appends an audit row in
the same transaction. Two moderators pressing at once: exactly one UPDATE matches the
version it read; the other raises ConcurrentUpdate, is handled again from fresh state,
and is told who decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.concurrency import ConcurrentUpdate
from models.tables import AuditEntry, Person, Report, ReportApproval, ReportStatus, Role

S = ReportStatus
OPEN = frozenset({S.SUBMITTED, S.CLAIMED})
FINAL = frozenset({S.APPROVED, S.REJECTED, S.DUPLICATE, S.PUBLISHED, S.WITHDRAWN})
MODERATORS = frozenset({Role.MODERATOR, Role.ADMIN})


class Action(StrEnum):
    CLAIM = "claim"
    APPROVE = "approve"
    REJECT = "reject"
    ASK = "ask"
    DUPLICATE = "duplicate"
    EDIT = "edit"
    ANSWER = "answer"
    PUBLISH = "publish"
    WITHDRAW = "withdraw"


FROM_STATES: dict[Action, frozenset[ReportStatus]] = {
    Action.CLAIM: OPEN,
    Action.APPROVE: OPEN,
    Action.REJECT: OPEN | {S.NEEDS_INFO},
    Action.ASK: OPEN,
    Action.DUPLICATE: OPEN | {S.NEEDS_INFO},
    Action.EDIT: OPEN | {S.APPROVED},
    Action.ANSWER: frozenset({S.NEEDS_INFO}),
    Action.PUBLISH: frozenset({S.APPROVED}),
    Action.WITHDRAW: OPEN | {S.NEEDS_INFO},
}
MODERATOR_ACTIONS = frozenset(
    {Action.CLAIM, Action.APPROVE, Action.REJECT, Action.ASK, Action.DUPLICATE, Action.EDIT}
)
REPORTER_ACTIONS = frozenset({Action.ANSWER, Action.WITHDRAW})


class Refusal(StrEnum):
    NOT_FOUND = "not_found"
    NOT_ALLOWED = "not_allowed"
    OWN_REPORT = "own_report"
    ALREADY_DECIDED = "already_decided"
    OUTDATED = "outdated"
    CLAIMED_BY_OTHER = "claimed_by_other"
    ALREADY_APPROVED = "already_approved"


@dataclass(frozen=True, slots=True)
class Rules:
    approvals_required: int = 1
    claim_duration: timedelta = timedelta(minutes=30)


@dataclass(slots=True)
class Outcome:
    """What happened: the report as it now stands, or why nothing happened."""

    report: Report | None
    refusal: Refusal | None = None
    other: Person | None = None
    """Who decided (already decided) or holds the claim (claimed by other)."""
    approvals: int = 0

    @property
    def ok(self) -> bool:
        return self.refusal is None


@dataclass(frozen=True, slots=True)
class Actor:
    person: Person | None
    roles: frozenset[Role]

    @property
    def id(self) -> int | None:
        return self.person.id if self.person else None


SYSTEM = Actor(person=None, roles=frozenset())


def claim_active(report: Report, now: datetime) -> bool:
    return (
        report.claimed_by_id is not None
        and report.claimed_until is not None
        and report.claimed_until > now
    )


async def _fresh(session: AsyncSession, report_id: int) -> Report | None:
    query = select(Report).where(Report.id == report_id).execution_options(populate_existing=True)
    return (await session.exec(query)).first()


async def check(
    session: AsyncSession,
    report_id: int,
    action: Action,
    actor: Actor,
    now: datetime,
    *,
    content_version: int | None = None,
) -> Outcome:
    """Whether `actor` may do `action` now, without changing anything."""
    report = await _fresh(session, report_id)
    if report is None:
        return Outcome(None, Refusal.NOT_FOUND)
    refusal = _refusal(report, action, actor, now, content_version)
    if refusal is None:
        return Outcome(report)
    other_id = report.decided_by_id if refusal is Refusal.ALREADY_DECIDED else report.claimed_by_id
    other = await session.get(Person, other_id) if other_id else None
    return Outcome(report, refusal, other)


def _refusal(
    report: Report, action: Action, actor: Actor, now: datetime, content_version: int | None
) -> Refusal | None:
    if action in MODERATOR_ACTIONS and not (actor.roles & MODERATORS):
        return Refusal.NOT_ALLOWED
    if action in REPORTER_ACTIONS and actor.id != report.reporter_id:
        return Refusal.NOT_ALLOWED
    if action in MODERATOR_ACTIONS and actor.id == report.reporter_id:
        return Refusal.OWN_REPORT
    if report.status not in FROM_STATES[action]:
        return Refusal.ALREADY_DECIDED
    if content_version is not None and content_version != report.content_version:
        return Refusal.OUTDATED
    if (
        action in MODERATOR_ACTIONS
        and claim_active(report, now)
        and report.claimed_by_id != actor.id
        and Role.ADMIN not in actor.roles
    ):
        return Refusal.CLAIMED_BY_OTHER
    return None


async def transition(
    session: AsyncSession,
    report_id: int,
    action: Action,
    actor: Actor,
    now: datetime,
    *,
    rules: Rules,
    content_version: int | None = None,
    detail: str = "",
    changes: dict[str, Any] | None = None,
) -> Outcome:
    """Apply `action` to the report if it is legal; audit it either way it is decided."""
    outcome = await check(session, report_id, action, actor, now, content_version=content_version)
    if not outcome.ok:
        if outcome.refusal is Refusal.NOT_ALLOWED:
            audit(session, report_id, actor, "refused", detail=f"{action}: not allowed")
        return outcome
    report = outcome.report
    assert report is not None
    values, approvals = await _values_for(session, report, action, actor, now, rules, changes)
    if values is None:
        return Outcome(report, Refusal.ALREADY_APPROVED, approvals=approvals)
    new_status = values.get("status", report.status)
    await _compare_and_set(session, report, values, now)
    label = f"{action} ({approvals}/{rules.approvals_required})" if approvals else str(action)
    audit(session, report_id, actor, label, report.status, new_status, detail)
    fresh = await _fresh(session, report_id)
    return Outcome(fresh, approvals=approvals)


async def _values_for(
    session: AsyncSession,
    report: Report,
    action: Action,
    actor: Actor,
    now: datetime,
    rules: Rules,
    changes: dict[str, Any] | None,
) -> tuple[dict[str, Any] | None, int]:
    """The columns `action` changes; None when the actor already approved (quorum rule)."""
    decided = {
        "decided_by_id": actor.id,
        "decided_at": now,
        "claimed_by_id": None,
        "claimed_until": None,
    }
    if action is Action.CLAIM:
        return {
            "status": S.CLAIMED,
            "claimed_by_id": actor.id,
            "claimed_until": now + rules.claim_duration,
        }, 0
    if action is Action.APPROVE:
        approvals = await _record_approval(session, report, actor)
        if approvals is None:
            return None, await _approval_count(session, report)
        if approvals < rules.approvals_required:
            return {"status": S.SUBMITTED, "claimed_by_id": None, "claimed_until": None}, approvals
        return {"status": S.APPROVED, **decided}, approvals if rules.approvals_required > 1 else 0
    if action is Action.REJECT:
        return {"status": S.REJECTED, "reject_reason": (changes or {}).get("reason"), **decided}, 0
    if action is Action.DUPLICATE:
        return {
            "status": S.DUPLICATE,
            "duplicate_of_id": (changes or {})["duplicate_of_id"],
            **decided,
        }, 0
    if action is Action.ASK:
        return {"status": S.NEEDS_INFO, "claimed_by_id": None, "claimed_until": None}, 0
    if action is Action.ANSWER:
        await _forget_approvals(session, report)
        return {"status": S.SUBMITTED, "content_version": report.content_version + 1}, 0
    if action is Action.EDIT:
        await _forget_approvals(session, report)
        return {**(changes or {}), "content_version": report.content_version + 1}, 0
    if action is Action.PUBLISH:
        return {"status": S.PUBLISHED, "published_at": now}, 0
    return {"status": S.WITHDRAWN, "claimed_by_id": None, "claimed_until": None}, 0


async def _record_approval(session: AsyncSession, report: Report, actor: Actor) -> int | None:
    assert report.id is not None and actor.id is not None
    try:
        async with session.begin_nested():
            session.add(ReportApproval(report_id=report.id, moderator_id=actor.id))
    except IntegrityError:
        return None
    return await _approval_count(session, report)


async def _forget_approvals(session: AsyncSession, report: Report) -> None:
    """New content must be approved afresh: earlier approvals saw something else."""
    await session.exec(delete(ReportApproval).where(col(ReportApproval.report_id) == report.id))


async def _approval_count(session: AsyncSession, report: Report) -> int:
    query = select(func.count()).where(col(ReportApproval.report_id) == report.id)
    return int((await session.exec(query)).one())


async def _compare_and_set(
    session: AsyncSession, report: Report, values: dict[str, Any], now: datetime
) -> None:
    statement = (
        update(Report)
        .where(col(Report.id) == report.id, col(Report.version) == report.version)
        .values(**values, version=report.version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if (await session.exec(statement)).rowcount != 1:
        raise ConcurrentUpdate(f"report {report.id}")


def audit(
    session: AsyncSession,
    report_id: int | None,
    actor: Actor,
    action: str,
    from_status: str | None = None,
    to_status: str | None = None,
    detail: str = "",
) -> None:
    session.add(
        AuditEntry(
            report_id=report_id,
            actor_id=actor.id,
            action=action,
            from_status=from_status,
            to_status=to_status,
            detail=detail[:4096],
        )
    )


async def history(session: AsyncSession, report_id: int) -> list[tuple[AuditEntry, Person | None]]:
    query = (
        select(AuditEntry, Person)
        .join(Person, col(AuditEntry.actor_id) == col(Person.id), isouter=True)
        .where(AuditEntry.report_id == report_id)
        .order_by(col(AuditEntry.id))
    )
    return [(entry, person) for entry, person in (await session.exec(query)).all()]
