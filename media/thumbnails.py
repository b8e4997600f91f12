"""Poster frame and storyboard (sprite sheets plus a WebVTT index) for seek previews."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import av.error
import av.filter
from av.container import InputContainer
from av.video.frame import VideoFrame

from .frames import Prefilter
from .probe import ProbeResult, VideoInfo, probe

POSTER_SAMPLES = 8
POSTER_MAX_WIDTH = 1280
TILE_WIDTH = 160
COLUMNS = ROWS = 10


def _jpeg(frame: VideoFrame, path: Path, quality: int = 3) -> None:
    """Encode one frame as a baseline JPEG with FFmpeg's mjpeg encoder; write atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    frame = frame.reformat(format="yuvj420p", dst_color_range=2)
    frame.pts, frame.time_base = 0, Fraction(1, 1)
    with av.open(str(tmp), "w", format="image2", options={"update": "1"}) as out:
        stream = out.add_stream("mjpeg", rate=1)
        stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, "yuvj420p"
        stream.codec_context.color_range = 2
        stream.codec_context.qmin = stream.codec_context.qmax = quality
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    os.replace(tmp, path)


def luma_stats(frame: VideoFrame) -> tuple[float, float]:
    """Mean and variance of the luma of a 64-pixel-wide thumbnail of the frame."""
    small = frame.reformat(width=64, height=36, format="gray")
    plane = small.planes[0]
    data = bytes(plane)
    values = [
        v for row in range(36) for v in data[row * plane.line_size : row * plane.line_size + 64]
    ]
    mean = sum(values) / len(values)
    return mean, sum((v - mean) ** 2 for v in values) / len(values)


def is_blank(frame: VideoFrame) -> bool:
    mean, variance = luma_stats(frame)
    return mean < 24 or mean > 240 or variance < 60


def _frame_at(container: InputContainer, index: int, t: float) -> VideoFrame | None:
    stream = container.streams.video[index]
    tb = stream.time_base or Fraction(1, 90000)
    start = stream.start_time or 0
    try:
        container.seek(start + int(t / tb), stream=stream, backward=True)
        for frame in container.decode(stream):
            if frame.pts is None or float((frame.pts - start) * tb) >= t - 0.02:
                return frame
    except (av.error.FFmpegError, EOFError):
        return None
    return None


def _display(frame: VideoFrame, shape: Prefilter) -> VideoFrame:
    shaped = shape(frame)
    return shaped[0] if shaped else frame


def _shaper(video: VideoInfo) -> Prefilter:
    # No deinterlacer: frames come one by one after seeks, and yadif needs a neighbour.
    return Prefilter(video, deinterlace=False)


def _ordinal(container: InputContainer, video: VideoInfo) -> int:
    return [s.index for s in container.streams.video].index(video.index)


def make_poster(
    source: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    info: ProbeResult | None = None,
) -> Path | None:
    """Pick the most detailed non-blank frame among samples over the first 30% of the clip."""
    info = info or probe(source)
    video = info.video
    if video is None:
        return None
    span = info.duration * (0.3 if info.duration > 10 else 0.9)
    times = [span * (i + 0.5) / POSTER_SAMPLES for i in range(POSTER_SAMPLES)]
    best: tuple[float, VideoFrame] | None = None
    fallback: VideoFrame | None = None
    with av.open(str(source)) as container:
        index = _ordinal(container, video)
        for t in times:
            frame = _frame_at(container, index, t)
            if frame is None:
                continue
            fallback = fallback or frame
            if is_blank(frame):
                continue
            variance = luma_stats(frame)[1]
            if best is None or variance > best[0]:
                best = (variance, frame)
    chosen = best[1] if best else fallback
    if chosen is None:
        return None
    chosen = _display(chosen, _shaper(video))
    if chosen.width > POSTER_MAX_WIDTH:
        height = round(chosen.height * POSTER_MAX_WIDTH / chosen.width / 2) * 2
        chosen = chosen.reformat(width=POSTER_MAX_WIDTH, height=height)
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _jpeg(chosen, path)
    return path


def default_interval(duration: float) -> float:
    return min(10.0, max(1.0, round(duration / 100, 1)))


def _vtt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def _tiles(
    source: str | os.PathLike[str], video: VideoInfo, times: list[float], w: int, h: int
) -> Iterator[VideoFrame]:
    last: VideoFrame | None = None
    shape = _shaper(video)
    with av.open(str(source)) as container:
        index = _ordinal(container, video)
        for t in times:
            frame = _frame_at(container, index, t)
            if frame is not None:
                last = _display(frame, shape).reformat(width=w, height=h, format="yuv420p")
            if last is None:
                last = VideoFrame(w, h, "yuv420p")
                for plane, value in zip(last.planes, (16, 128, 128), strict=True):
                    plane.update(bytes([value]) * plane.buffer_size)
            yield last


def make_storyboard(
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    interval: float | None = None,
    info: ProbeResult | None = None,
) -> Path | None:
    """storyboard/sprite_NNN.jpg (10x10 tiles, 160 px wide) and storyboard/storyboard.vtt."""
    info = info or probe(source)
    video = info.video
    if video is None or info.duration <= 0:
        return None
    step = interval or default_interval(info.duration)
    times = [i * step for i in range(max(1, int(info.duration / step + 0.999)))]
    w = TILE_WIDTH
    h = max(2, round(TILE_WIDTH * video.display_height / video.display_width / 2) * 2)
    final = Path(out_dir) / "storyboard"
    tmp = Path(out_dir) / ".storyboard.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    per_sheet = COLUMNS * ROWS
    for sheet in range(0, len(times), per_sheet):
        graph = av.filter.Graph()
        src = graph.add_buffer(
            width=w, height=h, format=VideoFrame(w, h, "yuv420p").format, time_base=Fraction(1, 1)
        )
        tile = graph.add("tile", f"{COLUMNS}x{ROWS}")
        sink = graph.add("buffersink")
        src.link_to(tile)
        tile.link_to(sink)
        graph.configure()
        for n, frame in enumerate(_tiles(source, video, times[sheet : sheet + per_sheet], w, h)):
            frame.pts, frame.time_base = n, Fraction(1, 1)
            graph.push(frame)
        graph.push(None)
        sprite = sink.pull()
        assert isinstance(sprite, VideoFrame)
        _jpeg(sprite, tmp / f"sprite_{sheet // per_sheet:03d}.jpg", quality=5)
    lines = ["WEBVTT", ""]
    for i, t in enumerate(times):
        x, y = (i % COLUMNS) * w, (i % per_sheet // COLUMNS) * h
        end = min(t + step, info.duration)
        lines += [
            f"{_vtt_time(t)} --> {_vtt_time(end)}",
            f"sprite_{i // per_sheet:03d}.jpg#xywh={x},{y},{w},{h}",
            "",
        ]
    (tmp / "storyboard.vtt").write_text("\n".join(lines), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final / "storyboard.vtt"
