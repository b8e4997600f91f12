"""run.py as a subprocess on a data directory, killed and started again by the tests; the
database read from outside it; and checks of a finished ladder fetched over HTTP."""

from __future__ import annotations

import asyncio
import io
import itertools
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from media.fragments import fragment_samples, fragments_in, init_tracks
from server import storage, videos
from server.bus import Bus
from server.config import Config
from server.db import Database
from server.services import Services
from server.workers import jobs
from tests.helpers import PASSWORD
from tests.pipeline.hlsserve import Rendition

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, config: Config, **settings: Any) -> None:
        self.config = config
        self.url = f"http://127.0.0.1:{config.port}"
        self.settings = settings  # more command-line settings, by Config name
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self, http: aiohttp.ClientSession) -> float:
        """Start run.py and wait until it answers; returns the seconds that took."""
        c = self.config
        args = [sys.executable, "run.py", "--data-dir", str(c.data_dir), "--port", str(c.port),
                "--workers", "1", "--ladder", c.ladder, "--x264-preset", c.x264_preset,
                "--segment-seconds", str(c.segment_seconds),
                "--min-free-disk-bytes", str(c.min_free_disk_bytes),
                "--access-log", "false", "--log-level", "WARNING",
                "--rate-limit-per-minute", "100000", "--auth-rate-limit-per-minute", "100000"]
        for name, value in self.settings.items():
            args += ["--" + name.replace("_", "-"), str(value)]
        started = time.monotonic()
        self.process = subprocess.Popen(args, cwd=REPO)
        deadline = started + 30
        while True:
            try:
                async with http.get(f"{self.url}/healthz") as resp:
                    if resp.status == 200:
                        return time.monotonic() - started
            except aiohttp.ClientConnectionError:
                pass
            assert time.monotonic() < deadline and self.process.poll() is None
            await asyncio.sleep(0.05)

    def kill(self) -> None:
        """kill -9: no clean shutdown, the job stays `running` in the database."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


async def sign_in(http: aiohttp.ClientSession, server: Server, username: str = "owner"
                  ) -> dict[str, str]:
    credentials = {"username": username, "password": PASSWORD}
    async with http.post(f"{server.url}/api/users", json=credentials) as resp:
        assert resp.status == 201, await resp.text()
    async with http.post(f"{server.url}/api/auth/login", json=credentials) as resp:
        tokens = await resp.json()
    http.cookie_jar.clear()
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def submit_to_data_dir(config: Config, username: str, source: Path) -> tuple[str, int]:
    """Upload completion done against the server's database from outside the process."""
    db = await Database.open(config.db_path)
    try:
        services = Services(config, db, Bus())
        user_id = await db.fetch_value("SELECT id FROM users WHERE username = ?", (username,))
        channel = await videos.resolve_upload_channel(db, user_id, None)
        row = await videos.create_video(db, user_id, channel["id"], source.name)
        target = storage.original_path(config, row["public_id"])
        target.parent.mkdir(parents=True)
        shutil.copyfile(source, target)
        await jobs.enqueue_transcode(services, None, row)  # the server's dispatcher polls
        return str(row["public_id"]), int(row["id"])
    finally:
        await db.close()


def job_of(config: Config, video_key: int) -> dict[str, Any]:
    """The video's job row, read while the server runs (WAL: readers do not block it)."""
    with sqlite3.connect(f"file:{config.db_path}?mode=ro", uri=True, timeout=10) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM jobs WHERE video_id = ? ORDER BY id DESC LIMIT 1",
                           (video_key,)).fetchone()
    conn.close()
    assert row is not None
    return dict(row)


async def poll(http: aiohttp.ClientSession, url: str, headers: dict[str, str],
               done: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        async with http.get(url, headers=headers) as resp:
            assert resp.status == 200
            body: dict[str, Any] = await resp.json()
        if done(body):
            return body
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.05)


def percent(body: dict[str, Any]) -> float:
    return float((body.get("progress") or {}).get("percent") or 0.0)


def finished(body: dict[str, Any]) -> bool:
    return body["status"] == "failed" or (body["status"] == "ready" and percent(body) == 100)


def assert_continuous(rendition: Rendition) -> None:
    """Every segment's samples begin, track by track, at the decode time where the previous
    segment's ended (ISO 14496-12 tfdt): no gap, no overlap, nothing twice."""
    data = rendition.joined.read_bytes()
    tracks = init_tracks(data[: rendition.offsets[0]])
    assert tracks, rendition.name
    ends: dict[int, int] = {}
    bounds = [*rendition.offsets, len(data)]
    for index, (start, end) in enumerate(itertools.pairwise(bounds)):
        fragments = fragments_in(io.BytesIO(data[start:end]))
        assert fragments, f"{rendition.name} segment {index} is not whole"
        for fragment in fragments:
            for sample in fragment_samples(fragment, tracks):
                expected = ends.get(sample.track_id)
                assert expected is None or sample.decode == expected, (
                    f"{rendition.name} segment {index}, track {sample.track_id}: decode time "
                    f"{sample.decode}, the previous sample ended at {expected}")
                ends[sample.track_id] = sample.decode + sample.duration
