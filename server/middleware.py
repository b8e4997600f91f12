"""Middlewares, outermost first: metrics, problem+json, the per-address
rate limit, identity (with CSRF and token scopes), the per-user rate limit."""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from server import keys
from server.errors import (
    Problem,
    TooManyRequests,
    Unauthorized,
    problem_from_http,
    problem_response,
)
from server.identity import VIEWER, check_csrf, check_scope, resolve_viewer
from server.ratelimit import Verdict

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
LOGOUT_PATH = "/api/auth/logout"


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


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """An `on_response_prepare` hook, so streamed, file and error responses get them too."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Frame-Options", "DENY")
    if request.secure:
        # RFC 6797: only ever sent over HTTPS.
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")


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


STATIC_PREFIX = "/static/"


def _limit_for(request: web.Request) -> tuple[str, int]:
    config = request.app[keys.CONFIG]
    if request.method == "POST" and request.path in AUTH_PATHS:
        return "auth", config.auth_rate_limit_per_minute
    if request.method in {"POST", "PATCH"} and (
        request.path.startswith("/api/uploads") or request.path == "/api/videos/upload"
    ):
        return "upload", config.upload_rate_limit_per_minute
    return "any", config.rate_limit_per_minute


def _rate_headers(verdict: Verdict) -> dict[str, str]:
    if not verdict.limit:
        return {}
    return {
        "RateLimit-Limit": str(verdict.limit),
        "RateLimit-Remaining": str(verdict.remaining),
        "RateLimit-Reset": str(verdict.reset_seconds),
    }


async def _limited(
    request: web.Request, handler: Handler, key: str, per_minute: int
) -> web.StreamResponse:
    verdict = request.app[keys.RATE_LIMITER].hit(key, per_minute)
    headers = _rate_headers(verdict)
    if not verdict.allowed:
        raise TooManyRequests(
            f"too many requests; try again in {verdict.reset_seconds} s",
            headers={**headers, "Retry-After": str(verdict.reset_seconds)},
        )
    try:
        response = await handler(request)
    except Problem as problem:
        # The innermost limit's numbers are the ones that matter to the client.
        for name, value in headers.items():
            problem.headers.setdefault(name, value)
        raise
    if headers and not response.prepared:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
    return response


@web.middleware
async def address_rate_limit_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Runs before identity, so floods of bad tokens are limited too."""
    if request.path.startswith(STATIC_PREFIX):
        # The UI's own files are cacheable and cheap; a household behind one address
        # loading pages must not spend the API's budget on them.
        return await handler(request)
    kind, per_minute = _limit_for(request)
    return await _limited(request, handler, f"{kind}:ip:{client_address(request)}", per_minute)


@web.middleware
async def user_rate_limit_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    viewer = request.get(VIEWER)
    if viewer is None:
        return await handler(request)
    kind, per_minute = _limit_for(request)
    if kind == "any":
        per_minute = request.app[keys.CONFIG].rate_limit_user_per_minute
    # Uploads have one budget per user too, so a user cannot multiply it over addresses.
    return await _limited(request, handler, f"{kind}:user:{viewer.user_id}", per_minute)


@web.middleware
async def identity_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method == "POST" and request.path in AUTH_PATHS:
        # Sign-in, sign-up and refresh stand on their own credentials: a stale access token
        # or cookie sent along must neither block them nor demand a CSRF header.
        request[VIEWER] = None
        return await handler(request)
    try:
        viewer = await resolve_viewer(request)
    except Unauthorized:
        if request.method == "POST" and request.path == LOGOUT_PATH:
            viewer = None  # an expired token must not stop a sign-out by refresh token
        else:
            raise
    if viewer is not None:
        check_csrf(request, viewer)
        check_scope(request, viewer)
    request[VIEWER] = viewer
    return await handler(request)


MIDDLEWARES: list[Middleware] = [
    metrics_middleware,
    problem_middleware,
    address_rate_limit_middleware,
    identity_middleware,
    user_rate_limit_middleware,
]
