"""An in-memory chat for flow tests (after errbot's test backend).

It drives `handlers.router.handle_inbound` exactly as a channel adapter does, with
the capabilities the test chooses, and keeps what the bot answered.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from handlers.context import Services
from handlers.messages import (
    Attachment,
    Capabilities,
    Contact,
    Inbound,
    InboundKind,
    Outbound,
)
from handlers.router import SessionFactory, handle_inbound

_update_ids = itertools.count(1)


@dataclass
class FakeChat:
    services: Services
    sessions: SessionFactory
    user_id: str = "1001"
    display_name: str = "Lan"
    channel: str = "test"
    capabilities: Capabilities = field(default_factory=lambda: Capabilities(contact_request=True))
    transcript: list[Outbound] = field(default_factory=list)
    last: list[Outbound] = field(default_factory=list)

    async def _deliver(self, kind: InboundKind, **fields: object) -> list[Outbound]:
        inbound = Inbound(
            channel=self.channel,
            chat_id=self.user_id,
            user_id=self.user_id,
            update_id=str(next(_update_ids)),
            kind=kind,
            display_name=self.display_name,
            **fields,  # type: ignore[arg-type]
        )
        self.last = await handle_inbound(self.services, self.sessions, inbound, self.capabilities)
        self.transcript.extend(self.last)
        return self.last

    async def send(self, text: str) -> list[Outbound]:
        """Type `text`; a leading slash makes it a command, as on Telegram."""
        if text.startswith("/"):
            command, _, args = text[1:].partition(" ")
            return await self._deliver(InboundKind.COMMAND, command=command, args=args, text=text)
        return await self._deliver(InboundKind.TEXT, text=text)

    async def press(self, label: str) -> list[Outbound]:
        """Press the button labelled `label` (or with that payload) in the newest message."""
        for outbound in reversed(self.transcript):
            for row in outbound.buttons:
                for button in row:
                    if label in (button.label, button.payload):
                        return await self._deliver(InboundKind.BUTTON, payload=button.payload)
        raise AssertionError(f"no button {label!r} in {self.texts()[-3:]}")

    async def press_payload(self, payload: str) -> list[Outbound]:
        return await self._deliver(InboundKind.BUTTON, payload=payload)

    async def photo(
        self,
        data: bytes,
        *,
        mime_type: str | None = "image/jpeg",
        as_document: bool = False,
        file_name: str | None = None,
    ) -> list[Outbound]:
        async def download(max_bytes: int) -> bytes:
            return data

        attachment = Attachment(
            file_id=f"file-{len(data)}-{hash(data)}",
            size=len(data),
            mime_type=mime_type,
            file_name=file_name,
            download=download,
        )
        kind = InboundKind.DOCUMENT if as_document else InboundKind.PHOTO
        return await self._deliver(kind, attachment=attachment)

    async def contact(self, phone: str, *, own: bool = True) -> list[Outbound]:
        return await self._deliver(
            InboundKind.CONTACT, contact=Contact(phone=phone, name="Lan", is_own=own)
        )

    async def unsupported(self, what: str) -> list[Outbound]:
        return await self._deliver(InboundKind.UNSUPPORTED, unsupported_type=what)

    def texts(self) -> list[str]:
        return [outbound.text for outbound in self.transcript]

    def said(self) -> str:
        """Everything the bot said in reply to the last input, as one string."""
        return "\n".join(outbound.text for outbound in self.last)

    def labels(self) -> list[str]:
        return [b.label for o in self.last for row in o.buttons for b in row]
