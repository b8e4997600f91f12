"""Browser tests: the real server (run.py in a subprocess) driven by Debian's Chromium."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.media.clips import Clip, make_clip
from tests.ui.helpers import register

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--autoplay-policy=no-user-gesture-required", "--mute-audio"]
ADMIN = "admin"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, data_dir: Path, *extra: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (data_dir.parent / "server.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "run.py"), "--host", "127.0.0.1",
             "--port", str(self.port), "--data-dir", str(data_dir), "--ladder", "360,240",
             "--workers", "1", "--rate-limit-per-minute", "100000",
             "--rate-limit-user-per-minute", "100000", "--auth-rate-limit-per-minute", "100000",
             "--upload-rate-limit-per-minute", "100000", "--min-free-disk-bytes", "0",
             "--x264-preset", "ultrafast", "--log-level", "warning", *extra],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited early: {self.log_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the server did not start within 30 s")

    def log_text(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("ui") / "data")
    try:
        # The first account becomes the administrator: make it known before any test runs.
        register(running.url, ADMIN)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make system-deps` (Debian package chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short real H.264/AAC clip, 640x360 so that a 360,240 ladder has two rungs."""
    path = tmp_path_factory.mktemp("clips") / "sunset_walk.mp4"
    return make_clip(path, Clip(width=640, height=360, fps=25, seconds=3.0, gop=25))


@pytest.fixture(scope="module")
def second_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "harbour_evening.mp4"
    return make_clip(path, Clip(width=320, height=240, fps=25, seconds=2.0, gop=25))


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "slow_river.mp4"
    return make_clip(path, Clip(width=320, height=240, fps=25, seconds=8.0, gop=25))


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def pytest_configure(config: pytest.Config) -> None:
    # Playwright's driver is a Node process; its pipes are closed at exit, not per test.
    config.addinivalue_line("filterwarnings", "ignore::ResourceWarning")
