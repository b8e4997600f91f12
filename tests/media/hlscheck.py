"""Check a finished HLS output with real clients: ffprobe, ffmpeg and the m3u8 parser."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import m3u8

from media.hls import RenditionInfo

H264_PROFILES = {"High": 100, "Main": 77, "Baseline": 66, "Constrained Baseline": 66}


def ffprobe(path: Path, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", *args, str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


@dataclass
class Checked:
    name: str
    streams: list[dict[str, Any]]
    segment_starts: list[float]  # first video pts per segment, from the rendition's own start
    segment_durations: list[float]
    target: int
    duration: float


def joined(rendition_dir: Path, playlist: m3u8.M3U8, dest: Path) -> tuple[Path, list[int]]:
    """init.mp4 + every segment as one file; returns it and each segment's first byte offset."""
    data = (rendition_dir / "init.mp4").read_bytes()
    offsets = []
    for seg in playlist.segments:
        offsets.append(len(data))
        data += (rendition_dir / seg.uri).read_bytes()
    dest.write_bytes(data)
    return dest, offsets


def check_rendition(out_dir: Path, info: RenditionInfo, tmp: Path) -> Checked:
    rdir = out_dir / "hls" / info.name
    playlist = m3u8.load(str(rdir / "index.m3u8"))
    text = (rdir / "index.m3u8").read_text()
    assert "#EXT-X-VERSION:6" in text  # EXT-X-MAP outside an I-frames-only playlist
    assert playlist.playlist_type == "vod"
    assert playlist.is_endlist
    assert playlist.is_independent_segments
    assert playlist.segment_map and playlist.segment_map[0].uri == "init.mp4"
    target = int(playlist.target_duration)
    durations = [float(s.duration) for s in playlist.segments]
    for d in durations:
        # RFC 8216 4.3.3.1: the EXTINF rounded to the nearest integer is <= target.
        assert round(d) <= target and d <= target + 0.5, (info.name, d, target)
    assert len(durations) == info.segments
    whole, offsets = joined(rdir, playlist, tmp / f"{info.name}.mp4")
    streams = ffprobe(whole, "-show_streams")["streams"]
    starts: list[float] = []
    if info.kind == "video":
        packets = ffprobe(
            whole, "-select_streams", "v", "-show_entries", "packet=pts_time,pos,flags"
        )["packets"]
        for i, offset in enumerate(offsets):
            end = offsets[i + 1] if i + 1 < len(offsets) else whole.stat().st_size
            inside = [p for p in packets if offset <= int(p["pos"]) < end]
            assert inside, f"{info.name} segment {i} has no video"
            first = min(inside, key=lambda p: int(p["pos"]))
            assert "K" in first["flags"], f"{info.name} segment {i} does not start with a keyframe"
            starts.append(min(float(p["pts_time"]) for p in inside))
        origin = min(float(p["pts_time"]) for p in packets)
        starts = [round(s - origin, 4) for s in starts]
    return Checked(info.name, streams, starts, durations, target, sum(durations))


def check_master(out_dir: Path, infos: tuple[RenditionInfo, ...], tmp: Path) -> dict[str, Checked]:
    master = m3u8.load(str(out_dir / "hls" / "master.m3u8"))
    text = (out_dir / "hls" / "master.m3u8").read_text()
    assert "#EXT-X-INDEPENDENT-SEGMENTS" in text
    by_uri = {p.uri: p for p in master.playlists}
    assert len(by_uri) == len(infos)
    assert master.playlists[-1].uri.startswith("audio/") or all(i.kind == "video" for i in infos)
    checked: dict[str, Checked] = {}
    for info in infos:
        variant = by_uri[f"{info.name}/index.m3u8"].stream_info
        c = check_rendition(out_dir, info, tmp)
        checked[info.name] = c
        assert variant.codecs == info.codecs
        assert variant.bandwidth >= variant.average_bandwidth > 0
        assert variant.bandwidth == info.bandwidth
        # BANDWIDTH is the peak segment bit rate measured from the files.
        rdir = out_dir / "hls" / info.name
        playlist = m3u8.load(str(rdir / "index.m3u8"))
        rates = [
            (rdir / s.uri).stat().st_size * 8 / s.duration
            for s in playlist.segments
            if s.duration >= 0.5
        ]
        assert abs(max(rates) - variant.bandwidth) <= 0.01 * variant.bandwidth + 50
        video = [s for s in c.streams if s["codec_type"] == "video"]
        audio = [s for s in c.streams if s["codec_type"] == "audio"]
        if info.kind == "audio":
            assert variant.resolution is None
            assert variant.codecs == "mp4a.40.2" and not video
        else:
            (v,) = video
            assert v["codec_name"] == "h264" and v["pix_fmt"] == "yuv420p"
            assert variant.resolution == (v["width"], v["height"])
            num, den = (int(x) for x in v["avg_frame_rate"].split("/"))
            assert abs(num / den - float(variant.frame_rate)) < 0.01
            profile = H264_PROFILES[v["profile"]]
            assert variant.codecs.startswith(f"avc1.{profile:02X}")
            assert int(variant.codecs[9:11], 16) == v["level"]
        if audio:
            assert audio[0]["codec_name"] == "aac" and audio[0]["profile"] == "LC"
            assert variant.codecs.endswith("mp4a.40.2")
    run = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(out_dir / "hls" / "master.m3u8"),
            "-map",
            "0",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0 and run.stderr.strip() == "", run.stderr
    return checked


def assert_aligned(checked: dict[str, Checked], frame: float) -> None:
    """Segment start instants are the same in every video rendition, within one frame."""
    video = [c for c in checked.values() if c.segment_starts]
    reference = video[0].segment_starts
    for c in video[1:]:
        assert len(c.segment_starts) == len(reference), (c.name, c.segment_starts, reference)
        for a, b in zip(c.segment_starts, reference, strict=True):
            assert abs(a - b) <= frame + 1e-3, (c.name, c.segment_starts, reference)
