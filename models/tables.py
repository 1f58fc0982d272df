"""SQLModel tables. Every change here needs an Alembic migration in models/migrations."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, String, UniqueConstraint, text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel, col


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on PostgreSQL and on SQLite (which keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


def _timestamp(**kwargs: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, **kwargs)


def _enum(length: int, **kwargs: Any) -> Any:
    """Enums are stored as their string value: adding a member needs no database migration."""
    return Field(sa_type=String(length), **kwargs)


class Role(StrEnum):
    ADMIN = "admin"
    MODERATOR = "moderator"
    OFFICER = "officer"


class NomineeKind(StrEnum):
    INDIVIDUAL = "individual"
    COLLECTIVE = "collective"


class NomineeGroup(StrEnum):
    """The groups the directive asks commendation to reach (DESIGN.md §2)."""

    WORKER = "worker"
    FARMER = "farmer"
    DIRECT_LABOURER = "direct_labourer"
    ARMED_FORCES = "armed_forces"
    MILITIA = "militia"
    COMMUNE_POLICE = "commune_police"
    NEIGHBOURHOOD_GUARD = "neighbourhood_guard"
    WORKPLACE_GUARD = "workplace_guard"
    VILLAGE_OFFICER = "village_officer"
    SMALL_COLLECTIVE = "small_collective"
    STUDENT = "student"
    CIVIL_SERVANT = "civil_servant"
    ENTREPRENEUR = "entrepreneur"
    OTHER = "other"


class ReportStatus(StrEnum):
    SUBMITTED = "submitted"
    CLAIMED = "claimed"
    NEEDS_INFO = "needs_info"
    APPROVED = "approved"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"


class Person(SQLModel, table=True):
    """Someone who talks to the bot on one channel."""

    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    external_id: str = Field(max_length=64)
    display_name: str = Field(default="", max_length=256)
    locale: str = Field(default="vi", max_length=8)
    created_at: datetime = _timestamp()


class RoleGrant(SQLModel, table=True):
    __tablename__ = "role_grant"
    __table_args__ = (UniqueConstraint("person_id", "role"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    role: Role = _enum(16)
    granted_by: str = Field(default="", max_length=128)
    granted_at: datetime = _timestamp()


class Conversation(SQLModel, table=True):
    """Where a person is in a flow, and their draft. State lives here, never in memory.

    `version` makes every save a compare-and-set, so two updates of the same person
    processed at once (two workers, an album) never overwrite each other.
    """

    person_id: int = Field(foreign_key="person.id", primary_key=True)
    flow: str = Field(default="", max_length=32)
    step: str = Field(default="", max_length=32)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    version: int = 0
    updated_at: datetime = _timestamp(index=True)


class MediaFile(SQLModel, table=True):
    __tablename__ = "media_file"

    sha256: str = Field(primary_key=True, max_length=64)
    width: int
    height: int
    size: int
    mime_type: str = Field(max_length=32)
    phash: str | None = Field(default=None, max_length=16)
    """64-bit perceptual hash (hex). Its four 16-bit quarters are indexed: two images
    within Hamming distance 3 share at least one quarter exactly."""
    phash_q0: int | None = Field(default=None, index=True)
    phash_q1: int | None = Field(default=None, index=True)
    phash_q2: int | None = Field(default=None, index=True)
    phash_q3: int | None = Field(default=None, index=True)
    created_at: datetime = _timestamp()


class Report(SQLModel, table=True):
    """A nomination of an exemplary person or collective."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(default="", max_length=24, index=True)
    status: ReportStatus = _enum(16, default=ReportStatus.SUBMITTED, index=True)
    reporter_id: int = Field(foreign_key="person.id", index=True)
    channel: str = Field(max_length=16)
    locale: str = Field(max_length=8)
    nominee_kind: NomineeKind = _enum(16)
    nominee_name: str = Field(max_length=256)
    nominee_group: NomineeGroup = _enum(32)
    province_code: int
    commune_code: int = Field(index=True)
    commune_name: str = Field(max_length=128)
    area_tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    story: str
    anonymous: bool = True
    reporter_name: str | None = Field(default=None, max_length=256)
    reporter_phone: str | None = Field(default=None, max_length=32)
    consent_version: str | None = Field(default=None, max_length=32)
    consent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    by_officer: bool = False
    officer_unit: str | None = Field(default=None, max_length=256)
    nominee_key: str = Field(default="", max_length=256)
    """The nominee's name folded (no case, diacritics or extra spaces), for duplicate hints."""
    claimed_by_id: int | None = Field(default=None, foreign_key="person.id")
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    duplicate_of_id: int | None = Field(default=None, foreign_key="report.id")
    decided_by_id: int | None = Field(default=None, foreign_key="person.id")
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reject_reason: str | None = Field(default=None, max_length=1024)
    headline: str | None = Field(default=None, max_length=256)
    public_story: str | None = None
    """The story as edited for publication; `story` keeps what the reporter wrote."""
    public_name: str | None = Field(default=None, max_length=256)
    """The nominee's name as corrected for publication; `nominee_name` keeps the reporter's."""
    movement_id: int | None = Field(default=None, foreign_key="movement.id", index=True)
    """The emulation movement the reporter attached the report to, if any."""
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    content_version: int = 0
    """Bumped when what moderators see changes (an answer, an edit): older cards are stale."""
    version: int = 0
    """Bumped by every write: updates are compare-and-set on it."""
    created_at: datetime = _timestamp(index=True)
    updated_at: datetime = _timestamp()


Index(
    "ix_report_duplicates",
    col(Report.commune_code),
    col(Report.nominee_key),
    col(Report.created_at),
)
Index("ix_report_queue", col(Report.status), col(Report.created_at))
Index(
    "ix_report_open",
    col(Report.created_at),
    col(Report.id),
    postgresql_where=text("status IN ('submitted', 'claimed')"),
    sqlite_where=text("status IN ('submitted', 'claimed')"),
)


class ReportApproval(SQLModel, table=True):
    """One moderator's approval; APPROVALS_REQUIRED distinct ones approve a report."""

    __tablename__ = "report_approval"
    __table_args__ = (UniqueConstraint("report_id", "moderator_id"),)

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="report.id", index=True)
    moderator_id: int = Field(foreign_key="person.id")
    created_at: datetime = _timestamp()


class AuditEntry(SQLModel, table=True):
    """The append-only log of every moderation decision and administrative act."""

    __tablename__ = "audit_entry"

    id: int | None = Field(default=None, primary_key=True)
    report_id: int | None = Field(default=None, foreign_key="report.id", index=True)
    actor_id: int | None = Field(default=None, foreign_key="person.id")
    action: str = Field(max_length=32)
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str | None = Field(default=None, max_length=16)
    detail: str = Field(default="", max_length=4096)
    created_at: datetime = _timestamp()


class ReportNote(SQLModel, table=True):
    """A question a moderator asked, or the reporter's answer to it."""

    __tablename__ = "report_note"

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="report.id", index=True)
    author_id: int = Field(foreign_key="person.id")
    kind: str = Field(max_length=16)
    text: str = Field(default="", max_length=4096)
    created_at: datetime = _timestamp()


class PendingInput(SQLModel, table=True):
    """A moderator's next text in `chat_id` answers a prompt (a reason, a question, a code).

    Kept apart from `Conversation`, so a moderator with a report draft of their own loses
    nothing when they moderate.
    """

    __tablename__ = "pending_input"

    person_id: int = Field(foreign_key="person.id", primary_key=True)
    chat_id: str = Field(max_length=64, primary_key=True)
    action: str = Field(max_length=16)
    report_id: int = Field(foreign_key="report.id")
    report_version: int
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _timestamp()


class Ban(SQLModel, table=True):
    person_id: int = Field(foreign_key="person.id", primary_key=True)
    banned_by_id: int | None = Field(default=None, foreign_key="person.id")
    reason: str = Field(default="", max_length=512)
    created_at: datetime = _timestamp()


class RuntimeSetting(SQLModel, table=True):
    """Values the bot learns while running, e.g. the moderators' group's id after migration."""

    __tablename__ = "runtime_setting"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=256)
    updated_at: datetime = _timestamp()


class ReportPhoto(SQLModel, table=True):
    __tablename__ = "report_photo"
    __table_args__ = (UniqueConstraint("report_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="report.id", index=True)
    position: int
    sha256: str = Field(foreign_key="media_file.sha256", max_length=64, index=True)


class PlatformFile(SQLModel, table=True):
    """A platform's handle on a stored image (Telegram's file_id), for re-sending without upload."""

    __tablename__ = "platform_file"
    __table_args__ = (UniqueConstraint("channel", "sha256"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    sha256: str = Field(foreign_key="media_file.sha256", max_length=64)
    file_id: str = Field(max_length=256)


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    """Claimed by the dispatcher; found in this state at start-up, it was in flight at a crash."""
    SENT = "sent"
    FAILED = "failed"


class OutboxMessage(SQLModel, table=True):
    """A message to deliver later, written in the same transaction as the change that causes it.

    A moderation card is an outbox message with `report_id` set and `purpose` "card": once
    sent, its `platform_message_id` says where to edit it after a decision.

    A broadcast's delivery is an outbox message with `broadcast_id` set: one per recipient
    (unique), its payload empty; what to send is the broadcast's payload in `locale`.
    """

    __tablename__ = "outbox_message"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "channel", "chat_id", name="uq_outbox_message_delivery"),
    )

    id: int | None = Field(default=None, primary_key=True)
    broadcast_id: int | None = Field(default=None, foreign_key="broadcast.id")
    locale: str = Field(default="", max_length=8)
    claimed_by: str | None = Field(default=None, max_length=32)
    """The dispatcher run sending it (status `sending`): only that run records its outcome."""
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    parts_sent: int = 0
    """Platform calls already made for this message (an album before its text): a retry
    resumes after them instead of sending them twice."""
    report_id: int | None = Field(default=None, foreign_key="report.id", index=True)
    purpose: str = Field(default="", max_length=16)
    channel: str = Field(max_length=16)
    chat_id: str = Field(max_length=64)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: OutboxStatus = _enum(16, default=OutboxStatus.PENDING, index=True)
    attempts: int = 0
    next_attempt_at: datetime = _timestamp(index=True)
    platform_message_id: str | None = Field(default=None, max_length=64)
    last_error: str | None = Field(default=None, max_length=512)
    created_at: datetime = _timestamp()
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebMessage(SQLModel, table=True):
    """The web chat's transcript, so that a reloaded page shows the conversation again."""

    __tablename__ = "web_message"

    id: int | None = Field(default=None, primary_key=True)
    chat_id: str = Field(max_length=64, index=True)
    from_bot: bool
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = _timestamp()


class WebSession(SQLModel, table=True):
    """A browser's session of the web chat: the cookie's token (hashed) names its chat.

    The token changes whenever the identity behind it does (`identity`: persona and roles),
    and a session idle for WEB_SESSION_IDLE_DAYS is forgotten with its transcript.
    """

    __tablename__ = "web_session"

    token_hash: str = Field(primary_key=True, max_length=64)
    chat_id: str = Field(max_length=64, index=True)
    identity: str = Field(default="", max_length=256)
    last_seen: datetime = _timestamp(index=True)


Index("ix_outbox_due", col(OutboxMessage.status), col(OutboxMessage.next_attempt_at))
Index("ix_outbox_broadcast", col(OutboxMessage.broadcast_id), col(OutboxMessage.status))


class Subscription(SQLModel, table=True):
    """A person who receives publications in their private chat, and what they want."""

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", unique=True)
    channel: str = Field(max_length=16)
    chat_id: str = Field(max_length=64)
    active: bool = True
    stories: bool = True
    """Honoured stories and the weekly digest."""
    announcements: bool = True
    """Emulation movements and the council's announcements."""
    commune_code: int | None = None
    """Only what concerns this commune (and what concerns everyone); None: the whole province."""
    commune_name: str | None = Field(default=None, max_length=128)
    ended_reason: str | None = Field(default=None, max_length=64)
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


Index("ix_subscription_active", col(Subscription.active), col(Subscription.channel))


class Movement(SQLModel, table=True):
    """An emulation movement (phong trào thi đua): memorable, concrete, reviewed on dates."""

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=48, unique=True)
    name: str = Field(max_length=256)
    short_name: str = Field(max_length=64)
    slogan: str = Field(default="", max_length=256)
    description: str = ""
    criteria: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    starts_on: date
    ends_on: date
    target_groups: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    """NomineeGroup values; empty means everyone."""
    reminders: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    """ISO dates on which subscribers are reminded of the movement."""
    interim_review_on: date | None = None
    """Sơ kết."""
    final_review_on: date | None = None
    """Tổng kết."""
    created_by_id: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class BroadcastKind(StrEnum):
    STORY = "story"
    DIGEST = "digest"
    ANNOUNCEMENT = "announcement"
    MOVEMENT = "movement"


class BroadcastStatus(StrEnum):
    SCHEDULED = "scheduled"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"


class Broadcast(SQLModel, table=True):
    """One publication to many: scheduled, then one outbox delivery per recipient.

    `key` makes each publication happen once: "story:12", "digest:2026-W48",
    "movement:3:launch". `payloads` holds the rendered message per locale once it starts.
    """

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=96, unique=True)
    kind: BroadcastKind = _enum(16)
    status: BroadcastStatus = _enum(16, default=BroadcastStatus.SCHEDULED)
    stories: bool = False
    """Sent to subscribers of stories."""
    announcements: bool = False
    """Sent to subscribers of announcements."""
    commune_codes: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    """Empty: the whole province. Otherwise subscribers limited to one of these communes
    receive it, and province-wide subscribers too for stories and digests (see
    `models.broadcasts.materialize`)."""
    title: str = Field(default="", max_length=256)
    text: str = ""
    """The announcement as its author wrote it (plain text); stories are rendered from reports."""
    photos: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    report_id: int | None = Field(default=None, foreign_key="report.id")
    movement_id: int | None = Field(default=None, foreign_key="movement.id")
    payloads: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    scheduled_at: datetime = _timestamp()
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    recipients: int = 0
    progress_chats: list[dict[str, str]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    """Where the live progress message is shown: [{"channel", "chat_id", "message_id"}]."""
    created_by_id: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = _timestamp()


Index("ix_broadcast_due", col(Broadcast.status), col(Broadcast.scheduled_at))


class NumberedMenu(SQLModel, table=True):
    """The options of the last message sent to a chat of a channel without buttons (Zalo).

    A reply "2" means the second option. Kept here, not in memory, so that a restart
    between the question and the answer loses nothing.
    """

    __tablename__ = "numbered_menu"

    channel: str = Field(max_length=16, primary_key=True)
    chat_id: str = Field(max_length=64, primary_key=True)
    options: list[list[str]] = Field(sa_column=Column(JSON, nullable=False))
    """[label, payload] pairs, in the order shown."""
    superseded: bool = False
    """A later message without options was sent: its number still picks an option, but
    words no longer do (they answer the later question: "cong" is a commune search, not
    the group "Công nhân" of the menu before)."""
    updated_at: datetime = _timestamp()


class InboundReceipt(SQLModel, table=True):
    """A platform message already taken in: a second delivery of it is ignored."""

    __tablename__ = "inbound_receipt"
    __table_args__ = (UniqueConstraint("channel", "message_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    message_id: str = Field(max_length=128)
    received_at: datetime = _timestamp(index=True)


class InboxUpdate(SQLModel, table=True):
    """A platform update kept before it is acknowledged, until it has been handled.

    The webhook answers 200 (and polling confirms) only once the update is stored here; the
    bot handles it from here, marks it handled, and on start handles what a killed run left.
    """

    __tablename__ = "inbox_update"
    __table_args__ = (UniqueConstraint("channel", "update_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    update_id: int = Field(sa_type=BigInteger)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    received_at: datetime = _timestamp()
    handled_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
