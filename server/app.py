"""The application factory: `create_app(config)` is used by run.py and by every test."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from server import keys
from server.bus import Bus
from server.config import Config, load_secret_key
from server.db import Database
from server.edge.classes import RouteClasses, add_routes
from server.edge.headers import security_headers
from server.edge.middleware import cors_headers, edge_middleware
from server.live.hub import LiveHub
from server.metrics import Metrics
from server.openapi import build_document
from server.playback.access import MediaCaching
from server.playback.state import PlaybackState
from server.ratelimit import RateLimiter
from server.routes import API_MODULES, ROUTES
from server.services import Services
from server.tokens import TokenSigner
from server.uploads.receive import UploadState
from server.uploads.sweeper import recover, run_sweeper
from server.workers.pool import WorkerPool

log = logging.getLogger(__name__)
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


async def playback_context(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    playback = PlaybackState(MediaCaching(config.shared_cache_seconds,
                                          config.playlist_max_age_seconds))
    app[keys.PLAYBACK] = playback
    yield
    playback.files.close()


async def bus_context(app: web.Application) -> AsyncIterator[None]:
    bus = Bus(app[keys.CONFIG].ws_queue_size)
    app[keys.BUS] = bus
    app[keys.SERVICES] = Services(app[keys.CONFIG], app[keys.DB], bus)
    yield
    bus.close_all()


async def uploads_context(app: web.Application) -> AsyncIterator[None]:
    """Upload state, recovery, then the periodic sweep. The worker pool starts later (it
    needs no uploads): jobs queued by recovery wait for its first poll."""
    services = app[keys.SERVICES]
    state = app[keys.UPLOADS] = UploadState()
    try:
        await recover(services, state, app.get(keys.WORKERS))
    except Exception:
        log.exception("upload recovery failed")
    task = asyncio.create_task(run_sweeper(services, state), name="upload-sweeper")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def worker_pool_context(app: web.Application) -> AsyncIterator[None]:
    pool = WorkerPool(app[keys.SERVICES], app[keys.METRICS].jobs)
    await pool.start()
    app[keys.WORKERS] = pool
    yield
    await pool.stop()


# Lifecycles in dependency order: config -> db -> bus -> playback caches -> workers and
# sweepers.
CLEANUP_CONTEXTS: tuple[CleanupContext, ...] = (
    secrets_context, database_context, bus_context, playback_context, uploads_context,
    worker_pool_context)


async def close_live_connections(app: web.Application) -> None:
    await app[keys.LIVE].close_all()


def create_app(config: Config) -> web.Application:
    metrics, limiter = Metrics(), RateLimiter()
    # One edge middleware: CORS, metrics, problem+json, rate limits, identity.
    middlewares = [edge_middleware(config, metrics.http, limiter, RouteClasses(ROUTES))]
    # 256 KiB read buffer per connection (aiohttp's default is 64 KiB): fewer socket pauses
    # for the upload bodies read in Python.
    app = web.Application(middlewares=middlewares, client_max_size=config.max_body_bytes,
                          handler_args={"read_bufsize": 256 << 10})
    app[keys.CONFIG] = config
    app[keys.METRICS] = metrics
    app[keys.RATE_LIMITER] = limiter
    app[keys.OPENAPI] = build_document(API_MODULES)
    app[keys.LIVE] = LiveHub()
    add_routes(app, ROUTES)
    app.on_shutdown.append(close_live_connections)
    app.on_response_prepare.append(security_headers)
    app.on_response_prepare.append(cors_headers)
    app.cleanup_ctx.extend(CLEANUP_CONTEXTS)
    return app
