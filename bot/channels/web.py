"""Web chat adapter: a page served by the project's own aiohttp server, over a WebSocket.

Like every adapter it only translates: browser messages become `Inbound`, the flows'
`Outbound` become JSON the page renders with DOM text nodes (never as HTML). Identity is
a random session id in a signed, HTTP-only cookie. The transcript is kept in the
database, so a reloaded page shows the conversation again.

In sandbox mode (no platform token, or SANDBOX=1) the page also offers personas, so one
person can play a citizen, a second citizen, a moderator and a subscriber on one
machine; in production the web chat serves citizens only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import structlog
from aiohttp import BodyPartReader, WSMsgType, hdrs, web
from sqlalchemy.exc import DBAPIError

from bot.channels.base import InboundHandler, ReplySender
from bot.channels.richtext import to_segments
from bot.channels.web_assets import REVALIDATE, WebAssets
from bot.db import storage_problem
from handlers.context import Translator
from handlers.flood import FloodGuard, Verdict
from handlers.messages import (
    Attachment,
    Capabilities,
    Inbound,
    InboundKind,
    Outbound,
    split_command,
)
from handlers.ports import MediaStore
from handlers.router import SessionFactory
from handlers.text import N_
from models.people import find_person, grant_role
from models.tables import Role, WebMessage
from models.webchat import append_message, edit_message, recent_messages

CHANNEL = "web"
CAPABILITIES = Capabilities(
    inline_buttons=True, message_edits=True, albums=True, contact_request=False, text_prefill=True
)
COOKIE = "gs_session"
SANDBOX_GRANTOR = "sandbox"
"""Roles granted to sandbox personas carry this mark, and are revoked outside the sandbox."""
COOKIE_MAX_AGE = 365 * 24 * 3600
PAGE_DIR = Path(__file__).resolve().parent.parent / "web"
MAX_TEXT_CHARS = 4096
MAX_FRAME_BYTES = 64 * 1024
UPLOAD_CHUNK = 64 * 1024

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Persona:
    key: str
    label: str
    role: Role | None = None


CITIZEN = Persona("citizen", N_("Citizen"))
SANDBOX_PERSONAS = (
    CITIZEN,
    Persona("citizen2", N_("Second citizen")),
    Persona("moderator", N_("Moderator"), Role.MODERATOR),
    Persona("subscriber", N_("Subscriber")),
    Persona("admin", N_("Administrator"), Role.ADMIN),
)

UI_TEXTS = {
    "title": N_("Gương Sáng — good people, good deeds"),
    "placeholder": N_("Type a message…"),
    "send": N_("Send"),
    "photo": N_("Send a photo"),
    "connecting": N_("Connecting…"),
    "offline": N_("Connection lost. Reconnecting…"),
    "uploading": N_("Sending the photo…"),
    "upload_failed": N_("The photo could not be sent. Please try again."),
    "throttled": N_("Too many messages from this network. Please wait a moment."),
    "you": N_("You"),
    "bot": N_("Gương Sáng"),
    "personas": N_("Sandbox: play a role"),
    "switch": N_("Switch"),
    "photo_alt": N_("Photo"),
    "tray": N_("Photos to send"),
    "remove": N_("Remove photo"),
    "send_photos": N_("Send photos ({count})"),
    "cancel": N_("Cancel"),
    "unavailable": N_(
        "Your message could not be saved just now. Please send it again in a few minutes."
    ),
}


class SessionSigner:
    """Signs and checks session ids for the cookie (HMAC-SHA256, compared in constant time)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _signature(self, session_id: str) -> str:
        digest = hmac.new(self._secret, session_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, session_id: str) -> str:
        return f"{session_id}.{self._signature(session_id)}"

    def verify(self, cookie: str | None) -> str | None:
        if not cookie or "." not in cookie:
            return None
        session_id, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(signature.encode(), self._signature(session_id).encode()):
            return None
        return session_id


class WebChatChannel:
    name = CHANNEL
    capabilities = CAPABILITIES

    def __init__(
        self,
        handle: InboundHandler,
        sessions: SessionFactory,
        media: MediaStore,
        translations: dict[str, Translator],
        *,
        secret: bytes,
        default_locale: str,
        sandbox: bool,
        allowed_origins: list[str],
        cookie_secure: bool,
        per_ip_per_minute: int,
    ) -> None:
        self._handle = handle
        self._sessions = sessions
        self._media = media
        self._translations = translations
        self._signer = SessionSigner(secret)
        self._default_locale = default_locale
        self.sandbox = sandbox
        self._allowed_origins = {origin.rstrip("/") for origin in allowed_origins}
        self._cookie_secure = cookie_secure
        self._ip_guard = FloodGuard(per_ip_per_minute)
        self._sockets: dict[str, set[web.WebSocketResponse]] = {}
        self._replies = ReplySender(self.send)
        self._assets = WebAssets(PAGE_DIR)

    # ---- lifecycle and routes ------------------------------------------------

    async def start(self) -> None:
        """Nothing to connect to: the routes are served by the project's web server."""

    async def stop(self) -> None:
        await self._replies.flush()
        for sockets in list(self._sockets.values()):
            for socket in list(sockets):
                await socket.close(code=1001, message=b"server shutdown")

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.get("/", _to_chat),
            web.get("/favicon.ico", self._assets.on_favicon),
            web.get("/chat", self._on_page),
            web.get("/chat/ws", self._on_socket),
            web.post("/chat/upload", self._on_upload),
            web.get("/chat/media/{sha256}.jpg", self._on_media),
            web.get("/chat/embed.js", self._assets.on_embed_script),
            web.get("/chat/static/{name}", self._assets.on_static),
        ]

    # ---- the page ------------------------------------------------------------

    async def _on_page(self, request: web.Request) -> web.Response:
        new_session = self._signer.verify(request.cookies.get(COOKIE)) is None
        if (
            new_session
            and self._ip_guard.check(f"new:{_client_ip(request)}", time.monotonic())
            is not Verdict.ALLOW
        ):
            return web.Response(status=429, text="Too many new sessions")
        response = self._assets.page.respond(request, REVALIDATE)
        response.headers.update(self._security_headers())
        if new_session:
            self._set_cookie(response, secrets.token_urlsafe(18))
        return response

    def _security_headers(self) -> dict[str, str]:
        ancestors = " ".join(["'self'", *sorted(self._allowed_origins)])
        return {
            "Content-Security-Policy": (
                "default-src 'self'; img-src 'self' blob: data:; connect-src 'self' ws: wss:; "
                f"style-src 'self'; script-src 'self'; frame-ancestors {ancestors}"
            ),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }

    def _set_cookie(self, response: web.StreamResponse, session_id: str) -> None:
        embedded_elsewhere = bool(self._allowed_origins)
        response.set_cookie(
            COOKIE,
            self._signer.sign(session_id),
            max_age=COOKIE_MAX_AGE,
            httponly=True,
            secure=self._cookie_secure or embedded_elsewhere,
            samesite="None" if embedded_elsewhere else "Lax",
            path="/chat",
        )

    # ---- who is talking ------------------------------------------------------

    def _origin_allowed(self, request: web.Request) -> bool:
        """Same origin (as the browser saw it, behind a TLS proxy too), or an allowed portal.

        Trusting X-Forwarded-* here is safe: it only widens "our own origin", and a page on
        another site cannot set those headers on a WebSocket or an upload without a CORS
        preflight this server never grants.
        """
        origin = request.headers.get(hdrs.ORIGIN, "").rstrip("/")
        if not origin:
            return False
        scheme = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
        host = request.headers.get("X-Forwarded-Host", request.host).split(",")[0].strip()
        own = {f"{request.scheme}://{request.host}", f"{scheme}://{host}"}
        return origin in own or origin in self._allowed_origins

    def _persona(self, request: web.Request) -> Persona:
        if not self.sandbox:
            return CITIZEN
        wanted = request.query.get("as", CITIZEN.key)
        return next((p for p in SANDBOX_PERSONAS if p.key == wanted), CITIZEN)

    def _chat_id(self, request: web.Request) -> str | None:
        """The chat of this browser session and persona; None when the request is not trusted."""
        session_id = self._signer.verify(request.cookies.get(COOKIE))
        if session_id is None or not self._origin_allowed(request):
            return None
        persona = self._persona(request)
        return session_id if persona is CITIZEN else f"{session_id}.{persona.key}"

    # ---- the socket ----------------------------------------------------------

    async def _on_socket(self, request: web.Request) -> web.StreamResponse:
        chat_id = self._chat_id(request)
        if chat_id is None:
            return web.Response(status=403, text="Forbidden")
        persona = self._persona(request)
        if persona.role is not None:
            await self._grant_sandbox_role(chat_id, persona.role)
        socket = web.WebSocketResponse(heartbeat=30, max_msg_size=MAX_FRAME_BYTES)
        await socket.prepare(request)
        self._sockets.setdefault(chat_id, set()).add(socket)
        try:
            await socket.send_json(await self._hello(chat_id, persona))
            async for frame in socket:
                if frame.type is WSMsgType.TEXT:
                    await self._on_frame(request, socket, chat_id, frame.data)
        finally:
            self._sockets[chat_id].discard(socket)
            if not self._sockets[chat_id]:
                del self._sockets[chat_id]
        return socket

    async def _grant_sandbox_role(self, chat_id: str, role: Role) -> None:
        async with self._sessions() as session, session.begin():
            await grant_role(session, CHANNEL, chat_id, role, granted_by=SANDBOX_GRANTOR)

    async def _hello(self, chat_id: str, persona: Persona) -> dict[str, Any]:
        async with self._sessions() as session:
            person = await find_person(session, CHANNEL, chat_id)
            history = await recent_messages(session, chat_id)
        translate = self._translator(person.locale if person else self._default_locale)
        return {
            "type": "hello",
            "ui": {key: translate(text) for key, text in UI_TEXTS.items()},
            "persona": persona.key,
            "personas": [{"key": p.key, "label": translate(p.label)} for p in SANDBOX_PERSONAS]
            if self.sandbox
            else [],
            "messages": [_render_stored(message) for message in history],
        }

    def _translator(self, locale: str) -> Translator:
        return self._translations.get(locale) or self._translations[self._default_locale]

    async def _on_frame(
        self, request: web.Request, socket: web.WebSocketResponse, chat_id: str, data: str
    ) -> None:
        if (
            self._ip_guard.check(f"msg:{_client_ip(request)}", time.monotonic())
            is not Verdict.ALLOW
        ):
            await socket.send_json({"type": "throttled"})
            return
        try:
            frame = json.loads(data)
            kind = frame["type"]
        except (ValueError, KeyError, TypeError):
            await socket.send_json({"type": "error", "reason": "bad frame"})
            return
        if kind == "text" and isinstance(frame.get("text"), str):
            text = frame["text"][:MAX_TEXT_CHARS]
            await self._take_frame(socket, text, self._text_inbound(chat_id, text), draft=text)
        elif kind == "button" and isinstance(frame.get("payload"), str):
            label = str(frame.get("label", ""))[:200]
            inbound = self._inbound(chat_id, InboundKind.BUTTON, payload=frame["payload"][:64])
            await self._take_frame(socket, label or frame["payload"], inbound, draft="")
        else:
            await socket.send_json({"type": "error", "reason": "unknown frame"})

    # ---- uploads and media ---------------------------------------------------

    async def _on_upload(self, request: web.Request) -> web.Response:
        chat_id = self._chat_id(request)
        if chat_id is None:
            return web.json_response({"ok": False}, status=403)
        if (
            self._ip_guard.check(f"msg:{_client_ip(request)}", time.monotonic())
            is not Verdict.ALLOW
        ):
            return web.json_response({"ok": False, "reason": "throttled"}, status=429)
        try:
            reader = await request.multipart()
            part = await reader.next()
        except (ValueError, AssertionError):
            return web.json_response({"ok": False, "reason": "not multipart"}, status=400)
        if not isinstance(part, BodyPartReader) or part.name != "photo":
            return web.json_response({"ok": False, "reason": "no photo"}, status=400)
        data, size = await _read_limited(part, self._media.max_bytes)
        mime_type = part.headers.get(hdrs.CONTENT_TYPE)
        attachment = Attachment(
            file_id=f"web-{uuid4().hex}",
            size=size,
            mime_type=mime_type,
            file_name=part.filename,
            download=_bytes_downloader(data),
        )
        kind = InboundKind.PHOTO if (mime_type or "").startswith("image/") else InboundKind.DOCUMENT
        shown = f"📷 {part.filename or ''}".strip()
        if await self._take_in(shown, self._inbound(chat_id, kind, attachment=attachment)):
            return web.json_response({"ok": False, "reason": "unavailable"}, status=503)
        return web.json_response({"ok": True})

    async def _on_media(self, request: web.Request) -> web.StreamResponse:
        try:
            path = self._media.path_of(request.match_info["sha256"])
        except ValueError:
            raise web.HTTPNotFound() from None
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Cache-Control": "private, max-age=86400"})

    # ---- inbound -------------------------------------------------------------

    def _text_inbound(self, chat_id: str, text: str) -> Inbound:
        command = split_command(text)
        if command is not None:
            name, args = command
            return self._inbound(chat_id, InboundKind.COMMAND, command=name, args=args, text=text)
        return self._inbound(chat_id, InboundKind.TEXT, text=text)

    def _inbound(self, chat_id: str, kind: InboundKind, **fields: Any) -> Inbound:
        """Web visitors and sandbox personas have no name: a persona is a role, not a person."""
        return Inbound(
            channel=CHANNEL,
            chat_id=chat_id,
            user_id=chat_id,
            update_id=f"web-{uuid4().hex[:12]}",
            kind=kind,
            **fields,
        )

    async def _dispatch(self, inbound: Inbound) -> None:
        structlog.contextvars.bind_contextvars(update_id=inbound.update_id, channel=CHANNEL)
        try:
            await self._replies.deliver(await self._handle(inbound, CAPABILITIES))
        finally:
            structlog.contextvars.unbind_contextvars("update_id", "channel")

    async def _take_in(self, shown: str, inbound: Inbound) -> str | None:
        """Keep what the person sent (as `shown`) and answer it; None, or why the database
        could not store it (the person is then asked to send it again)."""
        try:
            await self._remember_user(inbound.chat_id, shown)
            await self._dispatch(inbound)
        except (DBAPIError, OSError) as error:
            problem = storage_problem(error)
            if problem is None:
                raise
            log.warning("web.message.not_stored", problem=problem)
            return problem
        return None

    async def _take_frame(
        self, socket: web.WebSocketResponse, shown: str, inbound: Inbound, *, draft: str
    ) -> None:
        """A typed text or a press; when it could not be stored, the page says so in its
        language (a text of the hello) and puts the typed text back in the input."""
        if await self._take_in(shown, inbound) is not None:
            await socket.send_json({"type": "unavailable", "draft": draft})

    async def _remember_user(self, chat_id: str, text: str) -> None:
        payload = {"segments": [{"text": text, "styles": []}], "buttons": [], "photos": []}
        async with self._sessions() as session, session.begin():
            await append_message(session, chat_id, payload, from_bot=False)

    # ---- outbound ------------------------------------------------------------

    def is_group(self, chat_id: str) -> bool:
        return False

    def api_calls(self, outbound: Outbound) -> int:
        return 1

    async def send(self, outbound: Outbound) -> str:
        """Keep the message in the transcript and push it to the chat's open pages."""
        if outbound.edit_message_id:
            return await self._edit(outbound)
        payload = _payload(outbound)
        async with self._sessions() as session, session.begin():
            stored = await append_message(session, outbound.chat_id, payload, from_bot=True)
        frame = {"type": "message", "message": _render_stored(stored), "prefill": outbound.prefill}
        for socket in list(self._sockets.get(outbound.chat_id, ())):
            if not socket.closed:
                await socket.send_json(frame)
        return str(stored.id)

    async def _edit(self, outbound: Outbound) -> str:
        """Rewrite a message of the transcript (a moderation card after a decision)."""
        async with self._sessions() as session, session.begin():
            stored = await edit_message(
                session, outbound.chat_id, int(outbound.edit_message_id), _payload(outbound)
            )
        if stored is None:
            return outbound.edit_message_id
        frame = {"type": "edit", "message": _render_stored(stored)}
        for socket in list(self._sockets.get(outbound.chat_id, ())):
            if not socket.closed:
                await socket.send_json(frame)
        return str(stored.id)


async def _to_chat(_request: web.Request) -> web.Response:
    """The site's home is the chat, until public pages exist (a temporary redirect)."""
    raise web.HTTPFound("/chat")


def _payload(outbound: Outbound) -> dict[str, Any]:
    return {
        "segments": to_segments(outbound.text),
        "buttons": [
            [{"label": b.label, "payload": b.payload} for b in row] for row in outbound.buttons
        ],
        "photos": [f"/chat/media/{photo.sha256}.jpg" for photo in outbound.photos],
    }


def _client_ip(request: web.Request) -> str:
    """The browser's address: behind a proxy on this machine, the one it forwards."""
    forwarded = request.headers.get("X-Forwarded-For", "")
    if forwarded and request.remote in ("127.0.0.1", "::1"):
        return forwarded.split(",")[0].strip()
    return request.remote or "?"


def _render_stored(message: WebMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "from": "bot" if message.from_bot else "user",
        "at": message.created_at.isoformat(),
        **message.payload,
    }


def _bytes_downloader(data: bytes) -> Callable[[int], Awaitable[bytes]]:
    async def download(_max_bytes: int) -> bytes:
        return data

    return download


async def _read_limited(part: BodyPartReader, limit: int) -> tuple[bytes, int]:
    """Read at most `limit` + 1 bytes: enough to know a file is too large without keeping it."""
    data = bytearray()
    while chunk := await part.read_chunk(UPLOAD_CHUNK):
        data += chunk
        if len(data) > limit:
            return b"", len(data)
    return bytes(data), len(data)


def load_or_create_secret(configured: str | None, data_dir: Path) -> bytes:
    """WEB_CHAT_SECRET, or a random one kept beside the database so sessions survive restarts."""
    if configured:
        return configured.encode()
    path = data_dir / "web_chat_secret"
    if path.is_file():
        return path.read_bytes()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    path.write_bytes(secret)
    path.chmod(0o600)
    return secret
