"""The application factory: `create_app(config)` is used by run.py and by every test."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from server import keys, live
from server.bus import Bus
from server.config import Config, load_secret_key
from server.db import Database
from server.fastlane import AnswerBook, forget_answers, remember_offered
from server.metrics import Metrics
from server.middleware import edge_middleware, security_headers
from server.openapi import build_document
from server.ratelimit import RateLimiter
from server.routes import API_MODULES, add_routes
from server.tokens import TokenSigner
from server.uploads.receive import close_after_splice
from server.uploads.sweeper import uploads_context
from server.workers.pool import worker_pool_context

log = logging.getLogger(__name__)
CORS_PATHS = ("/api/uploads", "/api/videos/upload")
CleanupContext = Callable[[web.Application], AsyncIterator[None]]


async def secrets_context(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    for directory in (config.data_dir, config.uploads_dir, config.media_dir):
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    secret = await asyncio.to_thread(load_secret_key, config.data_dir)
    app[keys.SIGNER] = TokenSigner(secret, config.access_token_seconds,
                                   config.signed_url_seconds)
    yield


async def database_context(app: web.Application) -> AsyncIterator[None]:
    db = await Database.open(app[keys.CONFIG].db_path)
    await db.migrate()
    app[keys.DB] = db
    yield
    await db.close()


async def bus_context(app: web.Application) -> AsyncIterator[None]:
    bus = Bus(app[keys.CONFIG].ws_queue_size)
    app[keys.BUS] = bus
    yield
    bus.close_all()


# Lifecycles in dependency order: config -> db -> bus -> workers and sweepers.
CLEANUP_CONTEXTS: list[CleanupContext] = [secrets_context, database_context, bus_context,
                                           uploads_context]
CLEANUP_CONTEXTS.append(worker_pool_context)


def create_app(config: Config, **extra: Any) -> web.Application:
    metrics, limiter = Metrics(), RateLimiter()
    # One edge middleware: CORS (on CORS_PATHS), metrics, problem+json, rate limits, identity.
    middlewares = [edge_middleware(config, metrics, limiter, CORS_PATHS)]
    # 256 KiB read buffer per connection (aiohttp's default is 64 KiB): fewer socket pauses
    # for bodies read in Python, yet small enough that a large tus PATCH is still mostly
    # in the socket when it is handed to splice(2) (server/uploads/splice.py).
    app = web.Application(middlewares=middlewares, client_max_size=config.max_body_bytes,
                          handler_args={"read_bufsize": 256 << 10})
    app[keys.CONFIG] = config
    app[keys.METRICS] = metrics
    app[keys.RATE_LIMITER] = limiter
    app[keys.OPENAPI] = build_document(API_MODULES)
    app[keys.ANSWERS] = AnswerBook(config, limiter, metrics.http)
    add_routes(app)
    live.setup(app)
    app.on_response_prepare.append(security_headers)
    app.on_response_prepare.append(close_after_splice)
    app.on_response_prepare.append(remember_offered)  # last: sees every header
    app.on_shutdown.append(forget_answers)
    app.cleanup_ctx.extend(CLEANUP_CONTEXTS)
    return app
