"""The project's aiohttp server: health check and webhooks (and, later, the web chat)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from bot.db import storage_problem

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]
StorageProblem = Callable[[], Awaitable[str | None]]
"""Why the database cannot store anything now ("read-only", "disk full"), or None."""
RETRY_AFTER_SECONDS = 5

log = structlog.get_logger(__name__)


def build_web_app(routes: list[web.AbstractRouteDef], health: HealthCheck) -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        report = await health()
        return web.json_response(report, status=200 if report.get("status") == "ok" else 503)

    app = web.Application(client_max_size=1024 * 1024, middlewares=[storage_unavailable])
    app.add_routes([web.get("/healthz", healthz), *routes])
    return app


@web.middleware
async def storage_unavailable(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """A request that failed because the database takes no writes now (read-only, full,
    unreachable) answers 503 with Retry-After, never 500: a platform sends its update again,
    the web chat asks the person to try again shortly."""
    try:
        return await handler(request)
    except Exception as error:
        problem = storage_problem(error)
        if problem is None:
            raise
        log.warning("request.storage_unavailable", path=request.path, problem=problem)
        return web.json_response(
            {"ok": False, "reason": "unavailable"},
            status=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


def when_storing(route: web.RouteDef, storage_problem: StorageProblem) -> web.RouteDef:
    """`route` (a webhook) answers 503 while the database cannot store what arrives: the
    platform then sends the update again later instead of it being taken and lost."""
    handler = route.handler

    async def guarded(request: web.Request) -> web.StreamResponse:
        problem = await storage_problem()
        if problem is not None:
            log.warning("webhook.refused", path=request.path, problem=problem)
            return web.Response(status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        return await handler(request)

    return web.RouteDef(route.method, route.path, guarded, route.kwargs)
