"""Poster frame and storyboard (sprite sheets plus a WebVTT index) for seek previews."""

from __future__ import annotations

import os
import shutil
from fractions import Fraction
from pathlib import Path

import av
import av.error
import av.filter
from av.container import InputContainer
from av.video.frame import VideoFrame

from media.layout import STORYBOARD_INDEX, TEMPORARY_NAME, VideoLayout, sprite_name, temporary

from .frames import FrameConsumer, Prefilter
from .probe import ProbeResult, VideoInfo, probe

POSTER_SAMPLES = 8
POSTER_MAX_WIDTH = 1280
TILE_WIDTH = 160
COLUMNS = ROWS = 10


def _jpeg(frame: VideoFrame, path: Path, quality: int = 3) -> None:
    """Encode one frame as a baseline JPEG with FFmpeg's mjpeg encoder; write atomically."""
    tmp = temporary(path)
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


class PosterPicker:
    """Keeps the most detailed non-blank frame among samples over the first 30% of the clip.

    Fed displayable frames (rotated, SDR) with their time, in order, from any decode.
    """

    def __init__(self, duration: float) -> None:
        span = duration * (0.3 if duration > 10 else 0.9)
        self.times = [span * (i + 0.5) / POSTER_SAMPLES for i in range(POSTER_SAMPLES)]
        self.best: tuple[float, VideoFrame] | None = None
        self.fallback: VideoFrame | None = None

    def wants(self, t: float) -> bool:
        return bool(self.times) and t >= self.times[0] - 0.02

    def missing(self, until: float) -> list[float]:
        """The instants before `until` it still needs a frame at."""
        return [t for t in self.times if t < until]

    def feed(self, frame: VideoFrame, t: float) -> None:
        if not self.wants(t):
            return
        while self.times and t >= self.times[0] - 0.02:
            self.times.pop(0)
        self.fallback = self.fallback or frame
        if is_blank(frame):
            return
        variance = luma_stats(frame)[1]
        if self.best is None or variance > self.best[0]:
            self.best = (variance, frame)

    def write(self, out_path: str | os.PathLike[str]) -> Path | None:
        chosen = self.best[1] if self.best else self.fallback
        if chosen is None:
            return None
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


class StoryboardBuilder:
    """storyboard/sprite_NNN.jpg (10x10 tiles, 160 px wide) and storyboard/storyboard.vtt.

    Fed displayable frames with their time, in order; takes the first frame at or after
    each multiple of `interval`. Each tile is kept as a small JPEG in the partial
    directory as it is taken, so a stopped run's tiles serve the next run; `finish` tiles
    them into sheets with FFmpeg's `tile` filter.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        duration: float,
        display_width: int,
        display_height: int,
        interval: float | None = None,
    ) -> None:
        self.duration = duration
        self.step = interval or default_interval(duration)
        count = max(1, int(duration / self.step + 0.999))
        self.times = [i * self.step for i in range(count)]
        self.w = TILE_WIDTH
        self.h = max(2, round(TILE_WIDTH * display_height / display_width / 2) * 2)
        self.layout = VideoLayout(Path(out_dir))
        self.final = self.layout.storyboard
        self.tmp = self.layout.storyboard_partial
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.last: VideoFrame | None = None
        self.tiles = self._kept()

    def _kept(self) -> int:
        """Tiles a stopped run left (the first ones, each whole); anything else goes."""
        kept = 0
        while kept < len(self.times) and self.layout.tile(kept).is_file():
            kept += 1
        names = {self.layout.tile(i).name for i in range(kept)}
        for path in self.tmp.iterdir():
            if path.name not in names or TEMPORARY_NAME.match(path.name):
                path.unlink(missing_ok=True)
        if kept:
            self.last = _read_tile(self.layout.tile(kept - 1))
        return kept

    def wants(self, t: float) -> bool:
        return self.tiles < len(self.times) and t >= self.times[self.tiles] - 0.02

    def missing(self, until: float) -> list[float]:
        return [t for t in self.times[self.tiles :] if t < until]

    def feed(self, frame: VideoFrame, t: float) -> None:
        if self.wants(t):
            self.last = frame.reformat(width=self.w, height=self.h, format="yuv420p")
        while self.last is not None and self.wants(t):
            self._push(self.last)

    def _push(self, tile: VideoFrame) -> None:
        _jpeg(tile, self.layout.tile(self.tiles), quality=2)
        self.tiles += 1

    def _sheet(self, number: int) -> None:
        per_sheet = COLUMNS * ROWS
        graph = av.filter.Graph()
        src = sink = None
        for index in range(number * per_sheet, min(len(self.times), (number + 1) * per_sheet)):
            tile = _read_tile(self.layout.tile(index))
            if src is None:
                src = graph.add_buffer(
                    width=self.w, height=self.h, format=tile.format, time_base=Fraction(1, 1)
                )
                node = graph.add("tile", f"{COLUMNS}x{ROWS}")
                sink = graph.add("buffersink")
                src.link_to(node)
                node.link_to(sink)
                graph.configure()
            tile.pts, tile.time_base = index, Fraction(1, 1)
            graph.push(tile)
        assert sink is not None
        graph.push(None)
        sprite = sink.pull()
        assert isinstance(sprite, VideoFrame)
        _jpeg(sprite, self.tmp / sprite_name(number), quality=5)

    def finish(self) -> Path:
        if self.last is None:  # no frame at all: one blank tile keeps the index valid
            self.last = VideoFrame(self.w, self.h, "yuv420p")
            for plane, value in zip(self.last.planes, (16, 128, 128), strict=True):
                plane.update(bytes([value]) * plane.buffer_size)
        while self.tiles < len(self.times):
            self._push(self.last)  # the end of the clip repeats its last frame
        per_sheet = COLUMNS * ROWS
        for number in range((len(self.times) + per_sheet - 1) // per_sheet):
            self._sheet(number)
        for index in range(len(self.times)):
            self.layout.tile(index).unlink()
        lines = ["WEBVTT", ""]
        for i, t in enumerate(self.times):
            x, y = (i % COLUMNS) * self.w, (i % per_sheet // COLUMNS) * self.h
            end = min(t + self.step, self.duration)
            lines += [
                f"{_vtt_time(t)} --> {_vtt_time(end)}",
                f"{sprite_name(i // per_sheet)}#xywh={x},{y},{self.w},{self.h}",
                "",
            ]
        (self.tmp / STORYBOARD_INDEX).write_text("\n".join(lines), encoding="utf-8")
        shutil.rmtree(self.final, ignore_errors=True)
        os.replace(self.tmp, self.final)
        return self.final / STORYBOARD_INDEX

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def _read_tile(path: Path) -> VideoFrame:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            return frame
    raise ValueError(f"{path.name} holds no picture")


def seek_feed(
    source: str | os.PathLike[str],
    video: VideoInfo,
    consumer: FrameConsumer,
    times: list[float],
) -> None:
    """Feed a consumer by seeking to each instant: for when no encode pass decodes the video."""
    shape = _shaper(video)
    with av.open(str(source)) as container:
        index = _ordinal(container, video)
        for t in times:
            frame = _frame_at(container, index, t)
            if frame is not None:
                consumer.feed(_display(frame, shape), t)


def make_poster(
    source: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    info: ProbeResult | None = None,
) -> Path | None:
    info = info or probe(source)
    if info.video is None:
        return None
    picker = PosterPicker(info.duration)
    seek_feed(source, info.video, picker, list(picker.times))
    return picker.write(out_path)


def make_storyboard(
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    interval: float | None = None,
    info: ProbeResult | None = None,
) -> Path | None:
    info = info or probe(source)
    video = info.video
    if video is None or info.duration <= 0:
        return None
    builder = StoryboardBuilder(
        out_dir, info.duration, video.display_width, video.display_height, interval
    )
    try:
        seek_feed(source, video, builder, list(builder.times))
        return builder.finish()
    except BaseException:
        builder.abort()
        raise
