"""CORS (Fetch standard, "CORS protocol") for API paths browsers call from other origins.

The edge middleware answers preflights itself and adds the response headers to every
answer under the CORS prefixes, errors included, so a browser client (tus-js-client,
Uppy) on another origin can read `Location`, `Upload-Offset` and friends.
With `cors_origins = "*"` any origin may call with a Bearer token but never with
cookies; listed origins are echoed back and may send credentials.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web
from multidict import CIMultiDict

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


class CorsPolicy:
    """The configured origins, parsed once; used by the edge middleware (server/middleware.py)
    for every request under `prefixes` that carries an `Origin` header."""

    def __init__(self, config_origins: str, prefixes: Iterable[str]) -> None:
        self.prefixes = tuple(prefixes)
        self._listed = frozenset(o.strip().rstrip("/") for o in config_origins.split(",")
                                 if o.strip())
        self._any = "*" in self._listed

    def allowed(self, origin: str) -> tuple[str, bool] | None:
        """(value for Access-Control-Allow-Origin, credentials allowed) or None if refused."""
        if origin.rstrip("/") in self._listed:
            return origin, True
        if self._any:
            return "*", False
        return None

    @staticmethod
    def preflight(verdict: tuple[str, bool] | None) -> web.Response:
        response = web.Response(status=204, headers={"Vary": "Origin"})
        if verdict is not None:
            apply(response.headers, verdict)
            response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
            response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
            response.headers["Access-Control-Max-Age"] = MAX_AGE
        return response


def apply(headers: CIMultiDict[str], verdict: tuple[str, bool]) -> None:
    allow, credentials = verdict
    headers["Access-Control-Allow-Origin"] = allow
    headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
    if credentials:
        headers["Access-Control-Allow-Credentials"] = "true"
    headers.add("Vary", "Origin")
