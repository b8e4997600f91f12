"""Playback from 0: x264's B-frames delay the first picture (0.067 s at 30 fps), and the
init segment's edit list has players present that instant as 0. In Chromium, hls.js's
buffer then starts at 0: no hole before the first frame to skip."""

from __future__ import annotations

import struct
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.media.clips import Clip, make_clip
from tests.ui.conftest import Server
from tests.ui.helpers import (
    PASSWORD,
    http_json,
    register,
    sign_in,
    upload,
    wait_ready,
    wait_until,
)
from tests.ui.pages import Tab


@pytest.fixture(scope="module")
def bframes_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("from-zero") / "data", "--x264-preset", "veryfast")
    try:
        yield running
    finally:
        running.stop()


def test_hls_js_buffers_from_zero(bframes_server: Server, context: Any, tmp_path: Path) -> None:
    server = bframes_server
    register(server.url, "zero")
    token = http_json(f"{server.url}/api/auth/login", "POST",
                      {"username": "zero", "password": PASSWORD})["access_token"]
    clip = make_clip(tmp_path / "clip.mp4", Clip(width=320, height=240, fps=30, seconds=4.0,
                                                 gop=30, vcodec="libx264"))
    video_id = upload(server.url, token, "clip.mp4", clip.read_bytes(), "video/mp4")
    wait_ready(server.url, video_id, token, timeout=60)
    # The first picture is delayed (B-frames), and the edit list says by how much.
    with urllib.request.urlopen(f"{server.url}/api/videos/{video_id}/hls/240p/init.mp4") as r:
        init = r.read()
    at = init.index(b"elst")
    (media_time,) = struct.unpack_from(">i", init, at + 4 + 4 + 4 + 4)
    assert media_time > 0
    sign_in(context, server.url, "zero")
    tab = Tab(context)
    page = tab.page
    page.goto(f"{server.url}/watch/{video_id}")
    page.locator("#player-video").wait_for()
    assert page.get_attribute(".player", "data-engine") == "hls.js"
    page.evaluate("const v = document.querySelector('#player-video'); v.muted = true; v.play()")
    wait_until(page, "document.querySelector('#player-video').currentTime > 0.5", 30)
    start = page.evaluate("document.querySelector('#player-video').buffered.start(0)")
    assert start < 0.001, start
    assert tab.errors == []
