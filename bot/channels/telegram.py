"""Telegram adapter: python-telegram-bot updates in, neutral `Outbound` messages out.

It only translates. Every decision is taken by `handlers/`; the adapter turns an
`Update` into an `Inbound`, hands it to the flows, and renders their replies with
the Bot API (HTML parse mode: the flows escape user text).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from functools import partial

import structlog
from aiohttp import web
from telegram import (
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    CallbackQuery,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.constants import MessageLimit, ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler

from bot.channels.base import InboundHandler, Keep, ReplySender, secret_matches, split_html
from bot.channels.json_body import json_object
from bot.channels.richtext import to_plain
from bot.channels.telegram_http import AiohttpRequest
from bot.channels.telegram_inbox import InboxQueue
from bot.channels.telegram_lean import SEND_TIMEOUT_SECONDS, TRANSIENT_RETRY_SECONDS, LeanSender
from bot.db import WriteProbe
from handlers.basics import COMMANDS
from handlers.context import Translator
from handlers.locks import KeyedLocks
from handlers.messages import (
    Attachment,
    Capabilities,
    Contact,
    Inbound,
    InboundKind,
    Outbound,
    Photo,
    split_command,
)
from handlers.ports import MediaProblem, MediaRejected, MediaStore
from scheduler.dispatcher import DeliveryFailed
from scheduler.limiter import RateLimiter

CHANNEL = "telegram"
StaffMenus = Callable[[], Awaitable[dict[str, list[tuple[str, str]]]]]
CAPABILITIES = Capabilities(
    inline_buttons=True,
    message_edits=True,
    albums=True,
    contact_request=True,
    max_text_length=MessageLimit.MAX_TEXT_LENGTH,
    max_caption_length=MessageLimit.CAPTION_LENGTH,
)
WEBHOOK_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
UNSUPPORTED_ATTRIBUTES = (
    "sticker",
    "video",
    "voice",
    "audio",
    "animation",
    "video_note",
    "location",
    "poll",
    "venue",
    "dice",
    "game",
    "story",
)

log = structlog.get_logger(__name__)


class TelegramChannel:
    name = CHANNEL
    capabilities = CAPABILITIES

    def __init__(
        self,
        application: Application,
        inbox: InboxQueue,
        handle: InboundHandler,
        media: MediaStore,
        translations: dict[str, Translator],
        default_locale: str,
        *,
        staff_menus: StaffMenus,
        on_migrated: Callable[[str, str], Awaitable[None]],
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        paid_broadcast: bool = False,
        limiter: RateLimiter | None = None,
        keep: Keep | None = None,
        storage: WriteProbe,
    ) -> None:
        self.application = application
        self._inbox = inbox
        self._paid_broadcast = paid_broadcast
        self._file_ids: dict[str, str] = {}
        self._uploading: dict[str, asyncio.Lock] = {}
        self._handle = handle
        self._storage = storage
        self._waiting = KeyedLocks()
        """A chat's updates wait here while the database cannot store them, in order."""
        self._staff_menus = staff_menus
        self._migrated = on_migrated
        self._published_menus: dict[str, list[tuple[str, str]]] = {}
        self._media = media
        self._translations = translations
        self._default_locale = default_locale
        self._webhook_url = webhook_url
        self._webhook_secret = webhook_secret
        self._replies = ReplySender(
            self.send,
            limiter=limiter,
            is_group=self.is_group,
            api_calls=self.api_calls,
            keep=keep,
        )
        self._lean = LeanSender(application.bot.base_url)
        application.add_handler(TypeHandler(Update, self._on_update))
        application.add_error_handler(self._on_error)

    # ---- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        await self.application.initialize()
        await self._inbox.replay(self.application.bot)
        await self._publish_commands()
        await self.sync_staff_menus()
        if self._webhook_url:
            await self.application.bot.set_webhook(
                self._webhook_url,
                secret_token=self._webhook_secret,
                allowed_updates=Update.ALL_TYPES,
            )
        else:
            assert self.application.updater is not None
            await self.application.bot.delete_webhook()
            await self.application.updater.start_polling(allowed_updates=Update.ALL_TYPES)
        await self.application.start()

    async def stop(self) -> None:
        if self.application.updater is not None and self.application.updater.running:
            await self.application.updater.stop()
        if self.application.running:
            await self.application.stop()
        await self._replies.flush()
        await self.application.shutdown()
        await self._lean.close()

    async def _on_migrated(self, old_chat_id: str, new_chat_id: str) -> None:
        log.info("telegram.chat.migrated", old=old_chat_id, new=new_chat_id)
        await self._migrated(old_chat_id, new_chat_id)

    async def sync_staff_menus(self) -> None:
        """Give moderators, admins and the moderators' group their extra commands."""
        translate = self._translations[self._default_locale]
        menus = await self._staff_menus()
        for chat_id, commands in menus.items():
            if self._published_menus.get(chat_id) == commands:
                continue
            await self.application.bot.set_my_commands(
                [BotCommand(name, translate(text)) for name, text in commands],
                scope=BotCommandScopeChat(int(chat_id)),
            )
            self._published_menus[chat_id] = commands
        for chat_id in set(self._published_menus) - set(menus):
            await self.application.bot.delete_my_commands(scope=BotCommandScopeChat(int(chat_id)))
            del self._published_menus[chat_id]

    async def _publish_commands(self) -> None:
        """The command menu, in Vietnamese by default and in English for English clients."""
        for language, translate in self._translations.items():
            commands = [BotCommand(name, translate(text)) for name, text in COMMANDS]
            language_code = None if language == "vi" else language
            await self.application.bot.set_my_commands(
                commands, scope=BotCommandScopeDefault(), language_code=language_code
            )

    # ---- webhook --------------------------------------------------------------------

    def webhook_route(self, path: str) -> web.RouteDef:
        return web.post(path, self._on_webhook)

    async def _on_webhook(self, request: web.Request) -> web.Response:
        if not secret_matches(request, WEBHOOK_SECRET_HEADER, self._webhook_secret):
            log.warning("telegram.webhook.bad_secret", remote=request.remote)
            return web.Response(status=403)
        body = await json_object(request)
        update_id = body.get("update_id") if body is not None else None
        if body is None or type(update_id) is not int or not 0 <= update_id < 2**63:
            return web.Response(status=400)  # not an update: nothing to keep or retry
        try:
            update = Update.de_json(body, self.application.bot)
        except (ValueError, TypeError, KeyError, AttributeError):
            return web.Response(status=400)
        await self._inbox.take(update)  # kept first; a database that takes no writes: 503
        return web.Response()

    # ---- inbound --------------------------------------------------------------------

    async def _on_update(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        """Handle a kept update and mark it handled, also when its handling failed (logged):
        only a killed process leaves an update to handle again at the next start."""
        try:
            await self._handle_update(update)
        finally:
            await self._inbox.handled(update.update_id)

    async def _handle_update(self, update: Update) -> None:
        if update.message is not None and update.message.migrate_to_chat_id is not None:
            await self._on_migrated(
                str(update.message.chat.id), str(update.message.migrate_to_chat_id)
            )
            return
        inbound = self.to_inbound(update)
        if inbound is None:
            if update.callback_query is not None:
                await self._answer_button(update.callback_query, "")
            log.debug("telegram.update.ignored", update_id=update.update_id)
            return
        structlog.contextvars.bind_contextvars(update_id=inbound.update_id, channel=CHANNEL)
        try:
            async with self._waiting.hold(inbound.chat_id):  # keeps a chat's order meanwhile
                replies = await self._storage.retry(
                    partial(self._handle, inbound, CAPABILITIES), "telegram.update"
                )
            if update.callback_query is None:
                await self._replies.deliver(replies)
                return
            toast = next((r for r in replies if r.toast), None)
            await asyncio.gather(
                self._answer_button(update.callback_query, toast.text if toast else ""),
                self._replies.deliver([r for r in replies if r is not toast]),
            )
        finally:
            structlog.contextvars.unbind_contextvars("update_id", "channel")

    async def _answer_button(self, query: CallbackQuery, text: str) -> None:
        """Answer a button press (Telegram keeps a spinner until then), with a pop-up if given."""
        await self._lean.answer_button(query.id, to_plain(text)[:200])

    def to_inbound(self, update: Update) -> Inbound | None:
        """The neutral form of `update`; None for what is not for the flows, and for an
        update that breaks the Bot API's types (a number for a text, no chat): only a
        forger sends those, and they must not reach the flows."""
        try:
            inbound = self._translate(update)
        except (AttributeError, TypeError, ValueError):
            inbound = None
        if inbound is None or not _well_typed(inbound):
            return None
        return inbound

    def _translate(self, update: Update) -> Inbound | None:
        query = update.callback_query
        if query is not None:
            if query.message is None or query.data is None:
                return None
            chat = query.message.chat
            return self._base(
                update,
                str(chat.id),
                InboundKind.BUTTON,
                payload=query.data,
                in_group=chat.type != "private",
            )
        message = update.message
        if message is None or message.from_user is None:
            return None
        return self._message_inbound(update, message)

    def _message_inbound(self, update: Update, message: Message) -> Inbound:
        chat_id = str(message.chat.id)
        if message.text is not None:
            return self._text_inbound(update, chat_id, message.text)
        if message.photo:
            largest = message.photo[-1]
            return self._base(
                update,
                chat_id,
                InboundKind.PHOTO,
                attachment=self._attachment(
                    largest.file_id, largest.file_size, "image/jpeg", None, message.media_group_id
                ),
            )
        if message.document is not None:
            doc = message.document
            return self._base(
                update,
                chat_id,
                InboundKind.DOCUMENT,
                attachment=self._attachment(
                    doc.file_id, doc.file_size, doc.mime_type, doc.file_name, message.media_group_id
                ),
            )
        if message.contact is not None:
            assert message.from_user is not None
            contact = Contact(
                phone=message.contact.phone_number,
                name=" ".join(
                    filter(None, [message.contact.first_name, message.contact.last_name])
                ),
                is_own=message.contact.user_id == message.from_user.id,
            )
            return self._base(update, chat_id, InboundKind.CONTACT, contact=contact)
        kind = next((a for a in UNSUPPORTED_ATTRIBUTES if getattr(message, a, None)), "other")
        return self._base(update, chat_id, InboundKind.UNSUPPORTED, unsupported_type=kind)

    def _text_inbound(self, update: Update, chat_id: str, text: str) -> Inbound:
        command = split_command(text)
        if command is not None:
            name, args = command
            return self._base(
                update, chat_id, InboundKind.COMMAND, command=name, args=args, text=text
            )
        return self._base(update, chat_id, InboundKind.TEXT, text=text)

    def _base(self, update: Update, chat_id: str, kind: InboundKind, **fields: object) -> Inbound:
        user = update.effective_user
        assert user is not None
        chat = update.effective_chat
        fields.setdefault("in_group", chat is not None and chat.type != "private")
        return Inbound(
            channel=CHANNEL,
            chat_id=chat_id,
            user_id=str(user.id),
            update_id=str(update.update_id),
            kind=kind,
            display_name=user.full_name,
            language_code=user.language_code,
            **fields,  # type: ignore[arg-type]
        )

    def _attachment(
        self,
        file_id: str,
        size: int | None,
        mime_type: str | None,
        file_name: str | None,
        group_id: str | None,
    ) -> Attachment:
        return Attachment(
            file_id=file_id,
            size=size,
            mime_type=mime_type,
            file_name=file_name,
            download=self._downloader(file_id),
            group_id=group_id,
        )

    def _downloader(self, file_id: str) -> Callable[[int], Awaitable[bytes]]:
        async def download(max_bytes: int) -> bytes:
            try:
                telegram_file = await self.application.bot.get_file(file_id)
                if telegram_file.file_size is not None and telegram_file.file_size > max_bytes:
                    raise MediaRejected(MediaProblem.TOO_LARGE)
                return bytes(await telegram_file.download_as_bytearray())
            except BadRequest as error:  # "file is too big": over the Bot API's 20 MB
                log.info("telegram.download.refused", error=str(error))
                raise MediaRejected(MediaProblem.TOO_LARGE) from error

        return download

    # ---- outbound -------------------------------------------------------------------

    def is_group(self, chat_id: str) -> bool:
        """Groups, supergroups and channels have negative ids (or a @name) on Telegram."""
        return chat_id.startswith(("-", "@"))

    def api_calls(self, outbound: Outbound) -> int:
        """An album (or single photo) per ten photos, then the text's messages."""
        albums = -(-len(outbound.photos) // 10)
        return albums + len(split_html(outbound.text, CAPABILITIES.max_text_length))

    async def send(self, outbound: Outbound) -> str:
        """Render `outbound` with the Bot API; returns the id of the last message sent.

        A message may take several calls (an album per ten photos, then the text in up
        to 4,096-character parts). They go out in order from `outbound.skip_parts`; when
        one fails, DeliveryFailed says how many are done, so a retry never repeats them.
        """
        done = outbound.skip_parts
        try:
            if outbound.edit_message_id:
                return await self._edit(outbound)
            message_id = ""
            for part in self._parts(outbound)[done:]:
                message_id = await part() or message_id
                done += 1
            return message_id
        except ChatMigrated as error:
            await self._on_migrated(outbound.chat_id, str(error.new_chat_id))
            outbound.chat_id, outbound.skip_parts = str(error.new_chat_id), done
            return await self.send(outbound)
        except DeliveryFailed as failure:  # from the lean path, which knows no parts
            failure.parts_sent = done
            _note_maybe_sent(outbound, failure)
            raise
        except RetryAfter as error:
            retry_in = _seconds(error.retry_after)
            raise DeliveryFailed(str(error), retry_in, parts_sent=done) from error
        except Forbidden as error:
            raise DeliveryFailed(str(error), None, recipient_gone=True) from error
        except BadRequest as error:
            log.error("telegram.send.bad_request", chat_id=outbound.chat_id, error=str(error))
            raise DeliveryFailed(str(error), None, parts_sent=done) from error
        except (NetworkError, TelegramError) as error:
            transient = DeliveryFailed(
                str(error),
                TRANSIENT_RETRY_SECONDS,
                backoff=True,
                parts_sent=done,
                maybe_sent=isinstance(error, TimedOut),
            )
            _note_maybe_sent(outbound, transient)
            raise transient from error

    def _parts(self, outbound: Outbound) -> list[Callable[[], Awaitable[str]]]:
        """The calls that send `outbound`, in order; each returns a message id or ""."""
        albums = [outbound.photos[i : i + 10] for i in range(0, len(outbound.photos), 10)]
        chunks = split_html(outbound.text, CAPABILITIES.max_text_length)
        parts: list[Callable[[], Awaitable[str]]] = [
            partial(self._send_album, outbound, album) for album in albums
        ]
        parts += [
            partial(self._send_chunk, outbound, chunk, last=i == len(chunks) - 1)
            for i, chunk in enumerate(chunks)
        ]
        return parts

    async def _edit(self, outbound: Outbound) -> str:
        try:
            await self.application.bot.edit_message_text(
                chat_id=outbound.chat_id,
                message_id=int(outbound.edit_message_id),
                text=split_html(outbound.text, CAPABILITIES.max_text_length)[0],
                parse_mode=ParseMode.HTML,
                reply_markup=_markup(outbound),
                disable_web_page_preview=True,
            )
        except BadRequest as error:
            if "not modified" not in str(error).lower():
                raise
        return outbound.edit_message_id

    async def _send_chunk(self, outbound: Outbound, chunk: str, *, last: bool) -> str:
        markup = _markup(outbound) if last else None
        return await self._lean.send_text(
            outbound.chat_id,
            chunk,
            reply_markup=markup.to_dict() if markup is not None else None,
            paid_broadcast=bool(self._paid(outbound)),
        )

    def _paid(self, outbound: Outbound) -> bool | None:
        return True if outbound.bulk and self._paid_broadcast else None

    async def _send_album(self, outbound: Outbound, chunk: list[Photo]) -> str:
        """Up to ten photos: a single photo, or an album (the text follows separately).

        Each image is uploaded once: the `file_id` Telegram returns is reused for every
        later send (a broadcast to thousands uploads each photo a single time).
        """
        async with contextlib.AsyncExitStack() as uploads:
            for sha256 in sorted({p.sha256 for p in chunk} - set(self._file_ids)):
                lock = self._uploading.setdefault(sha256, asyncio.Lock())
                await uploads.enter_async_context(lock)  # in one order: no deadlock
            media = [
                InputMediaPhoto(
                    self._file_ids.get(photo.sha256)
                    or self._media.path_of(photo.sha256).read_bytes(),
                    caption=photo.caption or None,
                    parse_mode=ParseMode.HTML,
                )
                for photo in chunk
            ]
            if len(media) == 1:
                sent = [
                    await self.application.bot.send_photo(
                        outbound.chat_id,
                        media[0].media,
                        caption=media[0].caption,
                        parse_mode=ParseMode.HTML,
                        allow_paid_broadcast=self._paid(outbound),
                    )
                ]
            else:
                sent = list(
                    await self.application.bot.send_media_group(
                        outbound.chat_id, media, allow_paid_broadcast=self._paid(outbound)
                    )
                )
            for photo, message in zip(chunk, sent, strict=False):
                if message.photo:
                    self._file_ids[photo.sha256] = message.photo[-1].file_id
        return ""

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        update_id = update.update_id if isinstance(update, Update) else None
        log.error("telegram.update.failed", update_id=update_id, exc_info=context.error)


def _well_typed(inbound: Inbound) -> bool:
    """Whether the texts of `inbound` are texts and its sizes numbers."""
    texts: list[object] = [inbound.display_name, inbound.text, inbound.payload]
    optional_texts: list[object] = [inbound.language_code]
    size: object = None
    if inbound.attachment is not None:
        attachment = inbound.attachment
        texts.append(attachment.file_id)
        optional_texts += [attachment.mime_type, attachment.file_name, attachment.group_id]
        size = attachment.size
    if inbound.contact is not None:
        texts += [inbound.contact.phone, inbound.contact.name]
    return (
        all(isinstance(text, str) for text in texts)
        and all(text is None or isinstance(text, str) for text in optional_texts)
        and (size is None or isinstance(size, int))
    )


def _markup(
    outbound: Outbound,
) -> InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | ForceReply | None:
    if outbound.buttons:
        return InlineKeyboardMarkup(
            [
                [InlineKeyboardButton(b.label, callback_data=b.payload) for b in row]
                for row in outbound.buttons
            ]
        )
    if outbound.request_contact_label:
        return ReplyKeyboardMarkup(
            [[KeyboardButton(outbound.request_contact_label, request_contact=True)]],
            resize_keyboard=True,
            one_time_keyboard=True,
        )
    if outbound.remove_keyboard:
        return ReplyKeyboardRemove()
    if outbound.force_reply:
        return ForceReply()
    return None


def _note_maybe_sent(outbound: Outbound, failure: DeliveryFailed) -> None:
    """Log a send that may have gone through although it failed: its retry is then an
    in-flight duplicate (each such line counts one at most; an edit repeats harmlessly)."""
    if failure.maybe_sent and failure.retry_in is not None and not outbound.edit_message_id:
        log.warning(
            "telegram.send.maybe_duplicate",
            chat_id=outbound.chat_id,
            bulk=outbound.bulk,
            reason=str(failure),
        )


def _seconds(retry_after: object) -> float:
    total_seconds = getattr(retry_after, "total_seconds", None)
    return float(total_seconds()) if callable(total_seconds) else float(retry_after)  # type: ignore[arg-type]


def build_application(
    token: str,
    api_base_url: str,
    inbox: InboxQueue,
    *,
    webhook: bool,
    before_polling: Callable[[], Awaitable[None]] | None = None,
) -> Application:
    """The python-telegram-bot Application, pointed at `api_base_url` (tests use a fake),
    taking its updates through `inbox`.

    `before_polling` is awaited before each `getUpdates`: while the database cannot store
    updates, polling waits, so Telegram keeps them (the offset is not advanced past them).
    """
    builder = (
        ApplicationBuilder()
        .token(token)
        .update_queue(inbox)
        .base_url(f"{api_base_url.rstrip('/')}/bot")
        .base_file_url(f"{api_base_url.rstrip('/')}/file/bot")
        .concurrent_updates(8)
        .request(AiohttpRequest(connections=64, read_timeout=SEND_TIMEOUT_SECONDS))
        .get_updates_request(AiohttpRequest(connections=1, before_each=before_polling))
    )
    if webhook:
        builder = builder.updater(None)
    return builder.build()
