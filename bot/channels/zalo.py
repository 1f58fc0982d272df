"""Zalo adapter: Zalo Bot API events in, neutral `Outbound` messages out.

Like every adapter it only translates. Zalo has no buttons, edits, albums or usable
groups: buttons become numbered menus (`bot/channels/menus.py`), an edit is sent as a
new message, photos go out by URL (signed addresses served by the bot itself,
`bot/media_urls.py`), and text is plain. Events arrive by webhook (production) or by
long polling (development); each message is taken in once (`models/receipts.py`), then
handled in the background, one at a time per chat.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

import structlog
from aiohttp import web

from bot.channels.base import InboundHandler, Keep, ReplySender, secret_matches, split_text
from bot.channels.json_body import json_object
from bot.channels.menus import OUT_OF_RANGE, OutOfRange, choose, numbered
from bot.channels.richtext import to_plain
from bot.channels.zalo_api import RATE_LIMITED_RETRY_SECONDS, ZaloApiError, ZaloClient
from bot.db import WriteProbe, storage_problem
from bot.media_urls import MediaUrls
from bot.server import RETRY_AFTER_SECONDS
from handlers.context import Translator
from handlers.locks import KeyedLocks
from handlers.messages import (
    Attachment,
    Capabilities,
    Inbound,
    InboundKind,
    Outbound,
    split_command,
)
from handlers.router import SessionFactory
from models.menus import menu_of, remember_menu, supersede_menu
from models.people import find_person
from models.receipts import first_delivery
from scheduler.dispatcher import DeliveryFailed
from scheduler.limiter import RateLimiter

CHANNEL = "zalo"
MAX_TEXT_LENGTH = 2000
CAPABILITIES = Capabilities(
    inline_buttons=False,
    message_edits=False,
    albums=False,
    contact_request=False,
    max_text_length=MAX_TEXT_LENGTH,
    max_caption_length=MAX_TEXT_LENGTH,
)
WEBHOOK_SECRET_HEADER = "X-Bot-Api-Secret-Token"  # noqa: S105 - a header name
POLL_TIMEOUT_SECONDS = 30
POLL_BACKOFF_SECONDS = 5.0
POLL_RESTART_SECONDS = 1.0
REPEATED_FAILURE_PAUSE_SECONDS = 1.0
SERVER_ERROR_RETRY_SECONDS = 10.0
GIVE_UP_STATUSES = frozenset({400, 401, 403, 404})
RECIPIENT_GONE_STATUSES = frozenset({403, 404})
"""The person blocked the bot or is unknown: their subscription ends."""
"""Bad request, bad token, blocked or unknown user: sending again would not help."""
MESSAGE_EVENT_PREFIX = "message."
"""Zalo names message events `message.<kind>.received`; others (a follow…) are not ours."""
UNSUPPORTED_EVENTS = {
    "message.sticker.received": "sticker",
    "message.unsupported.received": "other",
}

log = structlog.get_logger(__name__)


class ZaloChannel:
    name = CHANNEL
    capabilities = CAPABILITIES

    def __init__(
        self,
        client: ZaloClient,
        handle: InboundHandler,
        sessions: SessionFactory,
        media_urls: MediaUrls,
        translations: dict[str, Translator],
        default_locale: str,
        *,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        poll_timeout: int = POLL_TIMEOUT_SECONDS,
        limiter: RateLimiter | None = None,
        keep: Keep | None = None,
        storage: WriteProbe,
    ) -> None:
        self.client = client
        self._handle = handle
        self._storage = storage
        self._sessions = sessions
        self._media_urls = media_urls
        self._translations = translations
        self._default_locale = default_locale
        self._webhook_url = webhook_url
        self._webhook_secret = webhook_secret
        self._poll_timeout = poll_timeout
        self._chats = KeyedLocks()
        self._tasks: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._poll_problem: str | None = None
        self._replies = ReplySender(self.send, limiter=limiter, api_calls=self.api_calls, keep=keep)

    # ---- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        me = await self.client.get_me()
        log.info("zalo.connected", bot_id=me.get("id"), name=me.get("account_name"))
        if self._webhook_url:
            assert self._webhook_secret is not None
            await self.client.set_webhook(self._webhook_url, self._webhook_secret)
            info = await self.client.get_webhook_info()
            log.info("zalo.webhook.set", url=info.get("url"))
        else:
            await self.client.delete_webhook()
            self._poller = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._replies.flush()
        await self.client.close()

    # ---- receiving: webhook and long polling ------------------------------------------

    def webhook_route(self, path: str) -> web.RouteDef:
        return web.post(path, self._on_webhook)

    async def _on_webhook(self, request: web.Request) -> web.Response:
        if not secret_matches(request, WEBHOOK_SECRET_HEADER, self._webhook_secret):
            log.warning("zalo.webhook.bad_secret", remote=request.remote)
            return web.Response(status=403)
        update = _unwrapped(await json_object(request))
        if update is None:
            return web.Response(status=400)
        problem = await self._take(update)
        if problem is not None:
            log.warning("zalo.webhook.not_stored", problem=problem)
            retry_after = {"Retry-After": str(RETRY_AFTER_SECONDS)}
            return web.json_response({"ok": False}, status=503, headers=retry_after)
        return web.json_response({"ok": True})

    @property
    def problem(self) -> str | None:
        """Why this channel receives nothing now (long polling stopped), or None."""
        return self._poll_problem

    async def _poll(self) -> None:
        """Long polling, kept alive: should the loop die anyway, it starts again."""
        while True:
            try:
                await self._poll_updates()
            except Exception as error:
                self._poll_problem = f"polling stopped ({type(error).__name__})"
                log.exception("zalo.poll.stopped")
                await asyncio.sleep(POLL_RESTART_SECONDS)

    async def _poll_updates(self) -> None:
        failed_in_a_row = 0
        while True:
            try:
                updates = await self.client.get_updates(self._poll_timeout)
            except ZaloApiError as error:
                log.warning("zalo.poll.failed", error=str(error))
                await asyncio.sleep(POLL_BACKOFF_SECONDS)
                continue
            self._poll_problem = None
            for update in updates:
                failed_in_a_row = 0 if await self._take_polled(update) else failed_in_a_row + 1
                if failed_in_a_row > 1:
                    await asyncio.sleep(REPEATED_FAILURE_PAUSE_SECONDS)

    async def _take_polled(self, update: dict[str, Any]) -> bool:
        """Take a polled `update` in; False when it failed (logged, then dropped). Zalo
        forgets an update once polled: while the database cannot take it in, wait (longer
        each time) and try again rather than go on to the next one."""
        try:
            await self._storage.retry(partial(self._accept, update), "zalo.update")
        except Exception:
            log.exception("zalo.update.failed", event_name=str(update.get("event_name")))
            return False
        return True

    async def _take(self, update: dict[str, Any]) -> str | None:
        """Take a webhook's `update` in; why not when the database could not (Zalo must
        send it again). Any other failure is logged: one bad update never stops others."""
        try:
            await self._accept(update)
        except Exception as error:
            problem = storage_problem(error)
            if problem is not None:
                return problem
            log.exception("zalo.update.failed", event_name=str(update.get("event_name")))
        return None

    async def _accept(self, update: dict[str, Any]) -> None:
        """Take a message in once (a repeated delivery is dropped), then handle it apart."""
        message = update.get("message")
        event_name = str(update.get("event_name", ""))
        if not isinstance(message, dict) or not _is_message(event_name, message):
            log.info("zalo.update.ignored", event_name=event_name)
            return
        async with self._sessions() as session, session.begin():
            fresh = await first_delivery(
                session, CHANNEL, str(message["message_id"]), datetime.now(UTC)
            )
        if not fresh:
            log.info("zalo.update.duplicate", message_id=str(message["message_id"]))
            return
        log.info("zalo.message.received", chat_id=_field(message, "chat", "id"))
        task = asyncio.create_task(self._process(update))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _process(self, update: dict[str, Any]) -> None:
        message = update["message"]
        chat_id = str(_field(message, "chat", "id") or _field(message, "from", "id"))
        update_id = str(message["message_id"])
        structlog.contextvars.bind_contextvars(update_id=update_id, channel=CHANNEL)
        try:
            async with self._chats.hold(chat_id):
                inbound = await self.to_inbound(update)
                if inbound is None:
                    return
                if inbound.kind is InboundKind.PHOTO:
                    await self._show_typing(chat_id)
                replies = await self._storage.retry(
                    partial(self._handle, inbound, CAPABILITIES), "zalo.update"
                )
                await self._replies.deliver(replies)
        except Exception:
            log.exception("zalo.update.failed")
        finally:
            structlog.contextvars.unbind_contextvars("update_id", "channel")

    # ---- inbound ------------------------------------------------------------------------

    async def to_inbound(self, update: dict[str, Any]) -> Inbound | None:
        """The neutral form of a Zalo event; None for what is not for the flows."""
        message = update["message"]
        if str(_field(message, "chat", "chat_type") or "PRIVATE").upper() != "PRIVATE":
            return None
        user_id = str(_field(message, "from", "id") or "")
        chat_id = str(_field(message, "chat", "id") or user_id)
        if not user_id:
            return None
        sender = message.get("from") or {}
        base = Inbound(
            channel=CHANNEL,
            chat_id=chat_id,
            user_id=user_id,
            update_id=str(message["message_id"]),
            kind=InboundKind.TEXT,
            display_name=str(
                sender.get("display_name") or sender.get("name") or sender.get("first_name") or ""
            ),
        )
        event = str(update.get("event_name", ""))
        photo_url = message.get("photo_url") or message.get("photo")
        if isinstance(photo_url, str) and photo_url:
            attachment = Attachment(
                file_id=f"zalo-{message['message_id']}",
                size=None,
                mime_type=None,
                file_name=None,
                download=self._downloader(photo_url),
            )
            return replace(base, kind=InboundKind.PHOTO, attachment=attachment)
        text = message.get("text")
        if event in UNSUPPORTED_EVENTS or not isinstance(text, str):
            kind = UNSUPPORTED_EVENTS.get(event, "sticker" if message.get("sticker") else "other")
            return replace(base, kind=InboundKind.UNSUPPORTED, unsupported_type=kind)
        command = split_command(text)
        if command is not None:
            name, args = command
            return replace(base, kind=InboundKind.COMMAND, command=name, args=args, text=text)
        choice = await self._menu_choice(chat_id, text)
        if isinstance(choice, OutOfRange):
            await self._say_out_of_range(chat_id, choice)
            return None
        if choice is not None:
            return replace(base, kind=InboundKind.BUTTON, payload=choice, text=text)
        return replace(base, text=text)

    async def _show_typing(self, chat_id: str) -> None:
        """A photo takes a moment to receive and check: show that the bot is at it."""
        try:
            await self.client.send_chat_action(chat_id, "typing")
        except ZaloApiError as error:
            log.info("zalo.chat_action.failed", error=str(error))

    def _downloader(self, url: str) -> Callable[[int], Awaitable[bytes]]:
        async def download(max_bytes: int) -> bytes:
            return await self.client.download(url, max_bytes)

        return download

    async def _menu_choice(self, chat_id: str, text: str) -> str | OutOfRange | None:
        async with self._sessions() as session:
            menu = await menu_of(session, CHANNEL, chat_id)
        if menu is None or not menu.options:
            return None
        return choose(text, menu.options, words=not menu.superseded)

    async def _say_out_of_range(self, chat_id: str, choice: OutOfRange) -> None:
        translate = await self._translator(chat_id)
        text = translate(OUT_OF_RANGE).format(number=choice.number, count=choice.count)
        await self._replies.deliver([Outbound(chat_id=chat_id, text=text)])

    async def _translator(self, chat_id: str) -> Translator:
        async with self._sessions() as session:
            person = await find_person(session, CHANNEL, chat_id)
        locale = person.locale if person else self._default_locale
        return self._translations.get(locale) or self._translations[self._default_locale]

    # ---- outbound -----------------------------------------------------------------------

    def is_group(self, chat_id: str) -> bool:
        """The Zalo Bot API has no usable groups: every chat is a person's."""
        return False

    def api_calls(self, outbound: Outbound) -> int:
        """One call per photo (by URL), then the text's messages."""
        text = to_plain(outbound.text)
        return len(outbound.photos) + (len(split_text(text, MAX_TEXT_LENGTH)) if text else 0)

    async def send(self, outbound: Outbound) -> str:
        """Photos by URL, then the text (buttons as a numbered menu); an edit is sent anew.

        Calls go out in order from `outbound.skip_parts`; a failure says how many are done,
        so a retry never sends a photo twice.
        """
        done = outbound.skip_parts
        try:
            message_id = ""
            for photo in outbound.photos[done:]:
                caption = to_plain(photo.caption)[:MAX_TEXT_LENGTH]
                url = self._media_urls.url_for(photo.sha256)
                message_id = await self.client.send_photo(outbound.chat_id, url, caption)
                done += 1
            text = await self._with_menu(outbound)
            chunks = split_text(text, MAX_TEXT_LENGTH) if text else []
            for chunk in chunks[done - len(outbound.photos) :]:
                message_id = await self.client.send_message(outbound.chat_id, chunk)
                done += 1
            return message_id
        except ZaloApiError as error:
            raise _failure(error, done) from None

    async def _with_menu(self, outbound: Outbound) -> str:
        """The plain text to send; its buttons, if any, become the chat's numbered menu."""
        text = to_plain(outbound.text)
        if not outbound.buttons:
            if not outbound.bulk:
                async with self._sessions() as session, session.begin():
                    await supersede_menu(session, CHANNEL, outbound.chat_id)
            return text
        translate = await self._translator(outbound.chat_id)
        text, options = numbered(text, outbound.buttons, translate)
        async with self._sessions() as session, session.begin():
            await remember_menu(session, CHANNEL, outbound.chat_id, options, datetime.now(UTC))
        return text


def _failure(error: ZaloApiError, done: int) -> DeliveryFailed:
    """Zalo's error as the outbox understands it: when to try again (after `done` calls of
    the message went through), or never."""
    if error.status == 429:
        retry_in = error.retry_after or RATE_LIMITED_RETRY_SECONDS
        return DeliveryFailed(str(error), retry_in=retry_in, parts_sent=done)
    if error.status in GIVE_UP_STATUSES:
        log.warning("zalo.send.refused", error=str(error))
        return DeliveryFailed(
            str(error), retry_in=None, recipient_gone=error.status in RECIPIENT_GONE_STATUSES
        )
    if error.retry_after:
        return DeliveryFailed(str(error), retry_in=error.retry_after, parts_sent=done)
    return DeliveryFailed(
        str(error), retry_in=SERVER_ERROR_RETRY_SECONDS, backoff=True, parts_sent=done
    )


def _unwrapped(body: object) -> dict[str, Any] | None:
    """The event of a webhook body, wrapped (`{"ok": true, "result": {...}}`) or bare."""
    if not isinstance(body, dict):
        return None
    result = body.get("result")
    return result if isinstance(result, dict) and "ok" in body else body


def _is_message(event_name: str, message: dict[str, Any]) -> bool:
    """A message event carrying a message with an id; anything else is ignored."""
    return event_name.startswith(MESSAGE_EVENT_PREFIX) and bool(message.get("message_id"))


def _field(message: dict[str, Any], part: str, key: str) -> Any:
    value = message.get(part)
    return value.get(key) if isinstance(value, dict) else None
