"""tus 1.0.0 protocol plumbing: headers, version check, URLs and error shaping.

Protocol text: https://tus.io/protocols/resumable-upload (core protocol and extensions).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from email.utils import formatdate

from aiohttp import web

from server import keys
from server.errors import BadRequest, Problem, UnsupportedMedia, problem_response

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = ("creation,creation-with-upload,creation-defer-length,checksum,expiration,"
                  "termination,concatenation,concatenation-unfinished")
TUS_CHECKSUMS = "sha1,md5,sha256"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
UPLOADS_PATH = "/api/uploads"
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def discovery_headers(max_size: int) -> dict[str, str]:
    """Core protocol, OPTIONS: what this server speaks."""
    return {
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": TUS_EXTENSIONS,
        "Tus-Checksum-Algorithm": TUS_CHECKSUMS,
        "Tus-Max-Size": str(max_size),
    }


def http_date(timestamp: float) -> str:
    """Upload-Expires uses the RFC 9110 IMF-fixdate format (expiration extension)."""
    return formatdate(timestamp, usegmt=True)


def check_version(request: web.Request) -> None:
    """Core protocol: a request in a version the server does not speak gets 412."""
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise Problem(
            f"this server speaks tus {TUS_VERSION}; send 'Tus-Resumable: {TUS_VERSION}'",
            status=412, slug="tus-version", headers={"Tus-Version": TUS_VERSION},
        )


def check_content_type(request: web.Request) -> None:
    """PATCH bodies MUST be `application/offset+octet-stream` (core protocol, PATCH)."""
    if request.content_type != OFFSET_CONTENT_TYPE:
        raise UnsupportedMedia(f"the body's Content-Type must be {OFFSET_CONTENT_TYPE}")


def int_header(request: web.Request, name: str) -> int | None:
    raw = request.headers.get(name)
    if raw is None:
        return None
    if not raw.strip().isdigit():
        raise BadRequest(f"{name} must be a non-negative integer")
    return int(raw)


def base_url(request: web.Request) -> str:
    """The URL clients reach us by: public_url, else the (trusted) proxy's view, else ours."""
    config = request.app[keys.CONFIG]
    if config.public_url:
        return config.public_url.rstrip("/")
    scheme, host = request.scheme, request.host
    if request.remote in config.trusted_proxy_set:
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        forwarded_host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
        if proto in ("http", "https"):
            scheme = proto
        if forwarded_host and _HOST.match(forwarded_host):
            host = forwarded_host
    return f"{scheme}://{host}"


def upload_url(request: web.Request, upload_id: str) -> str:
    return f"{base_url(request)}{UPLOADS_PATH}/{upload_id}"


def upload_id_from_url(url: str) -> str | None:
    """Upload-Concat lists upload URLs, absolute or relative; the id is the last segment."""
    path = url.split("?", 1)[0].rstrip("/")
    marker = UPLOADS_PATH + "/"
    if marker not in path:
        return None
    candidate = path.rsplit(marker, 1)[1]
    return candidate if candidate and "/" not in candidate else None


def tus_endpoint(handler: Handler) -> Handler:
    """Every response but OPTIONS carries Tus-Resumable, errors included (core protocol)."""
    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            if request.method != "OPTIONS":
                check_version(request)
            response = await handler(request)
        except Problem as problem:
            response = problem_response(problem, request.path)
            if not request.content.is_eof():
                response.force_close()  # do not read gigabytes we are refusing
        if request.method != "OPTIONS":
            response.headers["Tus-Resumable"] = TUS_VERSION
        return response
    return wrapper
