"""The server process is killed mid-job and started again on the same data directory:
the job is requeued at start-up, its partial outputs removed, and it finishes."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server import keys, storage, videos
from server.bus import Bus
from server.config import Config
from server.db import Database
from server.services import Services
from server.workers import jobs
from tests.helpers import PASSWORD
from tests.pipeline.conftest import pipeline_config
from tests.pipeline.hlsserve import decode_errors
from tests.pipeline.test_interruptions import gone

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.url = f"http://127.0.0.1:{config.port}"
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self, http: aiohttp.ClientSession) -> None:
        c = self.config
        self.process = subprocess.Popen(
            [sys.executable, "run.py", "--data-dir", str(c.data_dir), "--port", str(c.port),
             "--workers", "1", "--ladder", c.ladder, "--x264-preset", c.x264_preset,
             "--access-log", "false", "--log-level", "WARNING",
             "--rate-limit-per-minute", "100000", "--auth-rate-limit-per-minute", "100000"],
            cwd=REPO)
        deadline = time.monotonic() + 20
        while True:
            try:
                async with http.get(f"{self.url}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            assert time.monotonic() < deadline and self.process.poll() is None
            await asyncio.sleep(0.1)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    config = pipeline_config(tmp_path / "data", port=free_port())
    running = Server(config)
    yield running
    if running.process is not None and running.process.poll() is None:
        running.process.terminate()
        running.process.wait(15)


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


async def job_of(config: Config, video_key: int) -> Any:
    db = await Database.open(config.db_path)
    try:
        return await db.fetch_one("SELECT * FROM jobs WHERE video_id = ?", (video_key,))
    finally:
        await db.close()


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
        await asyncio.sleep(0.1)


async def test_job_resumes_after_the_server_is_killed(
    server: Server, clip: Callable[[str], Path]
) -> None:
    config = server.config
    async with aiohttp.ClientSession() as http:
        await server.start(http)
        credentials = {"username": "owner", "password": PASSWORD}
        async with http.post(f"{server.url}/api/users", json=credentials) as resp:
            assert resp.status == 201
        async with http.post(f"{server.url}/api/auth/login", json=credentials) as resp:
            tokens = await resp.json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        http.cookie_jar.clear()
        video_id, video_key = await submit_to_data_dir(config, "owner", clip("long_480p.mp4"))
        url = f"{server.url}/api/videos/{video_id}"
        await poll(http, url, headers, lambda b: (b["progress"] or {}).get("percent", 0) >= 10,
                   timeout=60)
        job = await job_of(config, video_key)
        assert job["status"] == "running"
        worker = int(job["worker_pid"])

        server.kill()  # no clean shutdown: the job stays `running` in the database
        deadline = time.monotonic() + 3
        while not gone(worker):  # the worker notices its parent is gone and exits
            assert time.monotonic() < deadline, "the orphaned worker kept running"
            await asyncio.sleep(0.05)
        assert (await job_of(config, video_key))["status"] == "running"

        await server.start(http)
        body = await poll(http, url, headers,
                          lambda b: b["status"] in ("ready", "failed")
                          and (b["status"] == "failed" or b["progress"]["percent"] == 100),
                          timeout=120)
        assert body["status"] == "ready", body
        job = await job_of(config, video_key)
        assert (job["status"], job["attempts"]) == ("done", 2)
        assert job["last_error"] == "interrupted: the server stopped"
        hls = storage.video_layout(config, video_id).hls
        assert await decode_errors(str(hls / "master.m3u8")) == ""
        assert not [p for p in hls.rglob(".*")], "temporary files left behind"
        assert os.path.exists(storage.original_path(config, video_id))


async def test_clean_shutdown_ends_workers_and_the_next_start_resumes(
    aiohttp_client: Any, tmp_path: Path, clip: Callable[[str], Path]
) -> None:
    """The app's cleanup (SIGTERM in run.py) ends the worker; the job stays `running` and the
    next start requeues it. Progress reaches the bus as `video.progress` events."""
    from server.app import create_app
    from tests.helpers import sign_up
    from tests.pipeline.conftest import finished, job_row, submit, wait_for
    from tests.pipeline.test_interruptions import running_with_progress

    config = pipeline_config(tmp_path / "data")
    first = await aiohttp_client(create_app(config))
    owner = await sign_up(first, "owner")
    video_id = await submit(first, owner, clip("long_480p.mp4"))
    progress = first.app[keys.BUS].subscribe([f"video:{video_id}"])
    job = await running_with_progress(first, owner, video_id)
    event = await asyncio.wait_for(progress.get(), 5)
    while event is not None and event["type"] != "video.progress":
        event = await asyncio.wait_for(progress.get(), 5)
    assert event is not None
    assert set(event) >= {"percent", "renditions", "eta_seconds"}
    assert 0 < event["percent"] < 100
    await first.close()
    assert gone(job["worker_pid"])
    assert (await job_of(config, job["video_id"]))["status"] == "running"

    second = await aiohttp_client(create_app(config))
    body = await wait_for(second, owner, video_id, finished, timeout=120)
    assert body["status"] == "ready", body
    job = await job_row(second, video_id)
    assert (job["status"], job["attempts"]) == ("done", 2)
