"""HLS of a ready video, fetched over HTTP and checked with ffprobe, ffmpeg and m3u8.

The playback module's routes (`/api/videos/{id}/hls/...`) are used when the app has
them; until then the video's hls/ directory is served by a small aiohttp static app,
which is enough for ffmpeg to read the ladder over real HTTP.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import m3u8
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestClient, TestServer

from server import keys, storage


def ffprobe(path: Path | str, *args: str) -> dict[str, Any]:
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", *args, str(path)],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    return dict(json.loads(out))


def _has_playback_routes(app: web.Application) -> bool:
    return any("/hls/" in (r.canonical or "") for r in app.router.resources())


@asynccontextmanager
async def master_url(client: TestClient, video_id: str) -> AsyncIterator[str]:
    """An http://127.0.0.1:PORT/... URL of the video's master playlist."""
    if _has_playback_routes(client.app):
        yield str(client.make_url(f"/api/videos/{video_id}/hls/master.m3u8"))
        return
    static = web.Application()
    static.router.add_static("/hls/", storage.video_layout(client.app[keys.CONFIG], video_id).hls)
    server = TestServer(static, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/hls/master.m3u8"))
    finally:
        await server.close()


@dataclass
class Rendition:
    name: str
    stream_info: Any  # m3u8 StreamInfo of the master playlist
    playlist: m3u8.M3U8
    joined: Path  # init.mp4 followed by every segment
    offsets: list[int]  # byte offset of each segment in `joined`


async def fetch_ladder(master: str, tmp: Path) -> list[Rendition]:
    out: list[Rendition] = []
    async with ClientSession() as http:
        async with http.get(master) as resp:
            assert resp.status == 200
            parsed = m3u8.loads(await resp.text(), uri=master)
        assert parsed.is_independent_segments
        for variant in parsed.playlists:
            url = variant.absolute_uri
            async with http.get(url) as resp:
                assert resp.status == 200
                playlist = m3u8.loads(await resp.text(), uri=url)
            base = url.rsplit("/", 1)[0]
            async with http.get(f"{base}/{playlist.segment_map[0].uri}") as resp:
                data = await resp.read()
            offsets = []
            for segment in playlist.segments:
                offsets.append(len(data))
                async with http.get(segment.absolute_uri) as resp:
                    assert resp.status == 200
                    data += await resp.read()
            name = variant.uri.split("/")[-2]
            joined = tmp / f"{name}.mp4"
            joined.write_bytes(data)
            out.append(Rendition(name, variant.stream_info, playlist, joined, offsets))
    return out


def segment_starts(rendition: Rendition) -> list[float]:
    """Presentation time of each segment's first frame; asserts each one is a keyframe."""
    packets = ffprobe(rendition.joined, "-select_streams", "v",
                      "-show_entries", "packet=pts_time,pos,flags")["packets"]
    size = rendition.joined.stat().st_size
    starts = []
    for i, offset in enumerate(rendition.offsets):
        end = rendition.offsets[i + 1] if i + 1 < len(rendition.offsets) else size
        inside = [p for p in packets if offset <= int(p["pos"]) < end]
        assert inside, f"{rendition.name} segment {i} holds no video"
        first = min(inside, key=lambda p: int(p["pos"]))
        assert "K" in first["flags"], f"{rendition.name} segment {i} starts without a keyframe"
        starts.append(min(float(p["pts_time"]) for p in inside))
    # From the rendition's first frame: ffprobe shows a remuxed rung's frames from the
    # source's first pts (after B-frame delay), an encoded rung's from 0.
    return [round(s - starts[0], 6) for s in starts]


async def decode_errors(url_or_path: str) -> str:
    """ffmpeg decodes every stream of every variant; returns what it printed (errors).

    Run in a thread: the HTTP server it reads from is on this event loop."""
    return await asyncio.to_thread(_decode_errors, url_or_path)


def _decode_errors(url_or_path: str) -> str:
    run = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", url_or_path, "-map", "0",
                          "-f", "null", "-"], capture_output=True, text=True, timeout=120,
                         check=False)
    return run.stderr.strip() + ("" if run.returncode == 0 else f" (exit {run.returncode})")
