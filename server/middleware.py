"""Middlewares, outermost first: metrics, security headers, problem+json, rate limits, identity."""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from server import keys
from server.errors import Problem, TooManyRequests, problem_from_http, problem_response
from server.identity import VIEWER, check_csrf, resolve_viewer

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    "worker-src 'self' blob:",
    "connect-src 'self' ws: wss:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
AUTH_PATHS = frozenset({"/api/auth/login", "/api/users", "/api/auth/refresh"})


def route_name(request: web.Request) -> str:
    info = request.match_info
    if info.http_exception is not None:
        return "unmatched"
    resource = info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    metrics = request.app[keys.METRICS]
    started = time.perf_counter()
    metrics.in_flight.inc()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        metrics.in_flight.dec()
        route = route_name(request)
        metrics.requests.labels(request.method, route, str(status)).inc()
        metrics.latency.labels(request.method, route).observe(time.perf_counter() - started)


@web.middleware
async def security_headers_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _secure(exc.headers)
        raise
    if not response.prepared:
        _secure(response.headers)
    return response


def _secure(headers: object) -> None:
    from multidict import CIMultiDict

    assert isinstance(headers, CIMultiDict)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Frame-Options", "DENY")


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/") or request.path in {"/healthz", "/metrics"}


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every API error leaves as RFC 9457 problem+json; nothing else ever shows a trace."""
    try:
        return await handler(request)
    except Problem as problem:
        return problem_response(problem, request.path)
    except web.HTTPException as exc:
        if exc.status < 400 or (not _is_api(request) and exc.status != 500):
            raise
        return problem_response(problem_from_http(exc), request.path)
    except (ConnectionResetError, TimeoutError):
        raise
    except Exception:
        log.exception("unexpected error answering %s %s", request.method, request.path)
        return problem_response(
            Problem("the server met an unexpected error; it has been logged",
                    status=500, slug="internal"),
            request.path,
        )


def client_address(request: web.Request) -> str:
    peer = request.remote or ""
    config = request.app[keys.CONFIG]
    if peer in config.trusted_proxy_set:
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded:
            return forwarded.split(",")[-1].strip() or peer
    return peer


def _limit_for(request: web.Request) -> tuple[str, int]:
    config = request.app[keys.CONFIG]
    if request.method == "POST" and request.path in AUTH_PATHS:
        return "auth", config.auth_rate_limit_per_minute
    if request.method in {"POST", "PATCH"} and (
        request.path.startswith("/api/uploads") or request.path == "/api/videos/upload"
    ):
        return "upload", config.upload_rate_limit_per_minute
    return "any", config.rate_limit_per_minute


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    limiter = request.app[keys.RATE_LIMITER]
    kind, per_minute = _limit_for(request)
    verdict = limiter.hit(f"{kind}:ip:{client_address(request)}", per_minute)
    if verdict.allowed and kind == "any":
        viewer = request.get(VIEWER)
        if viewer is not None:
            user_limit = request.app[keys.CONFIG].rate_limit_user_per_minute
            verdict = limiter.hit(f"any:user:{viewer.user_id}", user_limit)
    headers = {}
    if verdict.limit:
        headers = {
            "RateLimit-Limit": str(verdict.limit),
            "RateLimit-Remaining": str(verdict.remaining),
            "RateLimit-Reset": str(verdict.reset_seconds),
        }
    if not verdict.allowed:
        raise TooManyRequests(
            f"too many requests; try again in {verdict.reset_seconds} s",
            headers={**headers, "Retry-After": str(verdict.reset_seconds)},
        )
    response = await handler(request)
    if headers and not response.prepared:
        response.headers.update(headers)
    return response


@web.middleware
async def identity_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    viewer = await resolve_viewer(request)
    if viewer is not None:
        check_csrf(request, viewer)
    request[VIEWER] = viewer
    return await handler(request)


MIDDLEWARES: list[Middleware] = [
    metrics_middleware,
    security_headers_middleware,
    problem_middleware,
    identity_middleware,
    rate_limit_middleware,
]
