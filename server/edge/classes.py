"""Route classes: what kind of request a route serves, declared in the route table
(server/routes.py) and read by the edge for its rate limit, CORS policy and token scope."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Literal, NamedTuple

from aiohttp import web
from aiohttp.typedefs import Handler

# api: the JSON API. auth: sign-in, sign-up and refresh (their own strict budget).
# upload: tus and multipart uploads (their own budget, the "upload" token scope, the upload
# CORS policy). media: playlists, segments, files (a generous budget of their own, open
# CORS). ui: the web UI's shell and static files (no budget). probe: /healthz and /metrics
# (no budget: a load balancer's health check or a scraper behind a busy address must never
# get 429 and take the server for down).
RouteClass = Literal["api", "auth", "upload", "media", "ui", "probe"]


class Route(NamedTuple):
    method: str
    path: str
    handler: Handler
    kind: RouteClass = "api"
    # An invalid or expired token is ignored rather than refused (sign-out by refresh token).
    stale_token_ok: bool = False
    # Headers on every answer, the edge's own refusals too (tus: Tus-Resumable).
    headers: tuple[tuple[str, str], ...] = ()


async def _unrouted(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotFound()


DEFAULT = Route("", "", _unrouted, "api")
ROUTE: web.RequestKey[Route] = web.RequestKey("route")


class RouteClasses:
    """(method, route pattern) -> its table entry, worked out once from the route table."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self._routes: Mapping[tuple[str, str], Route] = {
            (r.method, canonical(r.path)): r for r in routes}

    def of(self, request: web.Request) -> Route:
        info = request.match_info
        if info.http_exception is not None:
            return DEFAULT
        resource = info.route.resource
        if resource is None:
            return DEFAULT
        method, path = info.route.method, resource.canonical
        found = self._routes.get((method, path))
        if found is None and method == "HEAD":
            found = self._routes.get(("GET", path))  # the HEAD aiohttp adds to a GET route
        return found or DEFAULT


def route_of(request: web.Request) -> Route:
    """The table entry the edge found for this request."""
    route: Route = request.get(ROUTE, DEFAULT)
    return route


def canonical(path: str) -> str:
    """A pattern as aiohttp names its resource: `{name:regex}` becomes `{name}` (the regex
    may hold a `{n}` repeat of its own)."""
    return re.sub(r"\{(\w+):(?:[^{}]|\{[^{}]*\})+\}", r"{\1}", path)


def add_routes(app: web.Application, routes: Iterable[Route]) -> None:
    for route in routes:
        if route.method == "GET":
            app.router.add_get(route.path, route.handler)  # and HEAD, as RFC 9110 9.3.2 asks
        else:
            app.router.add_route(route.method, route.path, route.handler)
