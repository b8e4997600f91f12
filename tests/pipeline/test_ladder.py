"""A ready video's ladder, fetched over HTTP and checked with ffprobe, ffmpeg and m3u8."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import m3u8
import pytest
from aiohttp.test_utils import TestClient

from server import events, keys, storage
from server.config import Config
from tests.conftest import METRICS
from tests.helpers import User
from tests.pipeline.conftest import finished, job_row, pipeline_config, upload, wait_for
from tests.pipeline.hlsserve import (
    decode_errors,
    fetch_ladder,
    ffprobe,
    master_url,
    segment_starts,
)

H264_PROFILES = {"High": 0x64, "Main": 0x4D, "Constrained Baseline": 0x42, "Baseline": 0x42}


@pytest.fixture
def config(tmp_path: Path) -> Config:
    # Short segments so that a 4 s clip has several, to compare their boundaries.
    return pipeline_config(tmp_path / "data", segment_seconds=1.0)


async def test_ready_ladder_matches_its_playlists(
    client: TestClient, owner: User, clip: Callable[[str], Path], tmp_path: Path
) -> None:
    source = clip("remux_360p.mp4")
    seen = client.app[keys.BUS].subscribe([events.user_topic(owner.id)])
    video_id = await upload(client, owner, source)
    body = await wait_for(client, owner, video_id, finished)
    assert body["status"] == "ready", body
    assert body["progress"]["percent"] == 100
    assert body["progress"]["renditions"] == {"360p": 100, "240p": 100, "audio": 100}
    source_duration = float(ffprobe(source, "-show_format")["format"]["duration"])
    assert abs(body["duration"] - source_duration) <= 0.1
    assert (body["width"], body["height"]) == (640, 360)

    statuses = []
    while not seen.queue.empty():
        event = await seen.get()
        assert event is not None
        if event["type"] in ("upload.completed", "video.status"):
            statuses.append(event.get("status") or event["type"])
    seen.close()
    assert statuses == ["upload.completed", "processing", "ready"], statuses

    # The remuxed top rung made the video playable before the rest of the job ended.
    job = await job_row(client, video_id)
    assert job["status"] == "done" and job["attempts"] == 1
    assert job["cpu_seconds"] > 0
    assert body["published_at"] < job["finished_at"]

    async with master_url(client, video_id) as master:
        ladder = await fetch_ladder(master, tmp_path)
        assert await decode_errors(master) == ""
    assert sorted(r.name for r in ladder) == ["240p", "360p", "audio"]
    assert ladder[-1].name == "audio"  # the audio-only variant last
    starts: dict[str, list[float]] = {}
    for rendition in ladder:
        info = rendition.stream_info
        playlist = rendition.playlist
        assert playlist.playlist_type == "vod" and playlist.is_endlist
        for segment in playlist.segments:
            assert round(segment.duration) <= playlist.target_duration  # RFC 8216 4.3.3.1
        total = sum(s.duration for s in playlist.segments)
        assert abs(total - source_duration) <= 0.1, (rendition.name, total)
        streams = ffprobe(rendition.joined, "-show_streams", "-show_format")
        video = [s for s in streams["streams"] if s["codec_type"] == "video"]
        audio = [s for s in streams["streams"] if s["codec_type"] == "audio"]
        assert audio and audio[0]["codec_name"] == "aac"
        # AVERAGE-BANDWIDTH is measured from the segments (init.mp4 aside, within 2%).
        size = rendition.joined.stat().st_size - rendition.offsets[0]
        assert abs(info.average_bandwidth - size * 8 / total) <= 0.02 * info.average_bandwidth
        assert info.bandwidth >= info.average_bandwidth
        if rendition.name == "audio":
            assert not video and info.resolution is None and info.codecs == "mp4a.40.2"
            continue
        (v,) = video
        assert v["codec_name"] == "h264" and v["pix_fmt"] == "yuv420p"
        assert info.resolution == (v["width"], v["height"])
        num, den = (int(x) for x in v["avg_frame_rate"].split("/"))
        assert abs(num / den - info.frame_rate) < 0.01
        assert abs(num / den - 30) < 0.01
        assert info.codecs == f"avc1.{H264_PROFILES[v['profile']]:02X}" \
            f"{info.codecs[7:9]}{v['level']:02X},mp4a.40.2"
        starts[rendition.name] = segment_starts(rendition)
    sizes = {r.name: r.stream_info.resolution for r in ladder}
    assert sizes == {"360p": (640, 360), "240p": (426, 240), "audio": None}
    # Segment boundaries at the same instants in every rendition, within one frame.
    assert len(starts["360p"]) == len(starts["240p"]) >= 2
    for a, b in zip(starts["360p"], starts["240p"], strict=True):
        assert abs(a - b) <= 1 / 30 + 1e-3, starts

    rows = await client.app[keys.DB].fetch_all(
        "SELECT name, kind, width, height, codecs, bandwidth FROM renditions"
        " WHERE video_id = (SELECT id FROM videos WHERE public_id = ?) ORDER BY id",
        (video_id,))
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == {"360p", "240p", "audio"}
    for rendition in ladder:
        assert by_name[rendition.name]["codecs"] == rendition.stream_info.codecs
        assert by_name[rendition.name]["bandwidth"] == rendition.stream_info.bandwidth
    master_text = storage.video_layout(client.app[keys.CONFIG], video_id).hls / "master.m3u8"
    assert len(m3u8.loads(master_text.read_text()).playlists) == 3
    config = client.app[keys.CONFIG]
    assert storage.video_layout(config, video_id).poster.stat().st_size > 0
    assert (storage.video_layout(config, video_id).storyboard / "storyboard.vtt").is_file()

    metrics = await (await client.get("/metrics", headers=METRICS)).text()
    assert 'reelhouse_jobs{status="done"} 1.0' in metrics
    assert 'reelhouse_jobs{status="running"} 0.0' in metrics
