"""Small helpers for the browser tests: accounts over HTTP, polling, a large real clip."""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.request
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.video.frame import VideoFrame

PASSWORD = "correct horse battery"


def http_json(url: str, method: str = "GET", body: dict[str, Any] | None = None,
              headers: dict[str, str] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", "Accept": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=10) as resp:
        text = resp.read()
    return json.loads(text) if text else None


def register(base: str, username: str) -> dict[str, Any]:
    profile: dict[str, Any] = http_json(f"{base}/api/users", "POST",
                                        {"username": username, "password": PASSWORD})
    return profile


def sign_in(context: Any, base: str, username: str) -> None:
    """Signs a browser context in the way the page does: the login sets the cookies."""
    resp = context.request.post(f"{base}/api/auth/login",
                                data={"username": username, "password": PASSWORD})
    assert resp.status == 200, resp.text()


def wait_until(page: Any, expression: str, timeout: float = 30.0, interval_ms: int = 100) -> Any:
    """Polls a page expression. (Playwright's wait_for_function evaluates a string, which the
    page's Content-Security-Policy forbids; page.evaluate does not.)"""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = page.evaluate(expression)
        if last:
            return last
        page.wait_for_timeout(interval_ms)
    raise AssertionError(f"timed out after {timeout} s waiting for {expression!r} (last: {last!r})")


def poll(check: Callable[[], Any], page: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        page.wait_for_timeout(100)
    raise AssertionError("timed out")


def make_large_clip(path: Path, seconds: float = 3.0, fps: int = 25) -> Path:
    """A real H.264 file of about 11 MB: lossless random noise, so it cannot compress.

    Large enough for three 5 MiB tus chunks, small enough to transcode in seconds."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"qp": "0", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(int(seconds * fps)):
            frame = VideoFrame(320, 240, "yuv420p")
            for plane in frame.planes:
                plane.update(os.urandom(plane.buffer_size))
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def upload(base: str, token: str, name: str, data: bytes, content_type: str) -> str:
    """A multipart upload (POST /api/videos/upload) with a Bearer token; the video's id."""
    boundary = secrets.token_hex(8)
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n{name}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{name}\"\r\nContent-Type: {content_type}\r\n\r\n").encode()
    body = head + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{base}/api/videos/upload", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type":
                                                  f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return str(json.loads(resp.read())["id"])


def wait_ready(base: str, video_id: str, token: str | None = None, timeout: float = 120.0
               ) -> None:
    """Polls the video's JSON until it is ready; a failed video fails the test at once."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        video = http_json(f"{base}/api/videos/{video_id}", headers=headers)
        if video["status"] == "ready":
            return
        assert video["status"] != "failed", video
        time.sleep(0.2)
    raise AssertionError(f"video {video_id} was not ready within {timeout} s")
