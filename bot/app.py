"""The composition root: builds everything once from the settings, wires it, runs it."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import structlog
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import db
from bot.channels.base import Channel
from bot.channels.telegram import TelegramChannel, build_application
from bot.channels.telegram_inbox import InboxQueue
from bot.channels.web import (
    SANDBOX_GRANTOR,
    WebChatChannel,
    WebChatPolicy,
    load_or_create_secret,
)
from bot.channels.zalo import ZaloChannel
from bot.channels.zalo_api import ZaloClient
from bot.i18n import load_translations
from bot.leader import Leadership
from bot.media import ImageStore
from bot.media_urls import MediaUrls
from bot.person_ids import parse_person
from bot.server import build_web_app, when_storing
from bot.settings import ConfigurationError, Settings
from handlers.broadcasting import digest_tick, publication_tick, report_progress, start_due
from handlers.cards import MIGRATED_CHAT_KEY, moderation_chat
from handlers.context import FlowConfig, Services
from handlers.drafts import expire_drafts
from handlers.flood import FloodGuard
from handlers.messages import Outbound
from handlers.router import SessionFactory, handle_inbound
from handlers.staff import staff_command_menus
from handlers.unused_photos import forget_unused_photos
from models.communes import CommuneDirectory, bundled_area_tags, load_area_tags
from models.inbox import forget_handled
from models.outbox import enqueue
from models.people import grant_role, revoke_grants_by
from models.receipts import forget_receipts
from models.runtime_settings import set_value
from models.tables import Role
from scheduler.dispatcher import DeliveryFailed, Dispatcher
from scheduler.limiter import Limits, RateLimiter
from scheduler.runner import Job, PeriodicJob, build_scheduler

log = structlog.get_logger(__name__)

STAFF_MENUS_EVERY_SECONDS = 60.0
DRAFT_SWEEP_EVERY_SECONDS = 300.0
PUBLICATION_EVERY_SECONDS = 30.0
BROADCAST_START_EVERY_SECONDS = 2.0
PROGRESS_EVERY_SECONDS = 5.0
RECEIPT_SWEEP_EVERY_SECONDS = 3600.0
PHOTO_SWEEP_EVERY_SECONDS = 3600.0
RECEIPTS_KEPT = timedelta(days=7)
WEB_CHAT_LIMITS = Limits(per_second=200.0, chat_interval=0.0)
"""The web chat is our own server: no platform limit, only a guard against a runaway loop."""


def running_channels(settings: Settings) -> frozenset[str]:
    """The channels `build_runtime` starts: the web chat always, platforms with a token."""
    tokens = {"telegram": settings.telegram_bot_token, "zalo": settings.zalo_bot_token}
    return frozenset({"web"} | {name for name, token in tokens.items() if token is not None})


def build_services(settings: Settings) -> Services:
    area_file = settings.area_tags_file or bundled_area_tags(settings.province_code)
    return Services(
        config=FlowConfig(
            default_locale=settings.default_locale,
            timezone=ZoneInfo(settings.timezone),
            draft_ttl=timedelta(hours=settings.draft_ttl_hours),
            reports_per_day=settings.reports_per_day,
            messages_per_minute=settings.messages_per_minute,
            moderation_chats=(
                {"telegram": settings.telegram_moderation_chat_id}
                if settings.telegram_bot_token and settings.telegram_moderation_chat_id
                else {}
            ),
            approvals_required=settings.approvals_required,
            claim_duration=timedelta(minutes=settings.claim_minutes),
            moderation_target=timedelta(hours=settings.moderation_target_hours),
            duplicate_window=timedelta(days=settings.duplicate_window_days),
            publication_slots=tuple(time.fromisoformat(s) for s in settings.publication_slots),
            publication_chats=(
                {"telegram": settings.telegram_channel_id}
                if settings.telegram_bot_token and settings.telegram_channel_id
                else {}
            ),
            digest_weekday=settings.digest_weekday,
            digest_time=settings.digest_time,
            movement_announce_time=settings.movement_announce_time,
            channels=running_channels(settings),
        ),
        media=ImageStore(
            settings.media_dir,
            max_bytes=settings.max_photo_bytes,
            max_pixels=settings.max_photo_pixels,
            keep_original=settings.keep_original_photos,
        ),
        communes=CommuneDirectory(settings.province_code, load_area_tags(area_file)),
        translations=load_translations(),
        flood=FloodGuard(settings.messages_per_minute),
    )


@dataclass
class Runtime:
    """Everything the process runs, built once and handed down."""

    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    services: Services
    channels: dict[str, Channel] = field(default_factory=dict)
    limiters: dict[str, RateLimiter] = field(default_factory=dict)
    """One per channel, shared by replies and the outbox dispatcher: a chat's limit is one."""
    routes: list[web.AbstractRouteDef] = field(default_factory=list)
    storage: db.WriteProbe = field(init=False)
    """Whether the database takes writes (health, webhooks, the web chat)."""
    _web_runner: web.AppRunner | None = field(default=None, init=False)
    _scheduler: AsyncIOScheduler | None = field(default=None, init=False)
    _leadership: Leadership | None = field(default=None, init=False)
    _leading: asyncio.Task[None] | None = field(default=None, init=False)
    _dispatching: asyncio.Task[None] | None = field(default=None, init=False)
    _stop_dispatch: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    dispatcher: Dispatcher | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.storage = db.WriteProbe(self.engine)

    async def send_payload(self, channel: str, chat_id: str, payload: dict[str, Any]) -> str:
        """The outbox's way out: one stored message to one chat on its channel."""
        target = self.channels.get(channel)
        if target is None:
            raise DeliveryFailed(f"channel {channel} is not running", retry_in=60.0)
        outbound = Outbound.from_payload(payload)
        outbound.chat_id = chat_id  # a broadcast's payload is one for all its recipients
        return await target.send(outbound)

    async def keep_replies(
        self, channel: str, chat_id: str, replies: list[Outbound], due_in: float
    ) -> None:
        """Replies that cannot go out now: into the outbox, for the dispatcher, in order."""
        due_at = datetime.now(UTC) + timedelta(seconds=due_in)
        async with self.sessions() as session, session.begin():
            for outbound in replies:
                enqueue(
                    session, channel, chat_id, outbound.to_payload(), purpose="reply", due_at=due_at
                )

    async def forget_old_receipts(self) -> None:
        """Platforms stop redelivering long before: forget what only served to spot a replay."""
        before = datetime.now(UTC) - RECEIPTS_KEPT
        async with self.sessions() as session, session.begin():
            await forget_receipts(session, before)
            await forget_handled(session, before)

    async def send_paced(self, channel: str, chat_id: str, payload: dict[str, Any]) -> str:
        """Send at once, but within the leader's limits (progress messages)."""
        if self.dispatcher is None:
            return await self.send_payload(channel, chat_id, payload)
        return await self.dispatcher.send_now(channel, chat_id, payload)

    async def staff_menus(self, channel: str) -> dict[str, list[tuple[str, str]]]:
        async with self.sessions() as session:
            return await staff_command_menus(session, self.services, channel)

    async def remember_migration(self, channel: str, old_chat_id: str, new_chat_id: str) -> None:
        """Follow the moderators' group when it becomes a supergroup (its id changes)."""
        async with self.sessions() as session, session.begin():
            if await moderation_chat(session, self.services, channel) == old_chat_id:
                await set_value(session, MIGRATED_CHAT_KEY.format(channel=channel), new_chat_id)

    async def sync_staff_menus(self) -> None:
        telegram = self.channels.get("telegram")
        if isinstance(telegram, TelegramChannel):
            await telegram.sync_staff_menus()

    async def health(self) -> dict[str, Any]:
        """The /healthz report: "ok", or "unhealthy" with its problems (the database takes
        no writes, a channel receives nothing)."""
        database = await self.storage.problem()
        problems = [f"database: {database}"] if database else []
        zalo = self.channels.get("zalo")
        if isinstance(zalo, ZaloChannel) and zalo.problem:
            problems.append(f"zalo: {zalo.problem}")
        report: dict[str, Any] = {
            "status": "unhealthy" if problems else "ok",
            "database": database or "ok",
            "channels": sorted(self.channels),
        }
        return {**report, "problems": problems} if problems else report

    async def start(self) -> None:
        """Migrate, bootstrap admins, open the web server and the channels, seek leadership."""
        await db.upgrade(self.settings.database_url)
        await bootstrap_admins(self.sessions, self.settings.admin_ids)
        await self._settle_sandbox_roles()
        self._web_runner = web.AppRunner(build_web_app(self.routes, self.health))
        await self._web_runner.setup()
        await _listen(
            web.TCPSite(self._web_runner, self.settings.http_host, self.settings.http_port)
        )
        for channel in self.channels.values():
            await channel.start()
        self._leadership = Leadership(self.engine, check_every=self.settings.leader_check_seconds)
        self._leading = asyncio.create_task(self._leadership.run(self._lead, self._step_down))

    @property
    def leading(self) -> bool:
        return self._scheduler is not None

    async def _lead(self) -> None:
        """Become the one instance that keeps time and delivers the outbox."""
        self.dispatcher = self.build_dispatcher()
        self._stop_dispatch = asyncio.Event()
        self._dispatching = asyncio.create_task(self.dispatcher.run(self._stop_dispatch))
        self._scheduler = build_scheduler(self.settings.timezone, self.jobs())
        self._scheduler.start()

    async def _step_down(self) -> None:
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._scheduler = None
        self._stop_dispatch.set()
        if self._dispatching is not None:
            with contextlib.suppress(Exception):
                await self._dispatching
            self._dispatching = None

    def build_dispatcher(self, telegram_rate: float | None = None) -> Dispatcher:
        """The outbox dispatcher, paced per channel (`telegram_rate`: bench/broadcast.py's
        ceiling run, beyond what the settings allow)."""
        limiters = dict(self.limiters)
        if telegram_rate is not None and "telegram" in limiters:
            limits = replace(limiters["telegram"].limits, per_second=telegram_rate)
            limiters["telegram"] = RateLimiter(limits)
        return Dispatcher(
            self.sessions,
            self.send_payload,
            limiters,
            is_group=self.is_group,
            api_calls=self.api_calls,
            lease_seconds=self.settings.outbox_lease_seconds,
        )

    def is_group(self, channel: str, chat_id: str) -> bool:
        target = self.channels.get(channel)
        return target is not None and target.is_group(chat_id)

    def api_calls(self, channel: str, payload: dict[str, Any]) -> int:
        target = self.channels.get(channel)
        if target is None or not payload.get("photos"):
            return 1
        return target.api_calls(Outbound.from_payload(payload))

    async def _settle_sandbox_roles(self) -> None:
        """Sandbox personas' roles never outlive the sandbox; a sandbox beside a platform warns."""
        web_chat = self.channels.get("web")
        sandbox = isinstance(web_chat, WebChatChannel) and web_chat.sandbox
        if sandbox and len(self.channels) > 1:
            log.warning("sandbox.with_platform", hint="anyone reaching /chat can moderate")
        if not sandbox:
            async with self.sessions() as session, session.begin():
                revoked = await revoke_grants_by(session, SANDBOX_GRANTOR)
            if revoked:
                log.info("sandbox.roles_revoked", count=revoked)

    async def stop(self) -> None:
        self.storage.close()
        if self._leading is not None:
            self._leading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._leading
        await self._step_down()
        if self._leadership is not None:
            await self._leadership.release()
        for channel in self.channels.values():
            await channel.stop()
        if self._web_runner is not None:
            await self._web_runner.cleanup()
        await self.engine.dispose()

    def jobs(self) -> list[PeriodicJob]:
        """What the leader does on a beat; each job reads the clock when it runs."""
        services, sessions = self.services, self.sessions

        def at_now(job: Callable[..., Awaitable[Any]], *args: Any) -> Job:
            async def run() -> None:
                await job(*args, datetime.now(UTC))

            return run

        return [
            PeriodicJob("staff-menus", self.sync_staff_menus, STAFF_MENUS_EVERY_SECONDS),
            PeriodicJob(
                "expire-drafts",
                at_now(expire_drafts, services, sessions),
                DRAFT_SWEEP_EVERY_SECONDS,
            ),
            PeriodicJob(
                "publication-slots",
                at_now(publication_tick, services, sessions),
                PUBLICATION_EVERY_SECONDS,
            ),
            PeriodicJob(
                "weekly-digest", at_now(digest_tick, services, sessions), PUBLICATION_EVERY_SECONDS
            ),
            PeriodicJob(
                "start-broadcasts",
                at_now(start_due, services, sessions),
                BROADCAST_START_EVERY_SECONDS,
            ),
            PeriodicJob("forget-receipts", self.forget_old_receipts, RECEIPT_SWEEP_EVERY_SECONDS),
            PeriodicJob(
                "forget-unused-photos",
                at_now(forget_unused_photos, services, sessions),
                PHOTO_SWEEP_EVERY_SECONDS,
            ),
            PeriodicJob(
                "broadcast-progress",
                at_now(report_progress, services, sessions, self.send_paced),
                PROGRESS_EVERY_SECONDS,
            ),
        ]


def build_runtime(settings: Settings) -> Runtime:
    """Wire the process: database, services, channels, web routes. No I/O happens here."""
    engine = db.make_engine(settings.database_url)
    runtime = Runtime(
        settings=settings,
        engine=engine,
        sessions=db.session_factory(engine),
        services=build_services(settings),
    )
    runtime.limiters = build_limiters(settings)
    handle = partial(handle_inbound, runtime.services, runtime.sessions)
    if settings.telegram_bot_token is not None:
        telegram = _build_telegram(settings, runtime, handle)
        runtime.channels[telegram.name] = telegram
    if settings.zalo_bot_token is not None:
        zalo = _build_zalo(settings, runtime, handle)
        runtime.channels[zalo.name] = zalo
    web_chat = _build_web_chat(
        settings, runtime, handle, sandbox=settings.sandbox or not runtime.channels
    )
    runtime.channels[web_chat.name] = web_chat
    runtime.routes.extend(web_chat.routes())
    return runtime


def build_limiters(settings: Settings) -> dict[str, RateLimiter]:
    """The pace of each channel that may run: the platform's limits, per bot and per chat."""
    telegram = Limits(
        per_second=settings.telegram_broadcast_rate,
        chat_interval=settings.telegram_chat_interval,
        group_interval=settings.telegram_group_interval,
    )
    return {
        "web": RateLimiter(WEB_CHAT_LIMITS),
        "telegram": RateLimiter(telegram),
        "zalo": RateLimiter(Limits(per_second=settings.zalo_broadcast_rate)),
    }


def _build_web_chat(
    settings: Settings, runtime: Runtime, handle: Any, *, sandbox: bool
) -> WebChatChannel:
    """The built-in web chat: always on; a sandbox with personas when nothing else runs."""
    return WebChatChannel(
        handle,
        runtime.sessions,
        runtime.services.media,
        dict(runtime.services.translations),
        secret=_server_secret(settings),
        default_locale=settings.default_locale,
        sandbox=sandbox,
        policy=WebChatPolicy(
            allowed_origins=tuple(settings.web_allowed_origins),
            cookie_secure=settings.cookie_secure,
            per_ip_per_minute=settings.messages_per_minute * 10,
            session_idle=timedelta(days=settings.web_session_idle_days),
            transcript_limit=settings.web_transcript_limit,
            sockets_per_session=settings.web_sockets_per_session,
            sockets_per_address=settings.web_sockets_per_address,
            trusted_proxies=tuple(settings.trusted_proxies),
        ),
    )


def _build_telegram(settings: Settings, runtime: Runtime, handle: Any) -> TelegramChannel:
    assert settings.telegram_bot_token is not None
    secret = settings.telegram_webhook_secret
    if settings.telegram_webhook_mode and secret is None:
        raise ConfigurationError(
            "TELEGRAM_WEBHOOK_URL is set but TELEGRAM_WEBHOOK_SECRET is not: "
            "set a long random secret (for example `openssl rand -hex 32`)."
        )
    inbox = InboxQueue(runtime.sessions, runtime.storage)
    channel = TelegramChannel(
        build_application(
            settings.telegram_bot_token.get_secret_value(),
            settings.telegram_api_base_url,
            inbox,
            webhook=settings.telegram_webhook_mode,
            before_polling=runtime.storage.wait_until_writable,
        ),
        inbox,
        handle,
        runtime.services.media,
        dict(runtime.services.translations),
        settings.default_locale,
        staff_menus=partial(runtime.staff_menus, "telegram"),
        on_migrated=partial(runtime.remember_migration, "telegram"),
        webhook_url=settings.telegram_webhook_url,
        webhook_secret=secret.get_secret_value() if secret else None,
        paid_broadcast=settings.telegram_paid_broadcast,
        limiter=runtime.limiters["telegram"],
        keep=partial(runtime.keep_replies, "telegram"),
        storage=runtime.storage,
    )
    if settings.telegram_webhook_url:
        path = urlsplit(settings.telegram_webhook_url).path or "/telegram/webhook"
        runtime.routes.append(when_storing(channel.webhook_route(path), runtime.storage.problem))
    return channel


def _server_secret(settings: Settings) -> bytes:
    """Signs the web chat's cookies and the media addresses (derived keys for each)."""
    secret = settings.web_chat_secret
    return load_or_create_secret(
        secret.get_secret_value() if secret else None, settings.media_dir.parent
    )


def _build_zalo(settings: Settings, runtime: Runtime, handle: Any) -> ZaloChannel:
    assert settings.zalo_bot_token is not None
    secret = settings.zalo_webhook_secret
    if settings.zalo_webhook_mode and (secret is None or len(secret.get_secret_value()) < 8):
        raise ConfigurationError(
            "ZALO_WEBHOOK_URL is set but ZALO_WEBHOOK_SECRET is not (or is shorter than 8 "
            "characters): set a long random secret (for example `openssl rand -hex 32`)."
        )
    media_urls = MediaUrls(
        runtime.services.media,
        _server_secret(settings),
        _public_base_url(settings),
        timedelta(hours=settings.media_url_valid_hours),
    )
    channel = ZaloChannel(
        ZaloClient(
            settings.zalo_bot_token.get_secret_value(),
            settings.zalo_api_base_url,
            media_allowed_hosts=frozenset(settings.zalo_media_allowed_hosts),
        ),
        handle,
        runtime.sessions,
        media_urls,
        dict(runtime.services.translations),
        settings.default_locale,
        webhook_url=settings.zalo_webhook_url,
        webhook_secret=secret.get_secret_value() if secret else None,
        limiter=runtime.limiters["zalo"],
        keep=partial(runtime.keep_replies, "zalo"),
        storage=runtime.storage,
    )
    runtime.routes.append(media_urls.route())
    if settings.zalo_webhook_url:
        path = urlsplit(settings.zalo_webhook_url).path or "/zalo/webhook"
        runtime.routes.append(channel.webhook_route(path))
    return channel


def _public_base_url(settings: Settings) -> str:
    """Where Zalo fetches the photos the bot sends: PUBLIC_BASE_URL, else the webhook's host."""
    if settings.public_base_url:
        return settings.public_base_url
    if settings.zalo_webhook_url:
        parts = urlsplit(settings.zalo_webhook_url)
        return f"{parts.scheme}://{parts.netloc}"
    log.warning("zalo.public_base_url.unset", hint="Zalo cannot fetch photos from this address")
    return f"http://{settings.http_host}:{settings.http_port}"


async def bootstrap_admins(sessions: SessionFactory, admin_ids: list[str]) -> None:
    """Grant `admin` to each `channel:id` of ADMIN_IDS (idempotent)."""
    async with sessions() as session, session.begin():
        for admin in admin_ids:
            channel, external_id = parse_person(admin)
            await grant_role(session, channel, external_id, Role.ADMIN, granted_by="ADMIN_IDS")


async def _listen(site: web.TCPSite) -> None:
    try:
        await site.start()
    except OSError as error:
        raise ConfigurationError(
            f"Cannot listen on {site.name}: {error.strerror}. Stop the program that "
            "uses that port, or choose another with HTTP_PORT (and HTTP_HOST)."
        ) from None


async def run(settings: Settings) -> None:
    """Start everything, print what runs where, and serve until SIGINT/SIGTERM."""
    runtime = build_runtime(settings)
    await runtime.start()
    _announce(runtime)
    try:
        await _wait_for_stop_signal()
    finally:
        await runtime.stop()
        log.info("stopped")


def _announce(runtime: Runtime) -> None:
    settings = runtime.settings
    modes = {
        name: "webhook" if webhook else "polling"
        for name, webhook in (
            ("telegram", settings.telegram_webhook_mode),
            ("zalo", settings.zalo_webhook_mode),
        )
    }
    base = f"http://{settings.http_host}:{settings.http_port}"
    print(
        f"Gương Sáng is running. Province: {runtime.services.communes.province_name} "
        f"({len(runtime.services.communes)} communes and wards)"
    )
    print(f"  database : {db.describe(settings.database_url)}")
    for name, channel in runtime.channels.items():
        if isinstance(channel, WebChatChannel):
            sandbox = " — sandbox: play every role" if channel.sandbox else ""
            print(f"  channel  : web chat at {base}/chat{sandbox}")
        else:
            print(f"  channel  : {name} ({modes[name]})")
    print(f"  health   : {base}/healthz")
    print("Press Ctrl+C to stop.", flush=True)
    log.info(
        "started",
        channels=sorted(runtime.channels),
        telegram_mode=modes["telegram"] if "telegram" in runtime.channels else None,
        zalo_mode=modes["zalo"] if "zalo" in runtime.channels else None,
        database=make_url(settings.database_url).get_backend_name(),
    )


async def _wait_for_stop_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
