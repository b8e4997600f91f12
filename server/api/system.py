"""Health, metrics and the API description."""

from __future__ import annotations

import hmac

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server import keys
from server.errors import NotFound
from server.identity import current_viewer
from server.openapi import op

PATHS = {
    "/api/openapi.json": {"get": op("This document (OpenAPI 3.1)", tag="system",
                                    responses={200: {"type": "object"}}, auth="none")},
}


async def healthz(request: web.Request) -> web.Response:
    await request.app[keys.DB].fetch_value("SELECT 1")
    return web.json_response({"status": "ok"})


def may_read_metrics(request: web.Request) -> bool:
    """Like PeerTube's and Jellyfin's, the metrics are not public: they show who uses what,
    and how busy the server is. A signed-in administrator may read them, and so may a
    scraper sending the `metrics_token` setting as a Bearer token (when it is set)."""
    viewer = current_viewer(request)
    if viewer is not None and viewer.is_admin:
        return True
    token = request.app[keys.CONFIG].metrics_token
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(
        presented.strip().encode(), token.encode())


async def metrics(request: web.Request) -> web.Response:
    if not may_read_metrics(request):
        raise NotFound("no such page")  # as if it did not exist: nothing to probe
    body = generate_latest(request.app[keys.METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(request.app[keys.OPENAPI])
