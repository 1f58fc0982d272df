"""The project's aiohttp server: health check and webhooks (and, later, the web chat)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]


def build_web_app(routes: list[web.AbstractRouteDef], health: HealthCheck) -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        report = await health()
        return web.json_response(report, status=200 if report.get("status") == "ok" else 503)

    app = web.Application(client_max_size=1024 * 1024)
    app.add_routes([web.get("/healthz", healthz), *routes])
    return app
