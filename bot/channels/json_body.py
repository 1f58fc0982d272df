"""Webhook bodies: a JSON object, or nothing (the route answers 400, never 500)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


async def json_object(request: web.Request) -> dict[str, Any] | None:
    """The body as a JSON object; None for anything else: an array, a string, bad UTF-8,
    broken JSON or nesting deeper than the parser's recursion limit."""
    try:
        body = json.loads(await request.read())
    except (ValueError, RecursionError):
        return None
    return body if isinstance(body, dict) else None
