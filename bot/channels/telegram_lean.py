"""Texts and button answers to Telegram on a lean path: one JSON POST, little read back.

Through python-telegram-bot each call builds request parameters and parses the answer
into full objects; profiling showed that to be most of the bot's CPU per message
(bench/broadcast.py, bench/updates.py). Every text the bot sends (replies, cards' texts,
notices, broadcasts) goes out here and reads back only `message_id`; every button press
is answered here too. Photos, albums and edits still go through python-telegram-bot.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import structlog
from telegram.error import ChatMigrated

from scheduler.dispatcher import DeliveryFailed

SEND_TIMEOUT_SECONDS = 30.0
"""How long a send may wait for Telegram's answer. The Bot API has no idempotency key: a
send that timed out may have gone through, and its retry is then a duplicate. Telegram
answers in well under a second, so a long timeout costs nothing until the API stalls, and
then it holds the chat's queue (and a dispatcher slot) rather than send twice."""
TRANSIENT_RETRY_SECONDS = 5.0

log = structlog.get_logger(__name__)


class LeanSender:
    def __init__(self, bot_url: str, *, connections: int = 64) -> None:
        """`bot_url` is `{base}/bot{token}`; it is never logged."""
        self._bot_url = bot_url
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def send_text(
        self,
        chat_id: str,
        text: str,
        *,
        reply_markup: dict[str, Any] | None = None,
        paid_broadcast: bool = False,
    ) -> str:
        """Send one HTML text; returns its message id, or raises DeliveryFailed/ChatMigrated."""
        body: dict[str, Any] = {
            "chat_id": chat_id,
            "text": text,
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
        }
        if reply_markup is not None:
            body["reply_markup"] = reply_markup
        if paid_broadcast:
            body["allow_paid_broadcast"] = True
        try:
            status, answer = await self._post("sendMessage", body)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise DeliveryFailed(
                f"network: {type(error).__name__}",
                TRANSIENT_RETRY_SECONDS,
                backoff=True,
                maybe_sent=not isinstance(error, aiohttp.ClientConnectorError),
            ) from None
        return _message_id(status, answer)

    async def answer_button(self, callback_query_id: str, alert: str) -> None:
        """Stop the button's spinner, with `alert` as a pop-up when given; never raises."""
        body: dict[str, Any] = {"callback_query_id": callback_query_id}
        if alert:
            body |= {"text": alert, "show_alert": True}
        try:
            status, answer = await self._post("answerCallbackQuery", body)
        except (aiohttp.ClientError, TimeoutError) as error:
            log.info("telegram.callback.answer_failed", error=type(error).__name__)
            return
        if status != 200:
            log.info("telegram.callback.answer_failed", status=status, error=answer[:200])

    async def _post(self, method: str, body: dict[str, Any]) -> tuple[int, bytes]:
        """POST `body` as JSON to the Bot API `method`: the HTTP status and the raw answer."""
        async with self._client().post(
            f"{self._bot_url}/{method}",
            json=body,
            timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT_SECONDS),
        ) as response:
            return response.status, await response.read()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections)
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _message_id(status: int, answer: bytes) -> str:
    """The sent message's id, or the failure as the dispatcher understands it."""
    try:
        data = json.loads(answer)
    except ValueError:
        data = {}
    if status == 200 and data.get("ok"):
        return str(data["result"]["message_id"])
    description = str(data.get("description", f"HTTP {status}"))
    parameters = data.get("parameters") or {}
    if status == 429:
        raise DeliveryFailed(description, float(parameters.get("retry_after", 1)))
    if "migrate_to_chat_id" in parameters:
        raise ChatMigrated(int(parameters["migrate_to_chat_id"]))
    if status == 403:
        raise DeliveryFailed(description, None, recipient_gone=True)
    if 400 <= status < 500:
        log.error("telegram.send.refused", status=status, error=description)
        raise DeliveryFailed(description, None)
    raise DeliveryFailed(description, TRANSIENT_RETRY_SECONDS, backoff=True)
