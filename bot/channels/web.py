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
import contextlib
import hashlib
import hmac
import json
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from ipaddress import IPv4Network, IPv6Network, ip_address
from pathlib import Path
from typing import Any
from uuid import uuid4

import structlog
from aiohttp import BodyPartReader, WSMsgType, hdrs, web
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.channels.base import InboundHandler, ReplySender
from bot.channels.richtext import to_segments
from bot.channels.web_assets import REVALIDATE, WebAssets
from bot.db import storage_problem
from bot.private_files import make_private_dirs, write_private_file
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
from models.people import find_person, grant_role, roles_of
from models.tables import Role, WebMessage, utcnow
from models.webchat import (
    append_message,
    chats_hold_photo,
    edit_message,
    find_session,
    open_session,
    purge_idle_sessions,
    recent_messages,
    rotate_session,
    touch_session,
)

CHANNEL = "web"
CAPABILITIES = Capabilities(
    inline_buttons=True, message_edits=True, albums=True, contact_request=False, text_prefill=True
)
COOKIE = "gs_session"
SANDBOX_GRANTOR = "sandbox"
"""Roles granted to sandbox personas carry this mark, and are revoked outside the sandbox."""
PAGE_DIR = Path(__file__).resolve().parent.parent / "web"
MAX_TEXT_CHARS = 4096
MAX_FRAME_BYTES = 64 * 1024
UPLOAD_CHUNK = 64 * 1024
TAB_REPLACED = 4001
"""Close code for a session's oldest socket when it opens one too many: the page stays quiet."""

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
    "replaced": N_("This chat is open in other tabs. Reload the page to continue here."),
    "unavailable": N_(
        "Your message could not be saved just now. Please send it again in a few minutes."
    ),
}


@dataclass(frozen=True, slots=True)
class WebChatPolicy:
    """What the web chat trusts and how much one browser or address may hold."""

    allowed_origins: tuple[str, ...] = ()
    cookie_secure: bool = False
    per_ip_per_minute: int = 300
    session_idle: timedelta = timedelta(days=30)
    transcript_limit: int = 500
    sockets_per_session: int = 5
    sockets_per_address: int = 50
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()


@dataclass(frozen=True, slots=True)
class Visit:
    chat_id: str
    """The session's chat (a sandbox persona's chat is `chat_id.persona`)."""
    token: str | None
    """The token for the cookie, set again on every visit so that an active session's cookie
    lasts as long as the session; None when a concurrent request has just replaced it."""


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
        policy: WebChatPolicy,
    ) -> None:
        self._handle = handle
        self._sessions = sessions
        self._media = media
        self._translations = translations
        self._signer = SessionSigner(secret)
        self._default_locale = default_locale
        self.sandbox = sandbox
        self._policy = policy
        self._allowed_origins = {origin.rstrip("/") for origin in policy.allowed_origins}
        self._ip_guard = FloodGuard(policy.per_ip_per_minute)
        self._sockets: dict[str, set[web.WebSocketResponse]] = {}
        """Open sockets by the chat they show, for pushing messages."""
        self._tabs: dict[str, list[web.WebSocketResponse]] = {}
        """Open sockets by session, oldest first."""
        self._per_address: Counter[str] = Counter()
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
        visit = await self._visit(request, may_open=True)
        if visit is None:
            return web.Response(status=429, text="Too many new sessions")
        response = self._assets.page.respond(request, REVALIDATE)
        response.headers.update(self._security_headers())
        if visit.token is not None:
            self._set_cookie(response, visit.token)
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

    def _set_cookie(self, response: web.StreamResponse, token: str) -> None:
        embedded_elsewhere = bool(self._allowed_origins)
        response.set_cookie(
            COOKIE,
            self._signer.sign(token),
            max_age=int(self._policy.session_idle.total_seconds()),
            httponly=True,
            secure=self._policy.cookie_secure or embedded_elsewhere,
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

    def _client_ip(self, request: web.Request) -> str:
        return client_ip(
            request.remote,
            request.headers.getall("X-Forwarded-For", []),
            self._policy.trusted_proxies,
        )

    async def _visit(self, request: web.Request, *, may_open: bool) -> Visit | None:
        """The cookie's live session, opened or rotated as needed; None when there is none.

        A sandbox persona's role is granted here, and whenever the persona or the roles
        behind the session change, the session gets a new token: a token seen before the
        change (a planted or leaked cookie) opens nothing afterwards.
        """
        persona = self._persona(request)
        token = self._signer.verify(request.cookies.get(COOKIE))
        now = utcnow()
        idle_since = now - self._policy.session_idle
        async with self._sessions() as session, session.begin():
            row = None if token is None else await find_session(session, token, idle_since)
            if row is None:
                if not may_open or not self._may_open_session(request):
                    return None
                await purge_idle_sessions(session, idle_since)
                chat_id, token = secrets.token_urlsafe(18), secrets.token_urlsafe(32)
                identity = await self._identity(session, chat_id, persona)
                await open_session(session, token, chat_id, identity, now)
                return Visit(chat_id, token)
            identity = await self._identity(session, row.chat_id, persona)
            if identity == row.identity:
                await touch_session(session, row, now)
                return Visit(row.chat_id, token)
            new_token = secrets.token_urlsafe(32)
            rotated = await rotate_session(session, row, new_token, identity, now)
            return Visit(row.chat_id, new_token if rotated else None)

    def _may_open_session(self, request: web.Request) -> bool:
        verdict = self._ip_guard.check(f"new:{self._client_ip(request)}", time.monotonic())
        return verdict is Verdict.ALLOW

    async def _identity(self, session: AsyncSession, chat_id: str, persona: Persona) -> str:
        """Who the session speaks as: the persona and its roles (granting a sandbox role)."""
        persona_chat = _persona_chat(chat_id, persona)
        if persona.role is not None:
            with contextlib.suppress(IntegrityError):  # another tab granted it at the same time
                async with session.begin_nested():
                    await grant_role(
                        session, CHANNEL, persona_chat, persona.role, granted_by=SANDBOX_GRANTOR
                    )
        person = await find_person(session, CHANNEL, persona_chat)
        roles = await roles_of(session, person.id) if person and person.id else frozenset()
        return ":".join([persona.key, *sorted(roles)])

    async def _session_chat(self, request: web.Request) -> str | None:
        """The live session's chat, without opening, rotating or touching it."""
        token = self._signer.verify(request.cookies.get(COOKIE))
        if token is None:
            return None
        async with self._sessions() as session, session.begin():
            row = await find_session(session, token, utcnow() - self._policy.session_idle)
        return None if row is None else row.chat_id

    # ---- the socket ----------------------------------------------------------

    async def _on_socket(self, request: web.Request) -> web.StreamResponse:
        if not self._origin_allowed(request):
            return web.Response(status=403, text="Forbidden")
        address = self._client_ip(request)
        if self._per_address[address] >= self._policy.sockets_per_address:
            return web.Response(status=429, text="Too many connections from this address")
        self._per_address[address] += 1
        try:
            return await self._serve_socket(request)
        finally:
            self._per_address[address] -= 1
            if not self._per_address[address]:
                del self._per_address[address]

    async def _serve_socket(self, request: web.Request) -> web.StreamResponse:
        visit = await self._visit(request, may_open=False)
        if visit is None:
            return web.Response(status=403, text="Forbidden")
        persona = self._persona(request)
        chat_id = _persona_chat(visit.chat_id, persona)
        socket = web.WebSocketResponse(heartbeat=30, max_msg_size=MAX_FRAME_BYTES)
        if visit.token is not None:
            self._set_cookie(socket, visit.token)
        await socket.prepare(request)
        tabs = self._tabs.setdefault(visit.chat_id, [])
        tabs.append(socket)
        self._sockets.setdefault(chat_id, set()).add(socket)
        try:
            while len(tabs) > self._policy.sockets_per_session:
                await tabs.pop(0).close(code=TAB_REPLACED, message=b"opened in other tabs")
            await socket.send_json(await self._hello(chat_id, persona))
            async for frame in socket:
                if frame.type is WSMsgType.TEXT:
                    await self._on_frame(request, socket, chat_id, frame.data)
        finally:
            _discard(self._sockets, chat_id, socket)
            _discard(self._tabs, visit.chat_id, socket)
        return socket

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
            self._ip_guard.check(f"msg:{self._client_ip(request)}", time.monotonic())
            is not Verdict.ALLOW
        ):
            await socket.send_json({"type": "throttled"})
            return
        try:
            frame = json.loads(data)
            kind = frame["type"]
        except (ValueError, KeyError, TypeError, RecursionError):
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
        session_chat = await self._session_chat(request) if self._origin_allowed(request) else None
        if session_chat is None:
            return web.json_response({"ok": False}, status=403)
        chat_id = _persona_chat(session_chat, self._persona(request))
        if (
            self._ip_guard.check(f"msg:{self._client_ip(request)}", time.monotonic())
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
        """A photo of this session's conversation (transcript, reports, drafts); else 404."""
        sha256 = request.match_info["sha256"]
        try:
            path = self._media.path_of(sha256)
        except ValueError:
            raise web.HTTPNotFound() from None
        chat_id = await self._session_chat(request)
        if chat_id is None or not await self._holds_photo(chat_id, sha256):
            raise web.HTTPNotFound()
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Cache-Control": "private, max-age=86400"})

    async def _holds_photo(self, chat_id: str, sha256: str) -> bool:
        personas = SANDBOX_PERSONAS if self.sandbox else (CITIZEN,)
        chats = [_persona_chat(chat_id, persona) for persona in personas]
        async with self._sessions() as session:
            return await chats_hold_photo(session, chats, sha256)

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
            await append_message(
                session, chat_id, payload, from_bot=False, keep=self._policy.transcript_limit
            )

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
            stored = await append_message(
                session,
                outbound.chat_id,
                payload,
                from_bot=True,
                keep=self._policy.transcript_limit,
            )
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


def _persona_chat(chat_id: str, persona: Persona) -> str:
    return chat_id if persona is CITIZEN else f"{chat_id}.{persona.key}"


def _discard(registry: dict[str, Any], key: str, socket: web.WebSocketResponse) -> None:
    """Forget a closed socket, and its key once it holds none."""
    sockets = registry.get(key)
    if sockets is None:
        return
    if socket in sockets:
        sockets.remove(socket)
    if not sockets:
        del registry[key]


def client_ip(
    peer: str | None, forwarded: list[str], trusted: tuple[IPv4Network | IPv6Network, ...]
) -> str:
    """The browser's address: the peer, unless it is one of our TRUSTED_PROXIES.

    Then X-Forwarded-For is read from the right (each proxy appends the address it saw),
    skipping our own proxies: the first other entry is the one our proxies vouch for; the
    entries left of it are whatever the browser claimed.
    """
    address = peer or "?"
    hops = [hop.strip() for header in forwarded for hop in header.split(",")]
    while _trusted(address, trusted) and hops:
        address = hops.pop()
    return address


def _trusted(address: str, trusted: tuple[IPv4Network | IPv6Network, ...]) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in trusted)


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
    make_private_dirs(data_dir)
    secret = secrets.token_bytes(32)
    write_private_file(path, secret)
    return secret
