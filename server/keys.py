"""Typed application state (aiohttp `AppKey`s), created in `cleanup_ctx` order."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from server.config import Config

if TYPE_CHECKING:
    from server.bus import Bus
    from server.db import Database
    from server.live.hub import LiveHub
    from server.metrics import Metrics
    from server.playback.state import PlaybackState
    from server.ratelimit import RateLimiter
    from server.services import Services
    from server.tokens import TokenSigner
    from server.uploads.receive import UploadState
    from server.workers.pool import WorkerPool

CONFIG = web.AppKey("config", Config)
DB: web.AppKey[Database] = web.AppKey("db")
SIGNER: web.AppKey[TokenSigner] = web.AppKey("signer")
BUS: web.AppKey[Bus] = web.AppKey("bus")
SERVICES: web.AppKey[Services] = web.AppKey("services")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
RATE_LIMITER: web.AppKey[RateLimiter] = web.AppKey("rate_limiter")
OPENAPI: web.AppKey[dict[str, Any]] = web.AppKey("openapi")
LIVE: web.AppKey[LiveHub] = web.AppKey("live")
UPLOADS: web.AppKey[UploadState] = web.AppKey("uploads")
WORKERS: web.AppKey[WorkerPool] = web.AppKey("workers")
PLAYBACK: web.AppKey[PlaybackState] = web.AppKey("playback")
