"""Configuration from the environment and `.env`. Every variable is listed in `.env.example`."""

from __future__ import annotations

import re
from datetime import time
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.person_ids import parse_person
from models.communes import provinces

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/guongsang.db"
DATABASE_DRIVERS = {"postgresql": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}
"""The one async driver the bot speaks for each database."""
FREE_BROADCAST_RATE = 30.0
"""Telegram's bulk limit per bot without paid broadcasts (messages per second)."""
EMBEDDING_ORIGIN = re.compile(
    r"https://[A-Za-z0-9.-]+(:\d{1,5})?|http://(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?"
)
"""A portal that may embed the web chat: HTTPS, or plain HTTP on this machine for development."""


class ConfigurationError(SystemExit):
    """Start-up cannot go on; the message tells the operator what to do."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", env_ignore_empty=True, extra="ignore"
    )

    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org"
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_moderation_chat_id: str | None = None
    telegram_channel_id: str | None = None
    telegram_broadcast_rate: float = Field(default=30.0, gt=0, le=1000)
    telegram_paid_broadcast: bool = False
    telegram_chat_interval: float = Field(default=1.0, ge=0)
    telegram_group_interval: float = Field(default=3.0, ge=0)

    zalo_bot_token: SecretStr | None = None
    zalo_api_base_url: str = "https://bot-api.zaloplatforms.com"
    zalo_webhook_url: str | None = None
    zalo_webhook_secret: SecretStr | None = None
    zalo_broadcast_rate: float = Field(default=5.0, gt=0)
    zalo_media_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    public_base_url: str | None = None
    media_url_valid_hours: float = Field(default=72.0, gt=0)

    approvals_required: int = Field(default=1, ge=1, le=5)
    claim_minutes: int = 30
    moderation_target_hours: float = 48.0
    duplicate_window_days: int = 90
    publication_slots: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["08:00", "19:00"]
    )
    digest_weekday: int = Field(default=6, ge=0, le=6)
    digest_time: time = time(19, 30)
    movement_announce_time: time = time(8, 0)
    leader_check_seconds: float = Field(default=5.0, gt=0)
    outbox_lease_seconds: float = Field(default=60.0, gt=0)

    database_url: str = DEFAULT_DATABASE_URL
    media_dir: Path = Path("./data/media")
    province_code: int = 20
    area_tags_file: Path | None = None
    timezone: str = "Asia/Ho_Chi_Minh"
    default_locale: str = "vi"
    admin_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)

    http_host: str = "127.0.0.1"
    http_port: int = 8080

    sandbox: bool = False
    web_chat_secret: SecretStr | None = None
    web_allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    web_cookie_secure: bool | None = None
    """Unset: Secure whenever the public address (PUBLIC_BASE_URL, else a webhook) is HTTPS."""
    web_session_idle_days: float = Field(default=30.0, gt=0)
    web_transcript_limit: int = Field(default=500, ge=10)
    web_sockets_per_session: int = Field(default=5, ge=1)
    web_sockets_per_address: int = Field(default=50, ge=1)
    trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list
    )

    draft_ttl_hours: float = 48.0
    reports_per_day: int = 5
    messages_per_minute: int = 30
    max_photo_bytes: int = 20 * 1024 * 1024
    max_photo_pixels: int = 24_000_000
    """Pixels decoded: a JPEG is decoded reduced to about 2560 px, other formats whole."""
    keep_original_photos: bool = False

    log_level: str = "INFO"
    log_json: bool = False

    @field_validator(
        "admin_ids",
        "web_allowed_origins",
        "publication_slots",
        "zalo_media_allowed_hosts",
        mode="before",
    )
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("web_allowed_origins")
    @classmethod
    def _embedding_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not EMBEDDING_ORIGIN.fullmatch(origin.rstrip("/")):
                raise ValueError(
                    f"{origin!r} may not embed the chat: list each portal as https://host "
                    "(plain http:// only for localhost or 127.0.0.1, never *)"
                )
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        networks = []
        for part in filter(None, (part.strip() for part in value.split(","))):
            try:
                networks.append(ip_network(part, strict=False))
            except ValueError:
                raise ValueError(
                    f"{part!r} is not an address or a network, e.g. 127.0.0.1 or 10.0.0.0/8"
                ) from None
        return networks

    @field_validator("admin_ids")
    @classmethod
    def _people(cls, value: list[str]) -> list[str]:
        for person in value:
            parse_person(person)
        return value

    @field_validator("default_locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        if value not in ("vi", "en"):
            raise ValueError("must be 'vi' or 'en'")
        return value

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        """Only the two async drivers the bot ships with; say which to write instead."""
        shapes = "postgresql+asyncpg://USER:PASSWORD@HOST:5432/DATABASE or sqlite+aiosqlite:///PATH"
        try:
            written = make_url(value).drivername
        except ArgumentError:
            raise ValueError(f"must be {shapes}") from None
        backend = "postgresql" if written in ("postgres", "postgresql") else written.split("+")[0]
        wanted = DATABASE_DRIVERS.get(backend)
        if wanted is None:
            raise ValueError(f"must be {shapes}, not {written}://…")
        if written != wanted:
            raise ValueError(f"write {wanted}://… instead of {written}://…")
        return value

    @field_validator("province_code")
    @classmethod
    def _known_province(cls, value: int) -> int:
        if value not in provinces():
            raise ValueError(
                f"{value} is not a province code: `guongsang provinces` lists the 34 codes, "
                "20 is Lạng Sơn"
            )
        return value

    @field_validator("publication_slots")
    @classmethod
    def _times(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one publication slot, e.g. 08:00,19:00")
        for slot in value:
            time.fromisoformat(slot)
        return value

    @model_validator(mode="after")
    def _broadcast_rate_within_limits(self) -> Settings:
        if self.telegram_broadcast_rate > FREE_BROADCAST_RATE and not self.telegram_paid_broadcast:
            raise ValueError(
                f"TELEGRAM_BROADCAST_RATE above {FREE_BROADCAST_RATE} needs "
                "TELEGRAM_PAID_BROADCAST=true (Telegram's paid broadcasts, up to 1000/s)"
            )
        return self

    @property
    def cookie_secure(self) -> bool:
        """WEB_COOKIE_SECURE, else whether people reach this server over HTTPS."""
        if self.web_cookie_secure is not None:
            return self.web_cookie_secure
        public = self.public_base_url or self.zalo_webhook_url or self.telegram_webhook_url
        return (public or "").startswith("https://")

    @property
    def telegram_webhook_mode(self) -> bool:
        return bool(self.telegram_webhook_url)

    @property
    def zalo_webhook_mode(self) -> bool:
        return bool(self.zalo_webhook_url)
