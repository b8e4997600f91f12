"""Health, metrics and the API description."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server import keys
from server.openapi import op

PATHS = {
    "/api/openapi.json": {"get": op("This document (OpenAPI 3.1)", tag="system",
                                    responses={200: {"type": "object"}}, auth="none")},
}


async def healthz(request: web.Request) -> web.Response:
    await request.app[keys.DB].fetch_value("SELECT 1")
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[keys.METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(request.app[keys.OPENAPI])
