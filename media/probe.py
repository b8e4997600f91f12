"""Describe a source file: streams, rotation, HDR, interlacing, keyframes, truncation.

One packet pass (no decoding) gives keyframe instants, frame timing and how much of
the declared duration is really there; a few decoded frames prove the streams are
decodable and carry what only frames carry (the display matrix, interlacing).
"""

from __future__ import annotations

import itertools
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import av
import av.error
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from .errors import MediaError

NOT_MEDIA = "not a video or audio file"
NOT_DECODABLE = "no decodable video or audio stream"
# Demuxers that open still images or text as a one-frame "video".
_NOT_MEDIA_FORMATS = {"image2", "tty", "lavfi", "txt"}
_IMAGE_CODECS = {
    "png",
    "mjpeg",
    "bmp",
    "gif",
    "webp",
    "tiff",
    "ansi",
    "jpegls",
    "jpeg2000",
    "svg",
    "qoi",
}
_HDR_TRANSFERS = {16: "smpte2084", 18: "arib-std-b67"}
_COMPLETE = 0.97
_S = TypeVar("_S", VideoStream, AudioStream)  # share of the declared duration that must be present


@dataclass(frozen=True)
class VideoInfo:
    index: int
    codec: str
    profile: str | None
    pix_fmt: str
    bit_depth: int
    width: int
    height: int
    rotation: int  # display matrix angle, counter-clockwise degrees as ffprobe reports it
    display_width: int
    display_height: int
    frame_rate: float  # average
    variable_frame_rate: bool
    bit_rate: int | None
    color_transfer: str | None
    hdr: bool
    interlaced: bool
    start_time: float  # pts of the first frame, seconds
    keyframes: tuple[float, ...]  # presentation instants relative to start_time


@dataclass(frozen=True)
class AudioInfo:
    index: int
    codec: str
    channels: int
    sample_rate: int
    bit_rate: int | None
    start_time: float


@dataclass(frozen=True)
class ProbeResult:
    path: Path
    format_name: str
    duration: float
    size: int
    bit_rate: int
    video: VideoInfo | None
    audio: AudioInfo | None

    @property
    def media_type(self) -> str:
        return container_media_type(self.format_name, self.video is not None)


# Demuxer name (as FFmpeg reports it) -> the media type the original is served with. Only
# these: anything else is application/octet-stream. The type is derived from what the
# probe found, never from what an uploader said (a client-chosen text/html or
# text/javascript would turn a polyglot upload into a page or a script).
_VIDEO_TYPES = {
    "mov,mp4,m4a,3gp,3g2,mj2": "video/mp4", "matroska,webm": "video/x-matroska",
    "mpegts": "video/mp2t", "avi": "video/x-msvideo", "flv": "video/x-flv",
    "ogg": "video/ogg", "asf": "video/x-ms-asf", "mpeg": "video/mpeg",
}
_AUDIO_TYPES = {
    "mov,mp4,m4a,3gp,3g2,mj2": "audio/mp4", "matroska,webm": "audio/x-matroska",
    "mp3": "audio/mpeg", "wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg",
    "aac": "audio/aac",
}
SAFE_MEDIA_TYPES = frozenset(_VIDEO_TYPES.values()) | frozenset(_AUDIO_TYPES.values())


def container_media_type(format_name: str, has_video: bool) -> str:
    table = _VIDEO_TYPES if has_video else _AUDIO_TYPES
    return table.get(format_name, "application/octet-stream")


@dataclass
class _Scan:
    pts: list[float]
    keyframes: list[float]
    end: float = 0.0
    video_bytes: int = 0


def probe(
    path: str | os.PathLike[str],
    *,
    max_duration: float | None = None,
    max_short_side: int | None = None,
) -> ProbeResult:
    source = Path(path)
    size = source.stat().st_size if source.exists() else 0
    if size == 0:
        raise MediaError(NOT_MEDIA)
    try:
        container = av.open(str(source), metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise MediaError(_open_failure(source)) from exc
    with container:
        return _probe_open(source, container, size, max_duration, max_short_side)


def _open_failure(source: Path) -> str:
    with open(source, "rb") as f:
        head = f.read(12)
    # An MP4 whose index (moov) sat at the end and was cut off still starts with ftyp.
    if head[4:8] == b"ftyp":
        return "file is truncated: its index (moov) is missing"
    return NOT_MEDIA


def _probe_open(
    source: Path,
    container: InputContainer,
    size: int,
    max_duration: float | None,
    max_short_side: int | None,
) -> ProbeResult:
    format_name = container.format.name
    vstream = _pick(container.streams.video)
    astream = _pick(container.streams.audio)
    if (
        format_name in _NOT_MEDIA_FORMATS
        or format_name.endswith("_pipe")
        or (vstream is None and astream is None)
    ):
        raise MediaError(NOT_MEDIA)
    if vstream is not None and vstream.codec_context.name in _IMAGE_CODECS:
        if astream is None:
            raise MediaError(NOT_MEDIA)
        vstream = None  # cover art next to the audio
    declared = container.duration / 1_000_000 if container.duration else 0.0
    scan = _scan_packets(container, vstream, astream, declared)
    duration = declared if declared > 0 else scan.end
    if declared > 1.0 and scan.end < declared * _COMPLETE:
        raise MediaError(f"file is truncated at {int(100 * scan.end / declared)}%")
    if max_duration is not None and duration > max_duration:
        raise MediaError(f"duration {duration:.0f} s exceeds the limit of {max_duration:.0f} s")
    video = _video_info(source, vstream, scan, duration) if vstream is not None else None
    audio = _audio_info(source, astream) if astream is not None else None
    if video is None and audio is None:
        raise MediaError(NOT_DECODABLE)
    if video is not None and max_short_side is not None:
        short = min(video.width, video.height)
        if short > max_short_side:
            raise MediaError(
                f"frame size {video.width}x{video.height} exceeds the limit of "
                f"{max_short_side} lines"
            )
    bit_rate = int(size * 8 / duration) if duration > 0 else 0
    return ProbeResult(source, format_name, duration, size, bit_rate, video, audio)


def _pick(streams: Sequence[_S]) -> _S | None:
    for stream in streams:
        if stream.disposition & stream.disposition.default:
            return stream
    return streams[0] if streams else None


def _scan_packets(
    container: InputContainer,
    vstream: VideoStream | None,
    astream: AudioStream | None,
    declared: float,
) -> _Scan:
    scan = _Scan([], [])
    selected = [s for s in (vstream, astream) if s is not None]
    try:
        for packet in container.demux(selected):
            if packet.pts is None or packet.size == 0 or packet.time_base is None:
                continue
            t = float(packet.pts * packet.time_base)
            end = t + float((packet.duration or 0) * packet.time_base)
            scan.end = max(scan.end, end)
            if vstream is not None and packet.stream_index == vstream.index:
                scan.pts.append(t)
                scan.video_bytes += packet.size
                if packet.is_keyframe:
                    scan.keyframes.append(t)
    except (av.error.FFmpegError, EOFError):
        pass  # what was read so far decides whether the file is complete
    start = min(container.start_time or 0, 0) / 1_000_000
    scan.end -= start
    if declared <= 0:
        scan.end = max(scan.end, 0.0)
    return scan


def _first_frames(source: Path, index: int, count: int) -> list[VideoFrame]:
    frames: list[VideoFrame] = []
    try:
        with av.open(str(source)) as container:
            stream = container.streams.video[index]
            for frame in container.decode(stream):
                frames.append(frame)
                if len(frames) >= count:
                    break
    except (av.error.FFmpegError, EOFError):
        pass
    return frames


def _video_info(
    source: Path, stream: VideoStream, scan: _Scan, duration: float
) -> VideoInfo | None:
    ordinal = list(stream.container.streams.video).index(stream)
    frames = _first_frames(source, ordinal, 5)
    if not frames:
        return None
    first = frames[0]
    ctx = stream.codec_context
    pix_fmt = first.format.name
    rotation = int(first.rotation) % 360
    width, height = first.width, first.height
    swap = rotation in (90, 270)
    pts = sorted(scan.pts)
    start = pts[0] if pts else 0.0
    rate, variable = _frame_rate(stream, pts)
    trc = int(first.color_trc or ctx.color_trc or 0)
    duration_v = (pts[-1] - start) if len(pts) > 1 else duration
    bit_rate = stream.bit_rate or (
        int(scan.video_bytes * 8 / duration_v) if duration_v > 0 else None
    )
    return VideoInfo(
        index=stream.index,
        codec=ctx.name,
        profile=stream.profile,
        pix_fmt=pix_fmt,
        bit_depth=max(c.bits for c in first.format.components),
        width=width,
        height=height,
        rotation=rotation,
        display_width=height if swap else width,
        display_height=width if swap else height,
        frame_rate=rate,
        variable_frame_rate=variable,
        bit_rate=bit_rate,
        color_transfer=_HDR_TRANSFERS.get(trc),
        hdr=trc in _HDR_TRANSFERS,
        interlaced=ctx.field_order > 1 or any(f.interlaced_frame for f in frames),
        start_time=start,
        keyframes=tuple(round(k - start, 6) for k in sorted(set(scan.keyframes))),
    )


def _frame_rate(stream: VideoStream, pts: list[float]) -> tuple[float, bool]:
    avg = float(stream.average_rate) if stream.average_rate else 0.0
    if avg <= 0 and len(pts) > 1:
        avg = (len(pts) - 1) / (pts[-1] - pts[0])
    deltas = [b - a for a, b in itertools.pairwise(pts) if b > a]
    if len(deltas) < 3:
        return avg or 25.0, False
    median = statistics.median(deltas)
    irregular = sum(1 for d in deltas if abs(d - median) > 0.25 * median)
    variable = irregular > 0.05 * len(deltas)
    base = float(stream.base_rate) if stream.base_rate else avg
    if avg > 0 and base > 0 and abs(base - avg) / avg > 0.02 and irregular:
        variable = True
    return avg or 1.0 / median, variable


def _audio_info(source: Path, stream: AudioStream) -> AudioInfo | None:
    ctx = stream.codec_context
    ordinal = list(stream.container.streams.audio).index(stream)
    decoded = False
    try:
        with av.open(str(source)) as container:
            for _frame in container.decode(container.streams.audio[ordinal]):
                decoded = True
                break
    except (av.error.FFmpegError, EOFError):
        decoded = False
    if not decoded:
        return None
    start = (
        float(stream.start_time * stream.time_base)
        if stream.start_time and stream.time_base
        else 0.0
    )
    return AudioInfo(
        index=stream.index,
        codec=ctx.name,
        channels=ctx.channels,
        sample_rate=ctx.sample_rate,
        bit_rate=stream.bit_rate or None,
        start_time=start,
    )
