"""Pipeline fixtures: clips made with PyAV (tests/media/clips.py), an app with a small
ladder, and the completion path of an upload (video row, original bytes, enqueue)."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from server import keys, storage, videos
from server.config import Config
from server.workers import jobs
from tests.conftest import make_config
from tests.helpers import User, sign_up
from tests.media.clips import Clip, clip_maker

LOW = {"crf": "32", "preset": "ultrafast"}
CLIPS: dict[str, Clip] = {
    "h264_720p.mp4": Clip(1280, 720, seconds=3.0, gop=30, options=LOW),
    "no_audio.mp4": Clip(320, 240, seconds=2.0, acodec=None, options=LOW),
    "audio_only.m4a": Clip(vcodec=None, seconds=2.0),
    "odd_175x143.mp4": Clip(175, 143, seconds=2.0, pix_fmt="yuv444p", options=LOW),
    "portrait_rotated.mp4": Clip(320, 180, seconds=2.0, rotation=90, options=LOW),
    "vfr.mp4": Clip(320, 240, seconds=2.0, vfr=True, options=LOW),
    "hevc10.mkv": Clip(320, 240, seconds=2.0, vcodec="libx265", pix_fmt="yuv420p10le", hdr=True,
                       options={"preset": "ultrafast", "x265-params": "log-level=error"}),
    "vp9.webm": Clip(320, 240, seconds=2.0, vcodec="libvpx-vp9", acodec="libopus",
                     options={"deadline": "realtime", "cpu-used": "8"}),
    # 640x360 H.264 within the 360p cap, a keyframe every second: the top rung is a remux.
    "remux_360p.mp4": Clip(640, 360, seconds=4.0, gop=30, options={
        "crf": "30", "preset": "veryfast", "x264-params": "scenecut=0"}),
    # Long enough that a job can be interrupted while it runs (about 4 s of work here).
    "long_480p.mp4": Clip(854, 480, seconds=40.0, gop=60, options=LOW),
}


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    return clip_maker(tmp_path_factory.mktemp("pipeline-clips"), CLIPS)


def pipeline_config(data_dir: Path, **overrides: Any) -> Config:
    settings: dict[str, Any] = {"ladder": "360,240", "x264_preset": "ultrafast",
                                "worker_nice": 5}
    settings.update(overrides)
    return make_config(data_dir, **settings)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return pipeline_config(tmp_path / "data")


@pytest.fixture
async def owner(client: TestClient) -> User:
    return await sign_up(client, "owner")


async def submit(client: TestClient, user: User, source: Path) -> str:
    """What an upload's completion does: the video row, the bytes in place, the job.

    The uploads routes are another module's; this is the same completion path they end in.
    """
    app = client.app
    channel = await videos.resolve_upload_channel(app[keys.DB], user.id, None)
    row = await videos.create_video(app[keys.DB], user.id, channel["id"], source.name,
                                    size=source.stat().st_size,
                                    original_filename=source.name)
    target = storage.original_path(app[keys.CONFIG], row["public_id"])
    target.parent.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(shutil.copyfile, source, target)
    await jobs.enqueue_transcode(app[keys.SERVICES], app.get(keys.WORKERS), row)
    return str(row["public_id"])


async def upload(client: TestClient, user: User, source: Path) -> str:
    """The real path: POST /api/videos/upload (multipart), whose completion enqueues the job."""
    form = aiohttp.FormData()
    form.add_field("title", source.name)
    form.add_field("file", source.read_bytes(), filename=source.name, content_type="video/mp4")
    resp = await client.post("/api/videos/upload", data=form, headers=user.headers)
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["id"])


async def video(client: TestClient, user: User, video_id: str) -> dict[str, Any]:
    resp = await client.get(f"/api/videos/{video_id}", headers=user.headers)
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def wait_for(client: TestClient, user: User, video_id: str,
                   done: Callable[[dict[str, Any]], bool], timeout: float = 60.0
                   ) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = await video(client, user, video_id)
        if done(body):
            return body
        assert time.monotonic() < deadline, f"timed out; last state {body}"
        await asyncio.sleep(0.1)


def finished(body: dict[str, Any]) -> bool:
    """ready with 100% progress (every rendition, poster and storyboard), or failed."""
    if body["status"] == "failed":
        return True
    return body["status"] == "ready" and (body["progress"] or {}).get("percent") == 100


async def job_row(client: TestClient, video_id: str) -> Any:
    return await client.app[keys.DB].fetch_one(
        "SELECT jobs.* FROM jobs JOIN videos ON videos.id = jobs.video_id"
        " WHERE videos.public_id = ? ORDER BY jobs.id DESC LIMIT 1", (video_id,))
