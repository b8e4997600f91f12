"""The shell and its static files over plain HTTP, and every page at a phone's width."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.ui.conftest import Server
from tests.ui.helpers import (
    http_json,
    register,
    sign_in,
)
from tests.ui.pages import Tab, unique


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_shell_static_files_and_vendor_libraries(server: Server) -> None:
    for path in ("/", "/watch/abc", "/upload", "/channel/x", "/account/tokens", "/admin"):
        status, headers, body = _get(server.url + path)
        assert status == 200, path
        assert headers["Content-Type"].startswith("text/html")
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert b'<script type="module" src="/static/js/app.js">' in body
        assert b"style=" not in body  # the CSP forbids inline styles
    status, headers, _ = _get(server.url + "/static/js/app.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert headers["Cache-Control"] == "no-cache" and headers.get("Etag")
    status, _, _ = _get(server.url + "/static/js/app.js", {"If-None-Match": headers["Etag"]})
    assert status == 304
    for name in ("hls.mjs", "tus.js"):
        status, headers, body = _get(f"{server.url}/static/vendor/{name}")
        assert status == 200, f"{name}: run `npm ci`"
        assert "max-age" in headers["Cache-Control"] and len(body) > 10_000
    for path in ("/static/vendor/package.json", "/static/%2e%2e/server/ui.py",
                 "/static/.hidden", "/nowhere"):
        assert _get(server.url + path)[0] == 404, path


# --- sign up, upload, processing, playback, seeking, comments --------------------------


def test_pages_fit_a_360px_wide_phone(server: Server, browser: Any, screenshots: Path) -> None:
    videos = http_json(f"{server.url}/api/videos?sort=newest&limit=1")["items"]
    name = unique("gil")
    register(server.url, name)
    ctx = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True,
                              has_touch=True)
    try:
        sign_in(ctx, server.url, name)
        tab = Tab(ctx)
        paths = ["/", "/upload", "/account", "/notifications", "/signin"]
        if videos:
            paths.append(f"/watch/{videos[0]['id']}")
        for path in paths:
            tab.page.goto(server.url + path)
            tab.page.wait_for_load_state("networkidle")
            width = tab.page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, f"{path} is {width} px wide"
            if path.startswith("/watch/"):
                tab.page.screenshot(path=str(screenshots / "watch-phone.png"), full_page=True)
        assert tab.errors == []
    finally:
        ctx.close()


# --- account and admin ---------------------------------------------------------------
