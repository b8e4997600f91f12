"""Every kind of upload ends `ready` with the right renditions or `failed` with its reason,
and the web process keeps answering."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from server import keys, storage
from tests.helpers import User
from tests.pipeline.conftest import finished, job_row, submit, wait_for
from tests.pipeline.hlsserve import decode_errors, ffprobe

# clip -> renditions as {name: (width, height)} (None for audio), or the failure reason.
READY: dict[str, dict[str, tuple[int, int] | None]] = {
    "h264_720p.mp4": {"360p": (640, 360), "240p": (426, 240), "audio": None},
    "no_audio.mp4": {"240p": (320, 240)},
    "audio_only.m4a": {"audio": None},
    "odd_175x143.mp4": {"142p": (174, 142), "audio": None},
    "portrait_rotated.mp4": {"180p": (180, 320), "audio": None},
    "vfr.mp4": {"240p": (320, 240), "audio": None},
    "hevc10.mkv": {"240p": (320, 240), "audio": None},
    "vp9.webm": {"240p": (320, 240), "audio": None},
}
FAILED: dict[str, str] = {
    "truncated.mp4": "file is truncated at",
    "png.mp4": "not a video or audio file",
    "empty.mp4": "not a video or audio file",
}


@pytest.mark.parametrize("name", sorted(READY))
async def test_clip_becomes_ready(
    client: TestClient, owner: User, clip: Callable[[str], Path], name: str, tmp_path: Path
) -> None:
    video_id = await submit(client, owner, clip(name))
    body = await wait_for(client, owner, video_id, finished)
    assert body["status"] == "ready", body
    assert body["error"] is None
    assert body["progress"]["percent"] == 100
    expected = READY[name]
    hls = storage.video_layout(client.app[keys.CONFIG], video_id).hls
    rows = await client.app[keys.DB].fetch_all(
        "SELECT name, width, height FROM renditions WHERE video_id ="
        " (SELECT id FROM videos WHERE public_id = ?)", (video_id,))
    assert {r["name"]: (r["width"], r["height"]) if r["width"] else None for r in rows} \
        == expected
    for rendition, size in expected.items():
        first = tmp_path / f"{rendition}.mp4"  # init.mp4 + the first segment
        first.write_bytes((hls / rendition / "init.mp4").read_bytes()
                          + (hls / rendition / "seg_00000.m4s").read_bytes())
        streams = ffprobe(first, "-show_streams")["streams"]
        video = [s for s in streams if s["codec_type"] == "video"]
        if size is None:
            assert not video
            continue
        (v,) = video
        assert (v["codec_name"], v["pix_fmt"]) == ("h264", "yuv420p")
        assert v.get("color_transfer") in (None, "bt709")  # HDR sources come out SDR
        assert (v["width"], v["height"]) == size
    assert await decode_errors(str(hls / "master.m3u8")) == ""
    job = await job_row(client, video_id)
    assert (job["status"], job["attempts"]) == ("done", 1)


@pytest.mark.parametrize("name", sorted(FAILED))
async def test_bad_upload_fails_with_its_reason(
    client: TestClient, owner: User, clip: Callable[[str], Path], name: str
) -> None:
    video_id = await submit(client, owner, clip(name))
    body = await wait_for(client, owner, video_id, finished)
    assert body["status"] == "failed"
    assert FAILED[name] in body["error"]
    config = client.app[keys.CONFIG]
    # A permanent failure: the bytes and any partial output are removed, no retry.
    assert not storage.original_path(config, video_id).exists()
    assert not storage.video_layout(config, video_id).hls.exists()
    job = await job_row(client, video_id)
    assert (job["status"], job["attempts"]) == ("failed", 1)
    assert FAILED[name] in job["last_error"]
    assert (await client.get("/healthz")).status == 200
