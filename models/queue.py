"""What moderators look at: the queue of pending reports, possible duplicates, notes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, union_all
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.media import hamming, phash_quarters
from models.moderation import OPEN
from models.tables import MediaFile, Report, ReportNote, ReportPhoto, ReportStatus

PHASH_MAX_DISTANCE = 3
"""Re-encoded or resized copies of a photo stay within 3 bits; the quarter index relies on it."""


@dataclass(frozen=True, slots=True)
class QueueFilter:
    commune_code: int | None = None
    group: str | None = None
    movement_id: int | None = None


async def queue_page(
    session: AsyncSession, page: int, size: int, where: QueueFilter
) -> tuple[list[Report], bool]:
    """Pending reports, oldest first: one page, and whether another page follows.

    Each open status is read in the order of ix_report_queue (status, created_at), only as
    far as this page needs, and the reads are merged: `status IN (...) ORDER BY created_at`
    can be read in order from no index, and sorted every open report for every page.
    """
    wanted = (page + 1) * size + 1
    arms = []
    for status in sorted(OPEN):
        arm = select(col(Report.id), col(Report.created_at)).where(Report.status == status)
        if where.commune_code is not None:
            arm = arm.where(Report.commune_code == where.commune_code)
        if where.group is not None:
            arm = arm.where(Report.nominee_group == where.group)
        if where.movement_id is not None:
            arm = arm.where(Report.movement_id == where.movement_id)
        arms.append(arm.order_by(col(Report.created_at), col(Report.id)).limit(wanted).subquery())
    merged = union_all(*(select(arm.c.id, arm.c.created_at) for arm in arms)).subquery()
    on_page = (
        select(merged.c.id)
        .order_by(merged.c.created_at, merged.c.id)
        .offset(page * size)
        .limit(size + 1)
    )
    query = (
        select(Report)
        .where(col(Report.id).in_(on_page))
        .order_by(col(Report.created_at), col(Report.id))
    )
    rows = list((await session.exec(query)).all())
    return rows[:size], len(rows) > size


@dataclass(frozen=True, slots=True)
class DuplicateHint:
    report: Report
    same_name: bool
    similar_photo: bool


async def duplicate_hints(
    session: AsyncSession, report: Report, window: timedelta, limit: int = 5
) -> list[DuplicateHint]:
    """Other reports of the same nominee in the same commune, or with a near-identical photo."""
    since = report.created_at - window
    by_name = await _same_nominee(session, report, since, limit)
    by_photo = await _similar_photos(session, report, since, limit)
    hints = {
        r.id: DuplicateHint(r, same_name=True, similar_photo=r.id in by_photo) for r in by_name
    }
    for other in by_photo.values():
        hints.setdefault(other.id, DuplicateHint(other, same_name=False, similar_photo=True))
    return sorted(hints.values(), key=lambda hint: hint.report.created_at)[:limit]


async def _same_nominee(
    session: AsyncSession, report: Report, since: datetime, limit: int
) -> list[Report]:
    query = (
        select(Report)
        .where(Report.commune_code == report.commune_code)
        .where(Report.nominee_key == report.nominee_key)
        .where(col(Report.created_at) >= since, Report.id != report.id)
        .order_by(col(Report.created_at).desc())
        .limit(limit)
    )
    return list((await session.exec(query)).all())


async def _similar_photos(
    session: AsyncSession, report: Report, since: datetime, limit: int
) -> dict[int | None, Report]:
    """Reports with a photo within PHASH_MAX_DISTANCE bits of one of this report's photos.

    Candidates share a 16-bit quarter of the hash (an index lookup); only their hashes are
    read, and only the reports that really match are loaded.
    """
    own = (
        select(MediaFile.phash)
        .join(ReportPhoto, col(ReportPhoto.sha256) == col(MediaFile.sha256))
        .where(ReportPhoto.report_id == report.id, col(MediaFile.phash).is_not(None))
    )
    matches: set[int] = set()
    for phash in (await session.exec(own)).all():
        assert phash is not None
        quarters = phash_quarters(phash)
        candidates = (
            select(ReportPhoto.report_id, MediaFile.phash)
            .join(MediaFile, col(MediaFile.sha256) == col(ReportPhoto.sha256))
            .join(Report, col(Report.id) == col(ReportPhoto.report_id))
            .where(
                or_(
                    col(MediaFile.phash_q0) == quarters[0],
                    col(MediaFile.phash_q1) == quarters[1],
                    col(MediaFile.phash_q2) == quarters[2],
                    col(MediaFile.phash_q3) == quarters[3],
                )
            )
            .where(col(ReportPhoto.report_id) != report.id, col(Report.created_at) >= since)
            .limit(500)
        )
        for report_id, other in (await session.exec(candidates)).all():
            if other and hamming(other, phash) <= PHASH_MAX_DISTANCE:
                matches.add(report_id)
        if len(matches) >= limit:
            break
    if not matches:
        return {}
    found = await session.exec(select(Report).where(col(Report.id).in_(sorted(matches)[:limit])))
    return {other.id: other for other in found.all()}


async def notes_of(session: AsyncSession, report_id: int) -> list[ReportNote]:
    query = select(ReportNote).where(ReportNote.report_id == report_id).order_by(col(ReportNote.id))
    return list((await session.exec(query)).all())


async def photos_of(session: AsyncSession, report_id: int) -> list[str]:
    query = (
        select(ReportPhoto.sha256)
        .where(ReportPhoto.report_id == report_id)
        .order_by(col(ReportPhoto.position))
    )
    return list((await session.exec(query)).all())


async def count_waiting(session: AsyncSession) -> int:
    """How many reports wait for a moderator's decision (those `queue_page` lists)."""
    query = select(func.count()).where(col(Report.status).in_(sorted(OPEN)))
    return int((await session.exec(query)).one())


async def questions_waiting(session: AsyncSession, reporter_id: int) -> list[Report]:
    """The reporter's reports the council asked more about, oldest first."""
    query = select(Report).where(
        Report.reporter_id == reporter_id, Report.status == ReportStatus.NEEDS_INFO
    )
    return list((await session.exec(query.order_by(col(Report.id)))).all())
