"""The web UI: the single-page app shell, its static files and the vendored browser libraries.

The page is plain HTML, CSS and ES modules (no build step). Every client-side route answers
with index.html so a reload or a shared link lands on the right page. The two browser
libraries come from npm (`npm ci` puts them in node_modules); when they are missing the
vendor URLs answer 404 and the page falls back to native HLS, progressive MP4 and multipart
upload.
"""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
STATIC_DIR = ROOT / "static"
NODE_MODULES = ROOT / "node_modules"

# Public name -> file inside node_modules. Only these are served: node_modules holds far
# more than the page needs, and none of it should be reachable by path.
VENDOR_FILES: dict[str, Path] = {
    "hls.mjs": NODE_MODULES / "hls.js" / "dist" / "hls.min.mjs",
    "tus.js": NODE_MODULES / "tus-js-client" / "dist" / "tus.min.js",
}
# Client-side routes (static/js/app.js); everything else outside /api and /static is 404.
SPA_PATHS = ("/", "/upload", "/feed", "/notifications", "/signin", "/signup", "/admin",
             "/account", "/account/{section}", "/watch/{video_id}", "/channel/{channel_id}")

# App files are not fingerprinted, so browsers revalidate them on every load (RFC 9111
# section 5.2.2.4 no-cache) and get a cheap 304 via the ETag aiohttp's FileResponse sets.
# The vendor files are pinned by package-lock.json and change only with an upgrade.
APP_CACHE = "no-cache"
VENDOR_CACHE = "public, max-age=86400"
JS_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
            ".svg": "image/svg+xml", ".html": "text/html", ".png": "image/png"}


def _content_type(path: Path) -> str:
    return JS_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] \
        or "application/octet-stream"


async def _file(path: Path, cache_control: str) -> web.FileResponse:
    if not await asyncio.to_thread(path.is_file):
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Cache-Control": cache_control,
                                           "Content-Type": _content_type(path)})


async def index(request: web.Request) -> web.FileResponse:
    return await _file(STATIC_DIR / "index.html", APP_CACHE)


def _inside_static(relative: str) -> Path | None:
    target = (STATIC_DIR / relative).resolve()
    # Refuse anything that escapes static/ (../, absolute paths, symlinks out) or is hidden.
    if not target.is_relative_to(STATIC_DIR) or target.name.startswith("."):
        return None
    return target


async def static_file(request: web.Request) -> web.FileResponse:
    target = await asyncio.to_thread(_inside_static, request.match_info["path"])
    if target is None:
        raise web.HTTPNotFound()
    return await _file(target, APP_CACHE)


async def vendor_file(request: web.Request) -> web.FileResponse:
    path = VENDOR_FILES.get(request.match_info["name"])
    if path is None:
        raise web.HTTPNotFound()
    return await _file(path, VENDOR_CACHE)


ROUTES = (("/static/vendor/{name}", vendor_file), ("/static/{path:.+}", static_file),
          *((path, index) for path in SPA_PATHS))
