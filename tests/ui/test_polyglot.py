"""Uploaded files are never pages or scripts: MPEG-TS polyglots served as inert attachments.

A real, transcodable MPEG-TS file may begin with a 188-byte packet (sync byte `G`, an
unused PID) whose bytes read as the start of a script (`G=1;/*`) or of an HTML comment
(`G<!--`), and carry the payload after its last packet: FFmpeg ignores both ends. Uploaded
with a client-chosen `text/javascript` or `text/html` type, such a file must still come
back as an attachment with a probe-derived type, a sandbox CSP and nosniff, and opening it
in a signed-in browser must run nothing.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.media.clips import Clip, make_clip
from tests.ui.conftest import Server
from tests.ui.helpers import http_json, register, sign_in, upload, wait_ready

TS_PACKET = 188
# Runs only if a browser treats the file as a page: it marks the page and reports the
# victim's cookies to the server (a request anyone can see in the browser's log).
PAYLOAD = ("document.title='ran';"
           "fetch('/api/beacon?c='+encodeURIComponent(document.cookie));")


def _prologue(start: bytes) -> bytes:
    # Padding that cannot end the comment the prologue opens ("*/" or "-->").
    return start + b"x" * (TS_PACKET - len(start))


def polyglot(clip: Path, kind: str) -> bytes:
    body = clip.read_bytes()
    assert body[0] == 0x47 and len(body) % TS_PACKET == 0
    if kind == "js":
        return _prologue(b"G=1;/*") + body + b"*/" + PAYLOAD.encode() + b"//"
    return (_prologue(b"G<!--") + body + b"-->"
            + f"<script>{PAYLOAD}</script>".encode())


@pytest.fixture(scope="module")
def polyglots(server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two ready videos whose originals are a JS and an HTML polyglot, downloadable."""
    clip = make_clip(tmp_path_factory.mktemp("polyglot") / "clip.ts",
                     Clip(width=320, height=240, fps=25, seconds=2.0, gop=25))
    register(server.url, "mallory")
    token = http_json(f"{server.url}/api/auth/login", "POST",
                      {"username": "mallory", "password": "correct horse battery"}
                      )["access_token"]
    ids = {}
    for kind, content_type in (("js", "text/javascript"), ("html", "text/html")):
        video_id = upload(server.url, token, f"evil.{kind}", polyglot(clip, kind),
                          content_type)
        wait_ready(server.url, video_id, token, timeout=60)
        http_json(f"{server.url}/api/videos/{video_id}", "PATCH", {"allow_download": True},
                  headers={"Authorization": f"Bearer {token}"})
        ids[kind] = video_id
    return ids


def test_polyglot_originals_are_inert_attachments(server: Server,
                                                  polyglots: dict[str, str]) -> None:
    for kind, video_id in polyglots.items():
        with urllib.request.urlopen(f"{server.url}/api/videos/{video_id}/original") as resp:
            headers = resp.headers
            assert resp.read(4)[:1] == b"G"
        assert headers["Content-Type"] == "video/mp2t", kind  # from the probe, not the client
        assert headers["Content-Disposition"].startswith("attachment;"), kind
        assert headers["Content-Security-Policy"] == "sandbox; default-src 'none'", kind
        assert headers["X-Content-Type-Options"] == "nosniff", kind


def _beacons(page: Any) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url)
            if "/api/beacon" in request.url else None)
    return seen


def test_html_polyglot_runs_no_script_for_a_signed_in_viewer(
    server: Server, polyglots: dict[str, str], context: Any, tmp_path: Path
) -> None:
    register(server.url, "victim")
    sign_in(context, server.url, "victim")
    assert any(c["name"] == "rh_csrf" for c in context.cookies())
    page = context.new_page()
    beacons = _beacons(page)
    url = f"{server.url}/api/videos/{polyglots['html']}/original"

    # The control: the very same bytes, answered as the page they pretend to be, do run.
    body = urllib.request.urlopen(url).read()
    control = f"{server.url}/api/videos/{polyglots['html']}/control"
    page.route(control, lambda route: route.fulfill(status=200, body=body,
                                                    content_type="text/html"))
    page.goto(control)
    page.wait_for_timeout(500)
    assert page.title() == "ran" and beacons, "the payload is live when served as HTML"
    page.close()

    # The real answer: a download, never a document.
    page = context.new_page()
    beacons = _beacons(page)
    with page.expect_download() as download:
        try:
            page.goto(url)
        except Exception as exc:  # Chromium aborts a navigation that becomes a download
            assert "Download is starting" in str(exc) or "ERR_ABORTED" in str(exc), exc
    assert download.value.suggested_filename == "evil.html"
    page.wait_for_timeout(500)
    assert beacons == []
    assert page.title() != "ran" and page.url in ("about:blank", url)


def test_js_polyglot_is_no_script_for_a_page(server: Server, polyglots: dict[str, str],
                                             context: Any) -> None:
    """Loaded by a <script> tag on this origin, the JS polyglot is refused (nosniff with a
    non-script type), so no page can be made to run it."""
    page = context.new_page()
    beacons = _beacons(page)
    page.goto(f"{server.url}/")
    loaded = page.evaluate("""src => new Promise(done => {
        const tag = document.createElement('script');
        tag.src = src; tag.onload = () => done('loaded'); tag.onerror = () => done('refused');
        document.head.appendChild(tag);
    })""", f"/api/videos/{polyglots['js']}/original")
    assert loaded == "refused"
    page.wait_for_timeout(300)
    assert beacons == []
