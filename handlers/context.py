"""What a flow is given to decide: the update, the person, their state, and services."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.flood import FloodGuard
from handlers.locks import KeyedLocks
from handlers.messages import Button, Capabilities, Inbound, Outbound, Photo
from handlers.ports import MediaProblem, MediaStore, StoredImage
from models.communes import CommuneDirectory
from models.tables import Conversation, PendingInput, Person, Role

Translator = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class FlowConfig:
    """The settings flows need, as plain values (flows never import `bot.settings`)."""

    default_locale: str = "vi"
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Ho_Chi_Minh"))
    draft_ttl: timedelta = timedelta(hours=48)
    reports_per_day: int = 5
    messages_per_minute: int = 30
    moderation_chats: Mapping[str, str] = field(default_factory=dict)
    """Configured moderators' group per channel (e.g. telegram → TELEGRAM_MODERATION_CHAT_ID)."""
    approvals_required: int = 1
    claim_duration: timedelta = timedelta(minutes=30)
    moderation_target: timedelta = timedelta(hours=48)
    duplicate_window: timedelta = timedelta(days=90)
    publication_slots: tuple[time, ...] = (time(8, 0), time(19, 0))
    publication_chats: Mapping[str, str] = field(default_factory=dict)
    """Chats that receive every publication (e.g. telegram → TELEGRAM_CHANNEL_ID)."""
    digest_weekday: int = 6
    """Day of the weekly digest, 0 = Monday … 6 = Sunday."""
    digest_time: time = time(19, 30)
    movement_announce_time: time = time(8, 0)
    channels: frozenset[str] = frozenset()
    """The channels this deployment runs: subscribers elsewhere (a channel whose token was
    removed) are not sent to, so no broadcast waits forever. Empty: every channel."""
    """When a movement's launch, reminders and reviews are announced on their day."""
    queue_page_size: int = 5


@dataclass(frozen=True, slots=True)
class Services:
    """Built once at start-up by the composition root and shared by every update."""

    config: FlowConfig
    media: MediaStore
    communes: CommuneDirectory
    translations: Mapping[str, Translator]
    flood: FloodGuard
    locks: KeyedLocks = field(default_factory=lambda: KeyedLocks())

    def translator(self, locale: str) -> Translator:
        return self.translations.get(locale) or self.translations[self.config.default_locale]


@dataclass(slots=True)
class FlowContext:
    """One update being handled: one database session, one person, their conversation."""

    services: Services
    session: AsyncSession
    inbound: Inbound
    capabilities: Capabilities
    person: Person
    roles: frozenset[Role]
    conversation: Conversation
    now: datetime
    pending: PendingInput | None = None
    """A prompt waiting for this person's next message in this chat."""
    upload: StoredImage | MediaProblem | None = None
    """The file the person sent with this update, already received (see handlers.uploads)."""
    replies: list[Outbound] = field(default_factory=list)

    @property
    def _(self) -> Translator:
        return self.services.translator(self.person.locale)

    def say(
        self,
        text: str,
        buttons: list[list[Button]] | None = None,
        *,
        request_contact_label: str = "",
        remove_keyboard: bool = False,
        coalesce_key: str = "",
        force_reply: bool = False,
        toast: bool = False,
        photos: list[Photo] | None = None,
        prefill: str = "",
    ) -> None:
        self.replies.append(
            Outbound(
                chat_id=self.inbound.chat_id,
                text=text,
                buttons=buttons or [],
                photos=photos or [],
                request_contact_label=request_contact_label,
                remove_keyboard=remove_keyboard,
                force_reply=force_reply,
                toast=toast,
                coalesce_key=coalesce_key,
                prefill=prefill,
            )
        )
