"""CORS (Fetch standard, "CORS protocol") for API paths browsers call from other origins.

`cors_middleware(prefixes)` answers preflights itself and adds the response headers to
every answer under those prefixes, errors included, so a browser client (tus-js-client,
Uppy) on another origin can read `Location`, `Upload-Offset` and friends.
With `cors_origins = "*"` any origin may call with a Bearer token but never with
cookies; listed origins are echoed back and may send credentials.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from server import keys

ALLOW_METHODS = "GET, HEAD, POST, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = ", ".join([
    "Authorization", "Content-Type", "Tus-Resumable", "Upload-Length", "Upload-Offset",
    "Upload-Metadata", "Upload-Defer-Length", "Upload-Concat", "Upload-Checksum",
    "X-HTTP-Method-Override", "X-CSRF-Token", "X-Requested-With",
])
EXPOSE_HEADERS = ", ".join([
    "Location", "Upload-Offset", "Upload-Length", "Upload-Metadata", "Upload-Defer-Length",
    "Upload-Concat", "Upload-Expires", "Tus-Version", "Tus-Resumable", "Tus-Extension",
    "Tus-Max-Size", "Tus-Checksum-Algorithm", "Video-Id", "Retry-After",
])
MAX_AGE = "86400"


def allowed_origin(config_origins: str, origin: str) -> tuple[str, bool] | None:
    """(value for Access-Control-Allow-Origin, credentials allowed) or None if refused."""
    listed = {o.strip().rstrip("/") for o in config_origins.split(",") if o.strip()}
    if origin.rstrip("/") in listed:
        return origin, True
    if "*" in listed:
        return "*", False
    return None


def _apply(headers: object, allow: str, credentials: bool) -> None:
    from multidict import CIMultiDict

    assert isinstance(headers, CIMultiDict)
    headers["Access-Control-Allow-Origin"] = allow
    headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
    if credentials:
        headers["Access-Control-Allow-Credentials"] = "true"
    headers.add("Vary", "Origin")


def cors_middleware(prefixes: Iterable[str]) -> Middleware:
    scoped = tuple(prefixes)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if not origin or not request.path.startswith(scoped):
            return await handler(request)
        verdict = allowed_origin(request.app[keys.CONFIG].cors_origins, origin)
        preflight = (request.method == "OPTIONS"
                     and "Access-Control-Request-Method" in request.headers)
        if preflight:
            response = web.Response(status=204, headers={"Vary": "Origin"})
            if verdict is not None:
                _apply(response.headers, *verdict)
                response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
                response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
                response.headers["Access-Control-Max-Age"] = MAX_AGE
            return response
        try:
            answer = await handler(request)
        except web.HTTPException as exc:
            if verdict is not None:
                _apply(exc.headers, *verdict)
            raise
        if verdict is not None and not answer.prepared:
            _apply(answer.headers, *verdict)
        return answer

    return middleware
