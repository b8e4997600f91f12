"""CORS (the Fetch standard, section 3.2) for the two kinds of route other origins call.

Uploads: a browser app on another origin may upload with tus (tus-js-client, Uppy) or a
form; listed origins may send cookies, `*` allows any origin with Bearer tokens only.
Media: playlists, segments and files are fetched by players on other origins (TV web apps,
Chromecast receivers, hls.js on someone's page), with `Range` and, for private videos, a
token; every answer carries the headers, errors too, so such a player can tell a 404 or an
expired grant from a network failure. With `*` (the default) the answer does not depend on
the request's Origin, so a shared cache keeps one copy for everyone.
"""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict

MAX_AGE = "86400"
UPLOAD_METHODS = "GET, HEAD, POST, PATCH, DELETE, OPTIONS"
UPLOAD_ALLOW_HEADERS = ", ".join([
    "Authorization", "Content-Type", "Tus-Resumable", "Upload-Length", "Upload-Offset",
    "Upload-Metadata", "Upload-Defer-Length", "Upload-Concat", "Upload-Checksum",
    "X-HTTP-Method-Override", "X-CSRF-Token", "X-Requested-With",
])
UPLOAD_EXPOSE_HEADERS = ", ".join([
    "Location", "Upload-Offset", "Upload-Length", "Upload-Metadata", "Upload-Defer-Length",
    "Upload-Concat", "Upload-Expires", "Tus-Version", "Tus-Resumable", "Tus-Extension",
    "Tus-Max-Size", "Tus-Checksum-Algorithm", "Video-Id", "Retry-After",
])
MEDIA_METHODS = "GET, HEAD, OPTIONS"
MEDIA_ALLOW_HEADERS = "Range, Authorization, If-Range, If-None-Match, If-Modified-Since"
MEDIA_EXPOSE_HEADERS = ("Content-Length, Content-Range, Accept-Ranges, ETag, Last-Modified, "
                        "Retry-After")

Allowance = tuple[str, bool] | None  # (Access-Control-Allow-Origin, credentials) or refused


class CorsPolicy:
    """One policy: its configured origins, parsed once, and the headers it answers with."""

    def __init__(self, origins: str, methods: str, allow_headers: str, expose_headers: str,
                 *, credentials: bool) -> None:
        self._listed = frozenset(o.strip().rstrip("/") for o in origins.split(",")
                                 if o.strip() and o.strip() != "*")
        self._any = "*" in (o.strip() for o in origins.split(","))
        self._credentials = credentials
        self._methods = methods
        self._allow_headers = allow_headers
        self._expose_headers = expose_headers

    @property
    def varies(self) -> bool:
        """Whether the answer depends on the request's Origin (a listed origin is echoed)."""
        return bool(self._listed)

    def allowed(self, origin: str | None) -> Allowance:
        if origin and origin.rstrip("/") in self._listed:
            return origin, self._credentials
        if self._any:
            return "*", False
        return None

    def preflight(self, allowance: Allowance) -> web.Response:
        response = web.Response(status=204)
        if self.varies:
            response.headers["Vary"] = "Origin"
        if allowance is not None:
            self.apply(response.headers, allowance)
            response.headers["Access-Control-Allow-Methods"] = self._methods
            response.headers["Access-Control-Allow-Headers"] = self._allow_headers
            response.headers["Access-Control-Max-Age"] = MAX_AGE
        return response

    def apply(self, headers: CIMultiDict[str], allowance: Allowance) -> None:
        if allowance is None:
            return
        allow, credentials = allowance
        headers["Access-Control-Allow-Origin"] = allow
        headers["Access-Control-Expose-Headers"] = self._expose_headers
        if credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        if self.varies:
            headers.add("Vary", "Origin")


def upload_policy(origins: str) -> CorsPolicy:
    return CorsPolicy(origins, UPLOAD_METHODS, UPLOAD_ALLOW_HEADERS, UPLOAD_EXPOSE_HEADERS,
                      credentials=True)


def media_policy(origins: str) -> CorsPolicy:
    # Tokens go in the Authorization header, never as cookies from another origin.
    return CorsPolicy(origins, MEDIA_METHODS, MEDIA_ALLOW_HEADERS, MEDIA_EXPOSE_HEADERS,
                      credentials=False)
