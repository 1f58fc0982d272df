"""Reports: creation with a human code, and the reporter's own view of them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.folding import fold
from models.tables import Report, ReportPhoto, ReportStatus

CODE_PREFIX = "GS"


def format_code(year: int, report_id: int) -> str:
    return f"{CODE_PREFIX}-{year}-{report_id:06d}"


def normalise_code(text: str) -> str:
    """Accept what people type: "gs-2026-123", "GS 2026 000123", with stray spaces."""
    parts = text.upper().replace(" ", "-").replace("_", "-").split("-")
    parts = [p for p in parts if p]
    if len(parts) == 3 and parts[0] == CODE_PREFIX and parts[1].isdigit() and parts[2].isdigit():
        return format_code(int(parts[1]), int(parts[2]))
    return text.strip().upper()


async def create_report(session: AsyncSession, report: Report, photos: Sequence[str]) -> Report:
    """Insert `report` with its photos and give it its code, in the caller's transaction."""
    report.nominee_key = fold(report.nominee_name)
    session.add(report)
    await session.flush()
    assert report.id is not None
    report.code = format_code(report.created_at.year, report.id)
    for position, sha256 in enumerate(photos):
        session.add(ReportPhoto(report_id=report.id, position=position, sha256=sha256))
    await session.flush()
    return report


async def reports_of(session: AsyncSession, reporter_id: int, limit: int = 20) -> list[Report]:
    query = (
        select(Report)
        .where(Report.reporter_id == reporter_id)
        .order_by(col(Report.id).desc())
        .limit(limit)
    )
    return list((await session.exec(query)).all())


async def own_report_by_code(session: AsyncSession, reporter_id: int, code: str) -> Report | None:
    """The report with `code`, only if `reporter_id` filed it: nobody reads another's report."""
    query = select(Report).where(
        Report.code == normalise_code(code), Report.reporter_id == reporter_id
    )
    return (await session.exec(query)).first()


async def report_by_code(session: AsyncSession, code: str) -> Report | None:
    """Any report by its code: for moderators only (reporters use `own_report_by_code`)."""
    return (await session.exec(select(Report).where(Report.code == normalise_code(code)))).first()


async def count_reports_since(session: AsyncSession, reporter_id: int, since: datetime) -> int:
    query = select(func.count()).where(
        col(Report.reporter_id) == reporter_id, col(Report.created_at) >= since
    )
    return int((await session.exec(query)).one())


async def photo_count(session: AsyncSession, report_id: int) -> int:
    query = select(func.count()).where(col(ReportPhoto.report_id) == report_id)
    return int((await session.exec(query)).one())


async def approved_waiting(session: AsyncSession, decided_by: datetime | None) -> list[Report]:
    """Approved reports not yet published, decided no later than `decided_by` (None: all)."""
    query = select(Report).where(Report.status == ReportStatus.APPROVED)
    if decided_by is not None:
        query = query.where(col(Report.decided_at) <= decided_by)
    return list((await session.exec(query.order_by(col(Report.decided_at), col(Report.id)))).all())


async def published_between(session: AsyncSession, start: datetime, end: datetime) -> list[Report]:
    query = (
        select(Report)
        .where(Report.status == ReportStatus.PUBLISHED)
        .where(col(Report.published_at) >= start, col(Report.published_at) < end)
        .order_by(col(Report.published_at), col(Report.id))
    )
    return list((await session.exec(query)).all())
