"""The edge middleware. In this order: the connection guard's note that a head arrived
(server/edge/connections.py), CORS (preflights, and the headers on every answer of
a CORS route), metrics, problem+json, the per-address rate limit, identity (with CSRF and
token scopes), the per-user rate limit, then the handler. Each route's class (its budget,
CORS policy and scope) comes from the route table, not from its path.

One middleware calling small steps rather than six middlewares: every middleware layer is
a coroutine and a wrapper per request.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from multidict import CIMultiDict

from server.config import Config
from server.edge.classes import ROUTE, Route, RouteClasses
from server.edge.connections import head_arrived
from server.edge.cors import Allowance, CorsPolicy, media_policy, upload_policy
from server.edge.limits import Limits
from server.errors import Problem, Unauthorized, problem_from_http, problem_response
from server.identity import VIEWER, check_csrf, check_scope, resolve_viewer
from server.metrics import HttpStats
from server.ratelimit import RateLimiter
from server.viewer import Viewer

log = logging.getLogger(__name__)
API_EXTRAS = ("/healthz", "/metrics")
CORS: web.RequestKey[tuple[CorsPolicy, Allowance]] = web.RequestKey("cors")


def route_name(request: web.Request) -> str:
    info = request.match_info
    if info.http_exception is not None:
        return "unmatched"
    resource = info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _add_missing(target: dict[str, str] | CIMultiDict[str], headers: dict[str, str]) -> None:
    for name, value in headers.items():
        target.setdefault(name, value)


async def _identify(request: web.Request, route: Route) -> Viewer | None:
    if route.kind == "auth" or not ("Authorization" in request.headers
                                    or "Cookie" in request.headers):
        # Sign-in, sign-up and refresh stand on their own credentials: a stale token or
        # cookie sent along must neither block them nor demand a CSRF header.
        return None
    try:
        viewer = await resolve_viewer(request)
    except Unauthorized:
        if route.stale_token_ok:
            return None
        raise
    if viewer is not None:
        check_csrf(request, viewer)
        check_scope(request, viewer)
    return viewer


def _internal_error(request: web.Request) -> web.Response:
    log.exception("unexpected error answering %s %s", request.method, request.path)
    return problem_response(
        Problem("the server met an unexpected error; it has been logged",
                status=500, slug="internal"),
        request.path,
    )


def edge_middleware(config: Config, stats: HttpStats, limiter: RateLimiter,
                    classes: RouteClasses) -> Middleware:
    policies: dict[str, CorsPolicy] = {"upload": upload_policy(config.cors_origins),
                                       "media": media_policy(config.media_cors_origins)}
    limits = Limits(config, limiter)
    clock = time.perf_counter

    def cors_allowance(request: web.Request, policy: CorsPolicy, kind: str) -> Allowance:
        origin = request.headers.get("Origin")
        if kind == "upload" and not origin:
            return None  # not a cross-origin request: nothing to add
        return policy.allowed(origin)

    async def answer(request: web.Request, handler: Handler, route: Route
                     ) -> web.StreamResponse:
        """The handler's answer with its RateLimit-* headers; Problems propagate.

        Signed-in users spend their account's budget, anonymous ones their address's: a
        household or an office behind one address (or every client of a reverse proxy
        that does not forward addresses) is not one budget. Credentials that fail to
        resolve are charged to the address, so floods of bad tokens are limited too.
        """
        try:
            viewer = await _identify(request, route)
        except Problem:
            limits.by_address(request, route.kind)
            raise
        request[VIEWER] = viewer
        budget = (limits.by_address(request, route.kind) if viewer is None
                  else limits.by_user(viewer.user_id, route.kind))
        try:
            response = await handler(request)
        except Problem as problem:
            _add_missing(problem.headers, budget)
            raise
        # Media answers are shared by caches: one client's remaining budget is not theirs.
        if budget and not response.prepared and route.kind != "media":
            _add_missing(response.headers, budget)
        return response

    @web.middleware
    async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
        head_arrived(request)
        route = classes.of(request)
        request[ROUTE] = route
        path = request.path
        policy = policies.get(route.kind)
        if policy is not None:
            allowance = cors_allowance(request, policy, route.kind)
            if request.method == "OPTIONS" and "Access-Control-Request-Method" in \
                    request.headers:
                return policy.preflight(allowance)
            # Added by `cors_headers` as the answer is prepared: files and streams that
            # a handler prepares itself, problems and aiohttp's own errors alike.
            request[CORS] = (policy, allowance)
        stats.in_flight += 1
        started = clock()
        status = 500
        try:
            try:
                response = await answer(request, handler, route)
            # Every API error leaves as RFC 9457 problem+json; nothing shows a trace.
            except Problem as problem:
                response = problem_response(problem, path)
            except web.HTTPException as exc:
                if exc.status < 400 or (exc.status != 500 and not (
                        path.startswith("/api/") or path in API_EXTRAS)):
                    raise
                response = problem_response(problem_from_http(exc), path)
            except (ConnectionResetError, TimeoutError):
                raise
            except Exception:
                response = _internal_error(request)
            if route.headers and not response.prepared:
                _add_missing(response.headers, dict(route.headers))
            status = response.status
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            stats.in_flight -= 1
            stats.observe(request.method, route_name(request), status, clock() - started)
        return response

    return edge


async def cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the CORS headers the edge decided on for this request."""
    decided = request.get(CORS)
    if decided is not None:
        policy, allowance = decided
        policy.apply(response.headers, allowance)
