"""HLS playlists (RFC 8216): media playlists per rendition and the master playlist."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from media.layout import (
    HLS,
    IFRAME_PLAYLIST,
    INIT,
    MASTER,
    MEDIA_PLAYLIST,
    VideoLayout,
    temporary,
)


@dataclass(frozen=True)
class IFrameStats:
    """An I-frame playlist's figures (media/iframes.py), for the master."""

    bandwidth: int  # peak over the I-frames: bytes of one / time until the next
    average_bandwidth: int


@dataclass(frozen=True)
class RenditionInfo:
    name: str  # "1080p", "audio"
    kind: Literal["video", "audio"]
    width: int | None
    height: int | None
    frame_rate: float | None
    codecs: str  # RFC 6381 string from the encoded streams, "avc1.640028,mp4a.40.2"
    bandwidth: int  # peak segment bit rate, bit/s
    average_bandwidth: int
    segments: int
    duration: float
    target_duration: int
    playlist: str  # relative to the video's output dir: "hls/1080p/index.m3u8"
    copied: bool = False  # video packets copied from the source, not re-encoded


def rendition_info(
    name: str,
    kind: Literal["video", "audio"],
    sizes: Sequence[int],
    durations: Sequence[float],
    *,
    width: int | None = None,
    height: int | None = None,
    frame_rate: float | None = None,
    codecs: str,
    copied: bool = False,
) -> RenditionInfo:
    """A rendition described from its segments: sizes in bytes, durations in seconds."""
    total = sum(durations)
    # Peak over segments of at least half a second: a short last one says little.
    rates = [size * 8 / d for size, d in zip(sizes, durations, strict=True) if d >= 0.5]
    average = int(sum(sizes) * 8 / total) if total > 0 else 0
    return RenditionInfo(
        name=name,
        kind=kind,
        width=width,
        height=height,
        frame_rate=frame_rate,
        codecs=codecs,
        bandwidth=int(max(rates, default=average)),
        average_bandwidth=average,
        segments=len(sizes),
        duration=round(total, 3),
        target_duration=target_duration(durations),
        playlist=f"{HLS}/{name}/{MEDIA_PLAYLIST}",
        copied=copied,
    )


def write_atomic(path: Path, data: str | bytes) -> None:
    """Whole under its name or not there, power loss included: the bytes reach the disk
    (fsync) before the rename does, so a later start never finds a torn file."""
    tmp = temporary(path)
    with open(tmp, "wb") as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def target_duration(durations: Sequence[float]) -> int:
    # RFC 8216 4.3.3.1: each EXTINF, rounded to the nearest integer, is <= the target.
    return max([1, *(int(d + 0.5) for d in durations)])


def media_playlist(names: Sequence[str], durations: Sequence[float]) -> str:
    lines = [
        "#EXTM3U",
        # Version 6: EXT-X-MAP in a playlist that is not I-frames only (RFC 8216 section 7).
        "#EXT-X-VERSION:6",
        f"#EXT-X-TARGETDURATION:{target_duration(durations)}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f'#EXT-X-MAP:URI="{INIT}"',
    ]
    for name, duration in zip(names, durations, strict=True):
        lines += [f"#EXTINF:{duration:.5f},", name]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def write_media_playlist(directory: Path, names: Sequence[str], durations: Sequence[float]) -> None:
    write_atomic(directory / MEDIA_PLAYLIST, media_playlist(names, durations))


def _stream_inf(info: RenditionInfo) -> str:
    attrs = [
        f"BANDWIDTH={info.bandwidth}",
        f"AVERAGE-BANDWIDTH={info.average_bandwidth}",
        f'CODECS="{info.codecs}"',
    ]
    if info.kind == "video" and info.width and info.height:
        attrs.append(f"RESOLUTION={info.width}x{info.height}")
    if info.kind == "video" and info.frame_rate:
        attrs.append(f"FRAME-RATE={info.frame_rate:.3f}")
    # No 608/708 captions in the video: said, so that players do not look for them
    # (RFC 8216 section 4.3.4.2).
    attrs.append("CLOSED-CAPTIONS=NONE")
    return "#EXT-X-STREAM-INF:" + ",".join(attrs)


def _iframe_stream_inf(info: RenditionInfo, stats: IFrameStats) -> str:
    """RFC 8216 section 4.3.4.3: the rendition's I-frame playlist, its video codec only."""
    video_codecs = [c for c in info.codecs.split(",") if not c.startswith("mp4a")]
    attrs = [f"BANDWIDTH={stats.bandwidth}", f"AVERAGE-BANDWIDTH={stats.average_bandwidth}",
             f'CODECS="{",".join(video_codecs) or info.codecs}"']
    if info.width and info.height:
        attrs.append(f"RESOLUTION={info.width}x{info.height}")
    attrs.append(f'URI="{info.name}/{IFRAME_PLAYLIST}"')
    return "#EXT-X-I-FRAME-STREAM-INF:" + ",".join(attrs)


def master_playlist(renditions: Sequence[RenditionInfo],
                    iframes: Mapping[str, IFrameStats] | None = None) -> str:
    """Video variants by bandwidth, highest first; the audio-only variant last; then the
    I-frame playlists of the video variants. No EXT-X-VERSION: nothing here needs more
    than version 1 (RFC 8216 section 7)."""
    iframes = iframes or {}
    video = sorted((r for r in renditions if r.kind == "video"), key=lambda r: -r.bandwidth)
    audio = [r for r in renditions if r.kind == "audio"]
    lines = ["#EXTM3U", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for info in [*video, *audio]:
        # Variant URIs are relative to master.m3u8, which sits in hls/.
        lines += [_stream_inf(info), f"{info.name}/{MEDIA_PLAYLIST}"]
    lines += [_iframe_stream_inf(info, iframes[info.name]) for info in video
              if info.name in iframes]
    return "\n".join(lines) + "\n"


def write_master(out_dir: str | os.PathLike[str], renditions: Sequence[RenditionInfo],
                 iframes: Mapping[str, IFrameStats] | None = None) -> Path:
    hls_dir = VideoLayout(Path(out_dir)).hls
    hls_dir.mkdir(parents=True, exist_ok=True)
    path = hls_dir / MASTER
    write_atomic(path, master_playlist(renditions, iframes))
    return path
