"""The edge of the server: one middleware that runs, in this order, CORS (preflights and
response headers on its paths), metrics, problem+json, the per-address rate limit, identity
(with CSRF and token scopes) and the per-user rate limit, then the handler.

These steps used to be six middlewares; every layer is a coroutine and a wrapper per
request, so they live in one function now, with each step's settings worked out once when
the app is built. Security headers stay an `on_response_prepare` hook, so responses a
handler prepares itself (files, SSE, WebSocket) and aiohttp's own errors get them too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from multidict import CIMultiDict

from server import keys
from server.config import Config
from server.cors import CorsPolicy, apply
from server.errors import (
    Problem,
    TooManyRequests,
    Unauthorized,
    problem_from_http,
    problem_response,
)
from server.identity import VIEWER, check_csrf, check_scope, resolve_viewer
from server.metrics import Metrics
from server.ratelimit import RateLimiter, Verdict

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    "worker-src 'self' blob:",
    # 'self' matches same-origin ws:/wss: too (CSP Level 3, section 6.7.2.9).
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
# Everything that is not the UI (the API, media, uploaded files, metrics) is data, never a
# page: opened directly, it runs no script, loads nothing and has a unique origin.
DATA_SECURITY_POLICY = "sandbox; default-src 'none'"
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "DENY"),
)
AUTH_PATHS = frozenset({"/api/auth/login", "/api/users", "/api/auth/refresh"})
LOGOUT_PATH = "/api/auth/logout"
STATIC_PREFIX = "/static/"
UPLOAD_PREFIX = "/api/uploads"
MULTIPART_UPLOAD = "/api/videos/upload"
_API_EXTRAS = frozenset({"/healthz", "/metrics"})
DATA_PREFIXES = ("/api/", *_API_EXTRAS)
_UNLIMITED: dict[str, str] = {}


def route_name(request: web.Request) -> str:
    info = request.match_info
    if info.http_exception is not None:
        return "unmatched"
    resource = info.route.resource
    return resource.canonical if resource is not None else "unmatched"


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """An `on_response_prepare` hook, so streamed, file and error responses get them too."""
    headers = response.headers
    for name, value in SECURITY_HEADERS:
        headers.setdefault(name, value)
    data = request.path.startswith(DATA_PREFIXES)
    headers["Content-Security-Policy"] = DATA_SECURITY_POLICY if data else CONTENT_SECURITY_POLICY
    if request.secure:
        # RFC 6797: only ever sent over HTTPS.
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")


def forwarded_address(peer: str, forwarded: str | None, trusted: frozenset[str]) -> str:
    """The client's address: the last X-Forwarded-For hop, only from a trusted proxy."""
    if forwarded and peer in trusted:
        return forwarded.split(",")[-1].strip() or peer
    return peer


def client_address(request: web.Request) -> str:
    return forwarded_address(request.remote or "", request.headers.get("X-Forwarded-For"),
                             request.app[keys.CONFIG].trusted_proxy_set)


def address_bucket(kind: str, address: str) -> str:
    """The rate limiter's key for one kind of request (any, auth, upload) from an address."""
    return f"{kind}:ip:{address}"


def rate_headers(verdict: Verdict) -> dict[str, str]:
    if not verdict.limit:
        return _UNLIMITED
    return {
        "RateLimit-Limit": str(verdict.limit),
        "RateLimit-Remaining": str(verdict.remaining),
        "RateLimit-Reset": str(verdict.reset_seconds),
    }


def _check(limiter: RateLimiter, key: str, per_minute: int) -> dict[str, str]:
    """One hit on a bucket: its RateLimit-* headers, or 429 with Retry-After."""
    verdict = limiter.hit(key, per_minute)
    headers = rate_headers(verdict)
    if not verdict.allowed:
        raise TooManyRequests(
            f"too many requests; try again in {verdict.reset_seconds} s",
            headers={**headers, "Retry-After": str(verdict.reset_seconds)},
        )
    return headers


def _add_missing(target: dict[str, str] | CIMultiDict[str], headers: dict[str, str]) -> None:
    for name, value in headers.items():
        target.setdefault(name, value)


def _internal_error(request: web.Request) -> web.Response:
    log.exception("unexpected error answering %s %s", request.method, request.path)
    return problem_response(
        Problem("the server met an unexpected error; it has been logged",
                status=500, slug="internal"),
        request.path,
    )


def edge_middleware(config: Config, metrics: Metrics, limiter: RateLimiter,
                    cors_prefixes: Iterable[str]) -> Middleware:
    cors = CorsPolicy(config.cors_origins, cors_prefixes)
    stats = metrics.http
    observe = stats.observe
    clock = time.perf_counter
    trusted = config.trusted_proxy_set
    any_limit, user_limit = config.rate_limit_per_minute, config.rate_limit_user_per_minute
    auth_limit = config.auth_rate_limit_per_minute
    upload_limit = config.upload_rate_limit_per_minute

    def limit_for(method: str, path: str) -> tuple[str, int]:
        if method == "POST" and path in AUTH_PATHS:
            return "auth", auth_limit
        if method in {"POST", "PATCH"} and (
            path.startswith(UPLOAD_PREFIX) or path == MULTIPART_UPLOAD
        ):
            return "upload", upload_limit
        return "any", any_limit

    def address(request: web.Request) -> str:
        return forwarded_address(request.remote or "", request.headers.get("X-Forwarded-For"),
                                 trusted)

    @web.middleware
    async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
        path, method, headers = request.path, request.method, request.headers
        # CORS (Fetch standard 3.2): outermost, so preflights and every error carry it.
        allow = None
        if path.startswith(cors.prefixes):
            origin = headers.get("Origin")
            if origin:
                allow = cors.allowed(origin)
                if method == "OPTIONS" and "Access-Control-Request-Method" in headers:
                    return cors.preflight(allow)
        stats.in_flight += 1
        started = clock()
        status = 500
        try:
            try:
                # Per address, before identity, so floods of bad tokens are limited too.
                # The UI's own files are cacheable and cheap; a household behind one
                # address loading pages must not spend the API's budget on them.
                by_address = _UNLIMITED
                if not path.startswith(STATIC_PREFIX):
                    kind, per_minute = limit_for(method, path)
                    if per_minute > 0:
                        by_address = _check(limiter, address_bucket(kind, address(request)),
                                            per_minute)
                try:
                    viewer = None
                    if method == "POST" and path in AUTH_PATHS:
                        # Sign-in, sign-up and refresh stand on their own credentials: a
                        # stale token or cookie sent along must neither block them nor
                        # demand a CSRF header.
                        pass
                    elif "Authorization" in headers or "Cookie" in headers:
                        try:
                            viewer = await resolve_viewer(request)
                        except Unauthorized:
                            # An expired token must not stop a sign-out by refresh token.
                            if method != "POST" or path != LOGOUT_PATH:
                                raise
                        if viewer is not None:
                            check_csrf(request, viewer)
                            check_scope(request, viewer)
                    request[VIEWER] = viewer
                    by_user = _UNLIMITED
                    if viewer is not None:
                        kind, per_minute = limit_for(method, path)
                        if kind == "any":
                            per_minute = user_limit
                        # Uploads have one budget per user too, so a user cannot
                        # multiply it over addresses.
                        if per_minute > 0:
                            by_user = _check(limiter, f"{kind}:user:{viewer.user_id}",
                                             per_minute)
                    try:
                        response = await handler(request)
                    except Problem as problem:
                        # The innermost limit's numbers are the ones that matter.
                        _add_missing(problem.headers, by_user)
                        raise
                    if by_user and not response.prepared:
                        _add_missing(response.headers, by_user)
                except Problem as problem:
                    _add_missing(problem.headers, by_address)
                    raise
                if by_address and not response.prepared:
                    _add_missing(response.headers, by_address)
            # Every API error leaves as RFC 9457 problem+json; nothing shows a trace.
            except Problem as problem:
                response = problem_response(problem, path)
            except web.HTTPException as exc:
                if exc.status < 400 or (exc.status != 500 and not (
                        path.startswith("/api/") or path in _API_EXTRAS)):
                    raise
                response = problem_response(problem_from_http(exc), path)
            except (ConnectionResetError, TimeoutError):
                raise
            except Exception:
                response = _internal_error(request)
            status = response.status
        except web.HTTPException as exc:
            status = exc.status
            if allow is not None:
                apply(exc.headers, allow)
            raise
        finally:
            stats.in_flight -= 1
            observe(method, route_name(request), status, clock() - started)
        if allow is not None and not response.prepared:
            apply(response.headers, allow)
        return response

    return edge
