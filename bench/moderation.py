"""Latency of what moderators wait for: a `/queue` page and a card's duplicate check.

Run from the repository root (it prints figures and asserts nothing about time):

    python bench/moderation.py                      # 1,000,000 reports, SQLite and PostgreSQL
    python bench/moderation.py --quick              # 50,000 reports: a smoke run
    python bench/moderation.py --reports 200000 --backend sqlite
    python bench/moderation.py --postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
    python bench/moderation.py --quick --explain   # and the plan of every query measured
    python bench/moderation.py --quick --keep      # keep both databases, to explore them

The default run takes 8 to 9 minutes on a 2-core machine and about 2.2 GB of memory
(the generated history is held in memory); `--quick` takes a minute and a half.

For each backend the script fills a fresh database with a realistic history, then times
`models.queue.queue_page` and `models.queue.duplicate_hints`, each call in a fresh session:

- SQLite: a file in a temporary directory, migrated with `bot.db.upgrade_sync`, engine from
  `bot.db.make_engine` (WAL, BEGIN IMMEDIATE: the bot's own settings), no ANALYZE, as in
  production;
- PostgreSQL: a scratch database created beside the one `--postgres-url` names (which only
  serves to create and drop it), migrated the same way, then VACUUM ANALYZE (what autovacuum
  does to a table this size after a bulk load).

The history: reports spread over the last two years, more of them lately; mostly decided,
with a backlog of open ones (older reports are seldom still open); 65 communes of Lạng Sơn
(province 20) with a skewed share each; nominees drawn from a pool of Vietnamese names,
so that namesakes in one commune are common; 1.5 photos per report on average, each a
media file with a random 64-bit perceptual hash, some of them near-copies (1 to 3 bits
apart) of an earlier report's photo, as when a nominee is reported twice; 200,000 reporters.
The data is generated once, in memory, and bulk-loaded into each database (executemany in
big transactions on SQLite, COPY on PostgreSQL), with the secondary indexes (and, on
PostgreSQL, the foreign keys) dropped during the load and re-created afterwards from the
migrated schema's own definitions.

Timed calls (`--repeat` of each, after 3 untimed warm-up calls, or 1 when a call is slow;
a case stops early after `--budget` seconds, and says so in its count):

- `queue_page(session, page, size=5, where)` as a fresh session's first statement, so the
  time includes taking a pooled connection and BEGIN: page 0, page 200 (offset 1000), page 0
  of the busiest commune, page 0 of the commonest nominee group;
- `duplicate_hints(session, report, window=90 days)` for random reports with 1 to 3 photos,
  the report loaded first in the same session (untimed), as the card handler has it.

Beside them, the floor: `SELECT 1` through the same session path, as a fresh session's first
statement and inside an open one (the duplicate check runs 2 + one per photo queries).
Percentiles are nearest-rank; times are in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from sqlalchemy import Table, event, func, literal, true  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine  # noqa: E402
from sqlmodel import col, select  # noqa: E402
from sqlmodel.ext.asyncio.session import AsyncSession  # noqa: E402
from vietnam_provinces import ProvinceCode, Ward  # noqa: E402

from bot.db import make_engine, session_factory, upgrade_sync  # noqa: E402
from models.communes import CommuneDirectory  # noqa: E402
from models.folding import fold  # noqa: E402
from models.media import phash_quarters  # noqa: E402
from models.moderation import OPEN  # noqa: E402
from models.queue import QueueFilter, duplicate_hints, queue_page  # noqa: E402
from models.reports import format_code  # noqa: E402
from models.tables import (  # noqa: E402
    MediaFile,
    NomineeGroup,
    NomineeKind,
    Person,
    Report,
    ReportPhoto,
    ReportStatus,
)

DEFAULT_REPORTS = 1_000_000
QUICK_REPORTS = 50_000
DEFAULT_PERSONS = 200_000
MODERATORS = 20
PROVINCE = 20  # Lạng Sơn: 65 communes and wards
HISTORY = timedelta(days=730)
BACKLOG = timedelta(days=75)  # how far behind the moderators are: ~10% of the reports open
WINDOW = timedelta(days=90)  # the duplicate window the card handler uses
PAGE_SIZE = 5
DEEP_PAGE = 200
REREPORT_SHARE = 0.06  # reports of a nominee already reported in the same commune lately
REREPORT_WITHIN_DAYS = 60
RESENT_PHOTO_SHARE = 0.01  # the very same file sent again with another report
PHOTO_COUNTS = ((0, 20), (1, 30), (2, 30), (3, 20))  # 1.5 photos a report on average
SQLITE_BATCH = 50_000
POSTGRES_BATCH = 10_000
WARMUP = 3
TABLES = ("person", "report", "media_file", "report_photo")


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


S = ReportStatus
# Moderators take the queue oldest first, so what is still open is mostly the backlog of
# the last weeks (the younger, the likelier), plus a few old ones: answers to a question
# put a report back in the queue, and a claim can be left to lapse.
OPEN_SUBMITTED_SHARE = 0.92  # of the open ones; the others are claimed
BACKLOG_OPEN_TODAY = 0.98  # the chance a report in the backlog is still open, today...
BACKLOG_OPEN_AT_END = 0.4  # ...and at the far end of the backlog
STATUS_WEIGHTS_DECIDED = {  # reports that left the queue (or never were in it)
    S.NEEDS_INFO: 4.5,
    S.APPROVED: 25,
    S.PUBLISHED: 41,
    S.REJECTED: 18,
    S.DUPLICATE: 5.5,
    S.WITHDRAWN: 1.7,
}
OLD_OPEN_SHARE = 0.0012  # open reports older than the backlog
FINAL = frozenset({S.APPROVED, S.PUBLISHED, S.REJECTED, S.DUPLICATE, S.WITHDRAWN})

G = NomineeGroup
GROUP_WEIGHTS = {
    G.FARMER: 22,
    G.WORKER: 12,
    G.STUDENT: 12,
    G.DIRECT_LABOURER: 8,
    G.CIVIL_SERVANT: 7,
    G.OTHER: 7,
    G.COMMUNE_POLICE: 6,
    G.VILLAGE_OFFICER: 6,
    G.MILITIA: 5,
    G.ENTREPRENEUR: 5,
    G.ARMED_FORCES: 4,
    G.NEIGHBOURHOOD_GUARD: 4,
    G.WORKPLACE_GUARD: 2,
}
COLLECTIVE_SHARE = 0.1

SURNAMES = {
    "Nguyễn": 38,
    "Trần": 11,
    "Lê": 9.5,
    "Hoàng": 6,
    "Phạm": 6,
    "Vi": 3,
    "Lương": 3,
    "Nông": 3,
    "Lăng": 2,
    "Vũ": 3,
    "Đặng": 2,
    "Bùi": 2,
    "Đỗ": 1.5,
    "Hà": 1.5,
    "Ngô": 1.3,
    "Dương": 1,
    "Lý": 1,
    "Chu": 1,
    "Triệu": 1,
    "Mã": 0.5,
}
MIDDLE_MALE = {"Văn": 45, "Đức": 10, "Minh": 8, "Hữu": 7, "Quang": 6, "Xuân": 5, "Thành": 5}
MIDDLE_FEMALE = {"Thị": 55, "Ngọc": 8, "Thu": 7, "Thanh": 7, "Hồng": 5, "Minh": 4, "Kim": 4}
GIVEN_MALE = _words(
    "An Anh Bình Cường Dũng Duy Đạt Hải Hiếu Hòa Hùng Huy Khánh Khoa Kiên Long Lâm Mạnh Nam "
    "Nghĩa Phong Phúc Quân Quang Sơn Tài Thắng Thành Thịnh Tiến Toàn Trung Tuấn Tùng Việt Vinh"
)
GIVEN_FEMALE = _words(
    "Anh Bích Chi Dung Duyên Giang Hà Hạnh Hằng Hiền Hoa Hồng Hương Huyền Lan Liên Linh Loan "
    "Mai My Nga Ngân Ngọc Nhung Oanh Phương Quỳnh Tâm Thảo Thu Thủy Trang Tuyết Vân Yến"
)
VILLAGES = _words(
    "Nà Pàn Khòn Chu Bản Lằm Pò Mã Nà Làng Còn Quan Phai Duốc Khuổi Mò Bó Củng Nà Tèo "
    "Pác Luống Tà Lài Khau Phạ Bản Chuông Nà Sla Pò Nhùng"
)
COLLECTIVE_KINDS = (
    "Tổ dân phố số {n}",
    "Đội dân phòng thôn {v}",
    "Chi đoàn thôn {v}",
    "Tổ hòa giải thôn {v}",
    "Tổ tự quản thôn {v}",
    "Tổ bảo vệ an ninh trật tự cơ sở thôn {v}",
    "Chi hội Phụ nữ thôn {v}",
)
STORY_SENTENCES = (
    "Anh đã nhặt được ví tiền có nhiều giấy tờ quan trọng và trả lại cho người đánh rơi.",
    "Chị thường xuyên giúp đỡ các cụ già neo đơn trong thôn, nấu cơm và dọn nhà cho các cụ.",
    "Trong trận lũ vừa qua, anh đã lội nước cứu hai cháu nhỏ bị kẹt trong nhà.",
    "Ông tự bỏ tiền và công sức sửa lại đoạn đường đất vào bản cho bà con đi lại.",
    "Em đạt giải nhất học sinh giỏi cấp tỉnh dù gia đình rất khó khăn.",
    "Tổ dân phố tổ chức quét dọn đường làng và trồng hoa vào mỗi sáng chủ nhật.",
    "Anh đã kịp thời phát hiện và dập tắt đám cháy rừng, không để lan sang nhà dân.",
    "Chị mở lớp dạy chữ miễn phí cho các cháu người dân tộc vào buổi tối.",
    "Ông hiến đất để làm nhà văn hóa thôn và con đường liên xã.",
    "Anh công an xã đã giúp một người dân bị tai nạn giao thông đến trạm y tế kịp thời.",
    "Các thành viên trong đội đã tuần tra suốt đêm trong những ngày giáp Tết.",
    "Chị đã vận động bà con góp tiền mua bò giống cho các hộ nghèo trong thôn.",
    "Anh làm việc tận tụy, không quản ngày đêm, luôn có mặt khi bà con cần.",
    "Ông đã hòa giải thành công nhiều vụ tranh chấp đất đai giữa các gia đình trong bản.",
    "Em đã dũng cảm cứu một bạn nhỏ bị đuối nước ở suối đầu bản.",
    "Cả đội đã giúp bà con thu hoạch lúa chạy lũ trong hai ngày liền.",
    "Chị là tấm gương sáng về tinh thần tương thân tương ái, được bà con tin yêu.",
    "Anh bộ đội biên phòng đã giúp dân dựng lại nhà sau trận mưa đá.",
    "Ông bà đã nuôi dạy các cháu mồ côi trong xóm như con cháu trong nhà.",
    "Nhờ sáng kiến của anh, hợp tác xã đã tiết kiệm được nhiều chi phí sản xuất.",
    "Tôi đề nghị biểu dương để mọi người cùng học tập và làm theo.",
    "Việc làm này đã được nhiều người dân trong xã biết đến và cảm phục.",
)
REJECT_REASONS = (
    "Không đủ thông tin để xác minh.",
    "Nội dung không phải là việc tốt.",
    "Người báo cáo đã rút lại thông tin.",
    "Trùng với một báo cáo khác đã xử lý.",
)
IMAGE_SIZES = ((1280, 960), (960, 1280), (1600, 1200), (1080, 1080), (1280, 720), (720, 1280))


# --------------------------------------------------------------------------- the history


@dataclass(slots=True)
class Dataset:
    """Rows for the four tables, as tuples in the order of the `*_COLUMNS` lists."""

    persons: list[tuple[Any, ...]] = field(default_factory=list)
    reports: list[tuple[Any, ...]] = field(default_factory=list)
    media: list[tuple[Any, ...]] = field(default_factory=list)
    photos: list[tuple[Any, ...]] = field(default_factory=list)
    with_photos: list[int] = field(default_factory=list)
    """Ids of the reports that have photos: the duplicate check picks among them."""
    busiest_commune: tuple[int, str] = (0, "")
    commonest_group: str = ""
    statuses: Counter[str] = field(default_factory=Counter)
    near_copies: int = 0
    seconds: float = 0.0


PERSON_COLUMNS = ("id", "channel", "external_id", "display_name", "locale", "created_at")
REPORT_COLUMNS = (
    "id",
    "code",
    "status",
    "reporter_id",
    "channel",
    "locale",
    "nominee_kind",
    "nominee_name",
    "nominee_group",
    "province_code",
    "commune_code",
    "commune_name",
    "area_tags",
    "story",
    "anonymous",
    "reporter_name",
    "reporter_phone",
    "consent_version",
    "consent_at",
    "by_officer",
    "officer_unit",
    "nominee_key",
    "claimed_by_id",
    "claimed_until",
    "duplicate_of_id",
    "decided_by_id",
    "decided_at",
    "reject_reason",
    "headline",
    "public_story",
    "content_version",
    "version",
    "created_at",
    "updated_at",
)
MEDIA_COLUMNS = (
    "sha256",
    "width",
    "height",
    "size",
    "mime_type",
    "phash",
    "phash_q0",
    "phash_q1",
    "phash_q2",
    "phash_q3",
    "created_at",
)
PHOTO_COLUMNS = ("id", "report_id", "position", "sha256")


def _weighted(weights: Mapping[Any, float]) -> tuple[list[Any], list[float]]:
    keys = list(weights)
    cumulative: list[float] = []
    total = 0.0
    for key in keys:
        total += weights[key]
        cumulative.append(total)
    return keys, cumulative


def _names(rng: random.Random, count: int) -> list[str]:
    """Individual nominees' names: a surname, a middle name and a given name, by frequency."""
    surnames, surname_cum = _weighted(SURNAMES)
    male_middle, male_cum = _weighted(MIDDLE_MALE)
    female_middle, female_cum = _weighted(MIDDLE_FEMALE)
    names: list[str] = []
    for _ in range(count):
        surname = rng.choices(surnames, cum_weights=surname_cum)[0]
        if rng.random() < 0.5:
            middle = rng.choices(male_middle, cum_weights=male_cum)[0]
            given = GIVEN_MALE[int(len(GIVEN_MALE) * rng.random() ** 1.5)]
        else:
            middle = rng.choices(female_middle, cum_weights=female_cum)[0]
            given = GIVEN_FEMALE[int(len(GIVEN_FEMALE) * rng.random() ** 1.5)]
        names.append(f"{surname} {middle} {given}")
    return names


def _collective_name(rng: random.Random) -> str:
    pattern = rng.choice(COLLECTIVE_KINDS)
    return pattern.format(n=rng.randint(1, 25), v=rng.choice(VILLAGES))


def _stories(rng: random.Random, count: int) -> list[str]:
    return [" ".join(rng.sample(STORY_SENTENCES, rng.randint(3, 6))) for _ in range(count)]


def _flip_bits(rng: random.Random, value: int) -> int:
    """`value` with 1 to 3 of its 64 bits flipped: a re-encoded or resized copy's hash."""
    for bit in rng.sample(range(64), rng.randint(1, 3)):
        value ^= 1 << bit
    return value


def generate(n_reports: int, n_persons: int, seed: int, now: datetime) -> Dataset:
    """Persons, reports, media files and photos for a history of `n_reports` reports."""
    started = time.perf_counter()
    rng = random.Random(seed)
    u = rng.random
    data = Dataset()
    start = now - HISTORY
    span = HISTORY.total_seconds()

    # Persons: reporters (Telegram mostly, some on the web chat), then the moderators.
    person_channel: list[str] = []
    for person_id in range(1, n_persons + MODERATORS + 1):
        channel = "telegram" if person_id > n_persons or u() < 0.8 else "web"
        created = start + timedelta(seconds=u() * span)
        data.persons.append((person_id, channel, f"{channel[0]}{person_id:09d}", "", "vi", created))
        person_channel.append(channel)
    first_moderator = n_persons + 1

    # Reports: more of them lately (density grows as t^0.3), ids in order of creation.
    offsets = sorted(span * u() ** (1 / 1.3) for _ in range(n_reports))
    created_at = [start + timedelta(seconds=offset) for offset in offsets]

    directory = CommuneDirectory(PROVINCE, {})
    codes = [int(ward.code) for ward in Ward.iter_by_province(ProvinceCode(PROVINCE))]
    commune_names = {}
    for code in codes:
        commune = directory.get(code)
        assert commune is not None
        commune_names[code] = commune.name
    shuffled = codes[:]
    rng.shuffle(shuffled)
    commune_weights = {code: 1 / (rank + 1) ** 0.9 for rank, code in enumerate(shuffled)}
    commune_keys, commune_cum = _weighted(commune_weights)
    communes = rng.choices(commune_keys, cum_weights=commune_cum, k=n_reports)
    group_keys, group_cum = _weighted({str(g): w for g, w in GROUP_WEIGHTS.items()})
    groups = rng.choices(group_keys, cum_weights=group_cum, k=n_reports)
    decided_keys, decided_cum = _weighted({str(s): w for s, w in STATUS_WEIGHTS_DECIDED.items()})
    statuses = rng.choices(decided_keys, cum_weights=decided_cum, k=n_reports)
    backlog = BACKLOG.total_seconds()
    for index, created in enumerate(created_at):
        age = (now - created).total_seconds()
        if age < backlog:
            share = BACKLOG_OPEN_TODAY - (BACKLOG_OPEN_TODAY - BACKLOG_OPEN_AT_END) * age / backlog
        else:
            share = OLD_OPEN_SHARE
        if u() < share:
            statuses[index] = str(S.SUBMITTED if u() < OPEN_SUBMITTED_SHARE else S.CLAIMED)
    photo_keys, photo_cum = _weighted(dict(PHOTO_COUNTS))
    photo_counts = rng.choices(photo_keys, cum_weights=photo_cum, k=n_reports)

    name_pool = _names(rng, 50_000)
    stories = _stories(rng, 3_000)
    reporter_names = name_pool[:5_000]
    phones = [f"09{rng.randrange(10**8):08d}" for _ in range(20_000)]
    folded: dict[str, str] = {}
    rereport_reach = max(1, int(n_reports * REREPORT_WITHIN_DAYS / HISTORY.days))
    individual, collective = str(NomineeKind.INDIVIDUAL), str(NomineeKind.COLLECTIVE)
    final = {str(status) for status in FINAL}
    claimed, needs_info = str(S.CLAIMED), str(S.NEEDS_INFO)
    duplicate, rejected = str(S.DUPLICATE), str(S.REJECTED)
    headlined = {str(S.APPROVED), str(S.PUBLISHED)}
    small_collective = str(G.SMALL_COLLECTIVE)
    assert phash_quarters("0123456789abcdef") == (0x0123, 0x4567, 0x89AB, 0xCDEF)

    reports, media, photos = data.reports, data.media, data.photos
    nominee: list[str] = []
    first_phash: list[int | None] = []
    photo_id = 0
    for index in range(n_reports):
        report_id = index + 1
        created = created_at[index]
        status = statuses[index]
        commune = communes[index]
        group = groups[index]
        kind = individual
        source = -1
        if index > 0 and u() < REREPORT_SHARE:
            # The same nominee reported again, in the same commune, a few weeks later;
            # sometimes typed without diacritics (the folded key is the same).
            source = max(0, index - 1 - int(u() * rereport_reach))
            earlier = reports[source]
            commune, group, kind, name = earlier[10], earlier[8], earlier[6], nominee[source]
            if u() < 0.3:
                name = fold(name).title()
        elif u() < COLLECTIVE_SHARE:
            kind = collective
            group = small_collective if u() < 0.7 else group
            name = _collective_name(rng)
        else:
            name = name_pool[int(len(name_pool) * u() ** 2)]
        nominee.append(name)
        key = folded.get(name)
        if key is None:
            key = folded[name] = fold(name)

        reporter_id = 1 + int(n_persons * u() ** 1.6)
        anonymous = u() < 0.65
        by_officer = u() < 0.05
        decided_by = decided_at = claimed_by = claimed_until = None
        duplicate_of = reject_reason = headline = None
        version = 0
        if status in final:
            decided_by = first_moderator + int(u() * MODERATORS)
            decided_at = min(now, created + timedelta(hours=1 + u() * 120))
            version = 2 + int(u() * 3)
        elif status == claimed:
            claimed_by = first_moderator + int(u() * MODERATORS)
            claimed_until = created + timedelta(minutes=30 + u() * 600)
            version = 1
        elif status == needs_info:
            version = 2
        if status == duplicate:
            duplicate_of = source + 1 if source >= 0 else 1 + int(u() * index) or None
        elif status == rejected:
            reject_reason = REJECT_REASONS[int(u() * len(REJECT_REASONS))]
        if status in headlined:
            headline = f"{name}: một tấm gương sáng"
        commune_name = commune_names[commune]
        reports.append(
            (
                report_id,
                format_code(created.year, report_id),
                status,
                reporter_id,
                person_channel[reporter_id - 1],
                "vi",
                kind,
                name,
                group,
                PROVINCE,
                commune,
                commune_name,
                [],
                stories[index % len(stories)],
                anonymous,
                None if anonymous else reporter_names[int(u() * len(reporter_names))],
                None if anonymous else phones[int(u() * len(phones))],
                None if anonymous else "2026-01",
                None if anonymous else created,
                by_officer,
                f"Công an {commune_name}" if by_officer else None,
                key,
                claimed_by,
                claimed_until,
                duplicate_of,
                decided_by,
                decided_at,
                reject_reason,
                headline,
                None,
                1 if u() < 0.1 else 0,
                version,
                created,
                decided_at or created,
            )
        )

        own_first: int | None = None
        count = photo_counts[index]
        for position in range(count):
            if media and u() < RESENT_PHOTO_SHARE:
                sha = media[-1 - int(u() * min(len(media), 5_000))][0]
            else:
                source_phash = first_phash[source] if source >= 0 and position == 0 else None
                if source_phash is not None:
                    phash = _flip_bits(rng, source_phash)
                    data.near_copies += 1
                else:
                    phash = rng.getrandbits(64)
                if position == 0:
                    own_first = phash
                sha = f"{rng.getrandbits(256):064x}"
                width, height = IMAGE_SIZES[int(u() * len(IMAGE_SIZES))]
                media.append(
                    (
                        sha,
                        width,
                        height,
                        80_000 + int(u() * 520_000),
                        "image/jpeg",
                        f"{phash:016x}",
                        # = models.media.phash_quarters, without parsing the hex again
                        phash >> 48,
                        (phash >> 32) & 0xFFFF,
                        (phash >> 16) & 0xFFFF,
                        phash & 0xFFFF,
                        created,
                    )
                )
            photo_id += 1
            photos.append((photo_id, report_id, position, sha))
        first_phash.append(own_first)
        if count:
            data.with_photos.append(report_id)

    data.statuses = Counter(row[2] for row in reports)
    busiest = Counter(row[10] for row in reports).most_common(1)[0][0]
    data.busiest_commune = (busiest, commune_names[busiest])
    data.commonest_group = Counter(row[8] for row in reports).most_common(1)[0][0]
    data.seconds = time.perf_counter() - started
    return data


# --------------------------------------------------------------------------- loading


@dataclass(slots=True)
class LoadTimes:
    tables: dict[str, float] = field(default_factory=dict)
    indexes: float = 0.0
    finish: float = 0.0
    finish_label: str = ""

    @property
    def total(self) -> float:
        return sum(self.tables.values()) + self.indexes + self.finish


def _table(name: str) -> Table:
    tables: dict[str, Any] = {
        "person": Person,
        "report": Report,
        "media_file": MediaFile,
        "report_photo": ReportPhoto,
    }
    table = tables[name].__table__
    assert isinstance(table, Table)
    return table


def _rows_for(name: str, data: Dataset) -> tuple[Sequence[str], list[tuple[Any, ...]]]:
    return {
        "person": (PERSON_COLUMNS, data.persons),
        "report": (REPORT_COLUMNS, data.reports),
        "media_file": (MEDIA_COLUMNS, data.media),
        "report_photo": (PHOTO_COLUMNS, data.photos),
    }[name]


async def _secondary_indexes(conn: AsyncConnection) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the plain indexes on the loaded tables."""
    if conn.dialect.name == "sqlite":
        query = (
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            "AND tbl_name IN ('person', 'report', 'media_file', 'report_photo') ORDER BY name"
        )
    else:
        query = (
            "SELECT i.indexname, i.indexdef FROM pg_indexes i "
            "WHERE i.schemaname = 'public' "
            "AND i.tablename IN ('person', 'report', 'media_file', 'report_photo') AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c "
            "WHERE c.conindid = (quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))"
            "::regclass) ORDER BY i.indexname"
        )
    rows = [tuple(row) for row in (await conn.exec_driver_sql(query)).all()]
    return [(str(name), str(sql)) for name, sql in rows]


async def _foreign_keys(conn: AsyncConnection) -> list[tuple[str, str, str]]:
    """(table, name, definition) of the foreign keys of the loaded tables (PostgreSQL)."""
    query = (
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' "
        "AND conrelid::regclass::text IN ('person', 'report', 'media_file', 'report_photo') "
        "ORDER BY 1, 2"
    )
    rows = [tuple(row) for row in (await conn.exec_driver_sql(query)).all()]
    return [(str(table), str(name), str(definition)) for table, name, definition in rows]


async def load_sqlite(engine: AsyncEngine, data: Dataset) -> LoadTimes:
    """executemany in transactions of SQLITE_BATCH rows, through the engine's driver."""
    times = LoadTimes()
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection  # aiosqlite, in autocommit mode (bot.db sets it)
        assert driver is not None
        await driver.execute("PRAGMA cache_size = -262144")  # this connection only
        async with conn.begin():
            indexes = await _secondary_indexes(conn)
            for name, _sql in indexes:
                await conn.exec_driver_sql(f'DROP INDEX "{name}"')
        for name in TABLES:
            started = time.perf_counter()
            columns, rows = _rows_for(name, data)
            table = _table(name)
            dialect = conn.dialect
            processors = [
                table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
                for column in columns
            ]
            active = [(i, p) for i, p in enumerate(processors) if p is not None]
            marks = ", ".join("?" for _ in columns)
            statement = f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
            for first in range(0, len(rows), SQLITE_BATCH):
                batch = []
                for row in rows[first : first + SQLITE_BATCH]:
                    values = list(row)
                    for i, processor in active:
                        values[i] = processor(values[i])
                    batch.append(tuple(values))
                async with conn.begin():
                    await conn.exec_driver_sql(statement, batch)
            times.tables[name] = time.perf_counter() - started
        started = time.perf_counter()
        async with conn.begin():
            for _name, sql in indexes:
                await conn.exec_driver_sql(sql)
        times.indexes = time.perf_counter() - started
        started = time.perf_counter()
        await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        times.finish = time.perf_counter() - started
        times.finish_label = "WAL checkpoint"
        after = await _secondary_indexes(conn)
    if after != indexes:
        raise RuntimeError("the secondary indexes differ after the load")
    return times


async def load_postgres(engine: AsyncEngine, data: Dataset) -> LoadTimes:
    """COPY in transactions of POSTGRES_BATCH rows, on the engine's asyncpg connection.

    The foreign keys are dropped too, and added back (which checks every row at once).
    """
    times = LoadTimes()
    async with engine.connect() as conn:
        await conn.exec_driver_sql("SET synchronous_commit = off")
        await conn.exec_driver_sql("SET maintenance_work_mem = '512MB'")
        await conn.commit()
        async with conn.begin():
            indexes = await _secondary_indexes(conn)
            for name, _sql in indexes:
                await conn.exec_driver_sql(f'DROP INDEX "{name}"')
            foreign_keys = await _foreign_keys(conn)
            for table, name, _definition in foreign_keys:
                await conn.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        for name in TABLES:
            started = time.perf_counter()
            columns, rows = _rows_for(name, data)
            json_columns = [i for i, c in enumerate(columns) if c == "area_tags"]
            for first in range(0, len(rows), POSTGRES_BATCH):
                batch = rows[first : first + POSTGRES_BATCH]
                if json_columns:
                    batch = [_with_json(row, json_columns) for row in batch]
                # Outside any transaction: each COPY commits on its own.
                await driver.copy_records_to_table(name, records=batch, columns=list(columns))
            times.tables[name] = time.perf_counter() - started
        started = time.perf_counter()
        async with conn.begin():
            for _name, sql in indexes:
                await conn.exec_driver_sql(sql)
            for table, name, definition in foreign_keys:  # validated here, in one pass each
                await conn.exec_driver_sql(
                    f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'
                )
            for name in ("person", "report", "report_photo"):
                await conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "  # noqa: S608
                    f"(SELECT max(id) FROM {name}))"
                )
        times.indexes = time.perf_counter() - started
        after = await _secondary_indexes(conn)
        foreign_keys_after = await _foreign_keys(conn)
    # By name: PostgreSQL re-words a partial index's predicate each time it parses it.
    if [n for n, _ in after] != [n for n, _ in indexes] or sorted(foreign_keys_after) != sorted(
        foreign_keys
    ):
        raise RuntimeError("the indexes or foreign keys differ after the load")
    started = time.perf_counter()
    async with engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.exec_driver_sql(f"VACUUM ANALYZE {', '.join(TABLES)}")
    times.finish = time.perf_counter() - started
    times.finish_label = "VACUUM ANALYZE"
    return times


def _with_json(row: tuple[Any, ...], columns: Sequence[int]) -> tuple[Any, ...]:
    values = list(row)
    for i in columns:
        values[i] = json.dumps(values[i])
    return tuple(values)


# --------------------------------------------------------------------------- measuring


Call = Callable[[AsyncSession, int], Awaitable[Callable[[], Awaitable[object]]]]
"""Prepares one call in the session it is given (untimed) and returns what to time."""


@dataclass(slots=True)
class Case:
    name: str
    call: Call
    times: list[float]
    stopped_early: bool = False
    note: str = ""

    def percentile_ms(self, p: float) -> float:
        """Nearest-rank percentile, in milliseconds."""
        if not self.times:
            return math.nan
        ordered = sorted(self.times)
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        return ordered[rank - 1] * 1000


async def measure(
    name: str,
    sessions: Callable[[], AsyncSession],
    call: Call,
    repeat: int,
    budget: float,
) -> Case:
    """Time `repeat` calls, each in a fresh session; `call` prepares (untimed) what to time."""
    case = Case(name, call, [])
    for k in range(WARMUP):
        started = time.perf_counter()
        async with sessions() as session:
            timed = await call(session, -1 - k)
            await timed()
        if time.perf_counter() - started > budget / 20:
            break  # a slow call: one is warm-up enough
    deadline = time.perf_counter() + budget
    for k in range(repeat):
        async with sessions() as session:
            timed = await call(session, k)
            started = time.perf_counter()
            await timed()
            case.times.append(time.perf_counter() - started)
        if time.perf_counter() > deadline and k + 1 < repeat:
            case.stopped_early = True
            break
    return case


@dataclass(slots=True)
class HintTally:
    checks: int = 0
    photos: int = 0
    hints: int = 0
    same_name: int = 0
    similar_photo: int = 0
    with_any: int = 0


async def run_cases(
    engine: AsyncEngine, data: Dataset, args: argparse.Namespace
) -> tuple[list[Case], HintTally, dict[str, int]]:
    sessions = session_factory(engine)
    repeat, budget = args.repeat, args.budget
    commune_code, commune_name = data.busiest_commune
    group = data.commonest_group

    async def select_one(session: AsyncSession, _k: int) -> Callable[[], Awaitable[object]]:
        async def timed() -> object:
            return (await session.exec(select(literal(1)))).all()

        return timed

    async def select_one_open(session: AsyncSession, k: int) -> Callable[[], Awaitable[object]]:
        await session.exec(select(literal(0)))  # the session's transaction is now open
        return await select_one(session, k)

    def page_of(page: int, where: QueueFilter) -> Any:
        async def prepare(session: AsyncSession, _k: int) -> Callable[[], Awaitable[object]]:
            async def timed() -> object:
                return await queue_page(session, page, PAGE_SIZE, where)

            return timed

        return prepare

    rng = random.Random(args.seed + 1)
    picks = rng.sample(data.with_photos, min(len(data.with_photos), repeat + WARMUP))
    tally = HintTally()

    async def hints(session: AsyncSession, k: int) -> Callable[[], Awaitable[object]]:
        report = await session.get(Report, picks[k % len(picks)])
        assert report is not None

        async def timed() -> object:
            found = await duplicate_hints(session, report, window=WINDOW)
            if k >= 0:
                tally.checks += 1
                tally.hints += len(found)
                tally.same_name += sum(hint.same_name for hint in found)
                tally.similar_photo += sum(hint.similar_photo for hint in found)
                tally.with_any += bool(found)
            return found

        return timed

    open_counts: dict[str, int] = {}
    async with sessions() as session:
        is_open = col(Report.status).in_(list(OPEN))
        for label, condition in (
            ("all", true()),
            ("commune", col(Report.commune_code) == commune_code),
            ("group", col(Report.nominee_group) == group),
        ):
            query = select(func.count()).select_from(Report).where(is_open, condition)
            open_counts[label] = int((await session.exec(query)).one())

    cases = [
        await measure("SELECT 1, fresh session (floor)", sessions, select_one, repeat, budget),
        await measure("SELECT 1, open session (floor)", sessions, select_one_open, repeat, budget),
        await measure("queue page 0", sessions, page_of(0, QueueFilter()), repeat, budget),
        await measure(
            f"queue page {DEEP_PAGE}", sessions, page_of(DEEP_PAGE, QueueFilter()), repeat, budget
        ),
        await measure(
            "queue page 0, busiest commune",
            sessions,
            page_of(0, QueueFilter(commune_code=commune_code)),
            repeat,
            budget,
        ),
        await measure(
            "queue page 0, commonest group",
            sessions,
            page_of(0, QueueFilter(group=group)),
            repeat,
            budget,
        ),
    ]
    cases[4].note = f"{commune_name} ({commune_code}): {open_counts['commune']:,} open"
    cases[5].note = f"{group}: {open_counts['group']:,} open"
    cases[2].note = f"{open_counts['all']:,} open reports"
    dup = await measure("duplicate_hints, 90 days", sessions, hints, repeat, budget)
    photo_count = Counter(row[1] for row in data.photos)
    tally.photos = sum(photo_count[picks[k % len(picks)]] for k in range(len(dup.times)))
    cases.append(dup)
    return cases, tally, open_counts


async def explain(engine: AsyncEngine, cases: Sequence[Case]) -> None:
    """The plan of every SELECT one call of each case sends (EXPLAIN ANALYZE on PostgreSQL)."""
    sessions = session_factory(engine)
    sqlite = engine.dialect.name == "sqlite"
    prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
    statements: list[tuple[str, Any]] = []

    def record(*args: Any) -> None:  # conn, cursor, statement, parameters, context, many
        statement, parameters = args[2], args[3]
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    for case in cases:
        if case.name.startswith("SELECT 1"):
            continue
        statements.clear()
        async with sessions() as session:
            timed = await case.call(session, 0)
            event.listen(engine.sync_engine, "before_cursor_execute", record)
            try:
                await timed()
            finally:
                event.remove(engine.sync_engine, "before_cursor_execute", record)
        print(f"\n  -- {case.name}")
        seen: set[str] = set()
        async with engine.connect() as conn:
            for statement, parameters in statements:
                if statement in seen:
                    continue
                seen.add(statement)
                print(f"  {_short_sql(statement)}")
                plan = await conn.exec_driver_sql(prefix + statement, parameters)
                for row in plan.all():
                    values = tuple(row)
                    print(f"      {values[3] if sqlite else values[0]}")


def _short_sql(statement: str) -> str:
    """The statement on one line, without the long column list of its first SELECT."""
    flat = " ".join(statement.split())
    return re.sub(r"^SELECT .*? FROM ", "SELECT ... FROM ", flat, count=1)


def print_cases(cases: Sequence[Case], tally: HintTally) -> None:
    print(f"  {'case':<34} {'n':>5} {'mean':>8} {'p50':>8} {'p99':>8} {'max':>8}   (ms)")
    for case in cases:
        mean = statistics.fmean(case.times) * 1000 if case.times else math.nan
        count = f"{len(case.times)}{'*' if case.stopped_early else ''}"
        print(
            f"  {case.name:<34} {count:>5} {mean:>8.2f} {case.percentile_ms(50):>8.2f} "
            f"{case.percentile_ms(99):>8.2f} {case.percentile_ms(100):>8.2f}"
            + (f"   {case.note}" if case.note else "")
        )
    if any(case.stopped_early for case in cases):
        print("  * stopped early: the case ran past --budget")
    if tally.checks:
        print(
            f"  duplicate checks: {tally.photos / tally.checks:.2f} photos and "
            f"{2 + tally.photos / tally.checks:.2f} queries a check; "
            f"{tally.with_any / tally.checks:.0%} found a hint; a check found "
            f"{tally.same_name / tally.checks:.2f} same-name and "
            f"{tally.similar_photo / tally.checks:.2f} similar-photo reports on average"
        )


# --------------------------------------------------------------------------- backends


async def bench_sqlite(data: Dataset, args: argparse.Namespace, workdir: Path) -> None:
    path = workdir / "bench.sqlite3"
    url = f"sqlite+aiosqlite:///{path}"
    print(f"\n== SQLite {_sqlite_version()}: {path}")
    started = time.perf_counter()
    await asyncio.to_thread(upgrade_sync, url)
    migrated = time.perf_counter() - started
    loader = make_engine(url)
    try:
        times = await load_sqlite(loader, data)
    finally:
        await loader.dispose()
    _print_load(migrated, times, path.stat().st_size)
    engine = make_engine(url)
    try:
        cases, tally, _ = await run_cases(engine, data, args)
        print_cases(cases, tally)
        if args.explain:
            await explain(engine, cases)
    finally:
        await engine.dispose()


async def bench_postgres(data: Dataset, args: argparse.Namespace) -> None:
    admin_url = make_url(args.postgres_url)
    scratch = f"guongsang_bench_{os.getpid()}"
    url = admin_url.set(database=scratch).render_as_string(hide_password=False)
    admin = make_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            version = (await conn.exec_driver_sql("SHOW server_version")).scalar_one()
            await conn.exec_driver_sql(f'CREATE DATABASE "{scratch}"')
        print(f"\n== PostgreSQL {version}: scratch database {scratch} on {admin_url.host}")
        try:
            started = time.perf_counter()
            await asyncio.to_thread(upgrade_sync, url)
            migrated = time.perf_counter() - started
            engine = make_engine(url)
            try:
                times = await load_postgres(engine, data)
                async with engine.connect() as conn:
                    size = (
                        await conn.exec_driver_sql("SELECT pg_database_size(current_database())")
                    ).scalar_one()
                _print_load(migrated, times, int(size))
                await engine.dispose()  # measure on connections that did not load
                cases, tally, _ = await run_cases(engine, data, args)
                print_cases(cases, tally)
                if args.explain:
                    await explain(engine, cases)
            finally:
                await engine.dispose()
        finally:
            if args.keep:
                print(f"  kept: {url}")
            else:
                async with admin.connect() as conn:
                    await conn.exec_driver_sql(f'DROP DATABASE "{scratch}" WITH (FORCE)')
    finally:
        await admin.dispose()


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def _print_load(migrated: float, times: LoadTimes, size: int) -> None:
    tables = ", ".join(f"{name} {seconds:.1f}" for name, seconds in times.tables.items())
    print(
        f"  load: {times.total + migrated:.1f} s (migrate {migrated:.1f}, {tables}, "
        f"indexes {times.indexes:.1f}, {times.finish_label} {times.finish:.1f}); "
        f"database {size / 2**20:,.0f} MiB"
    )


def print_dataset(data: Dataset) -> None:
    total = sum(data.statuses.values())
    shares = ", ".join(
        f"{status} {data.statuses[status] / total:.1%}"
        for status in sorted(data.statuses, key=lambda s: -data.statuses[s])
    )
    print(
        f"generated in {data.seconds:.1f} s: {len(data.persons):,} persons, "
        f"{len(data.reports):,} reports, {len(data.media):,} media files "
        f"({data.near_copies:,} near-copies), {len(data.photos):,} photos "
        f"({len(data.photos) / max(1, len(data.reports)):.2f} a report)"
    )
    print(f"  statuses: {shares}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--reports", type=int, default=DEFAULT_REPORTS, help="reports (default 1,000,000)"
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_REPORTS:,} reports: a smoke run"
    )
    parser.add_argument(
        "--persons", type=int, default=DEFAULT_PERSONS, help="reporters (default 200,000)"
    )
    parser.add_argument(
        "--backend", choices=("sqlite", "postgres", "both"), default="both", help="(default both)"
    )
    parser.add_argument(
        "--postgres-url",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/test",
        help="an existing database; a scratch one is created and dropped beside it",
    )
    parser.add_argument("--repeat", type=int, default=200, help="timed calls a case (200)")
    parser.add_argument(
        "--budget", type=float, default=30.0, help="seconds a case may run before stopping (30)"
    )
    parser.add_argument("--seed", type=int, default=20, help="random seed (default 20)")
    parser.add_argument(
        "--explain", action="store_true", help="print the plan of each case's queries"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the databases, to EXPLAIN queries afterwards"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.reports = QUICK_REPORTS
        args.persons = min(args.persons, QUICK_REPORTS // 5)
    if args.reports < 1000 or args.persons < 1 or args.repeat < 1:
        parser.error("--reports must be at least 1000; --persons and --repeat at least 1")
    return args


async def bench(args: argparse.Namespace, workdir: Path) -> None:
    started = time.perf_counter()
    now = datetime.now(UTC)
    print(
        f"bench/moderation.py: {args.reports:,} reports, {args.persons:,} reporters, "
        f"{os.cpu_count()} CPUs, backend {args.backend}, {args.repeat} calls a case"
    )
    gc.disable()  # millions of tuples: the collector would rescan them again and again
    data = generate(args.reports, args.persons, args.seed, now)
    gc.freeze()  # and leave them out of every later collection
    gc.enable()
    print_dataset(data)
    if args.backend in ("sqlite", "both"):
        await bench_sqlite(data, args, workdir)
    if args.backend in ("postgres", "both"):
        await bench_postgres(data, args)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="guongsang-bench-"))
    try:
        asyncio.run(bench(args, workdir))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        raise SystemExit(main())
