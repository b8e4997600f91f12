"""Frame work shared by all rungs (rotation, deinterlacing) and done per rung (CFR, scaling)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction

import av.error
import av.filter
from av.video.frame import PictureType, VideoFrame
from av.video.reformatter import ColorPrimaries, Colorspace, ColorTrc

from .probe import VideoInfo

_NTSC = {23.976: Fraction(24000, 1001), 29.97: Fraction(30000, 1001), 59.94: Fraction(60000, 1001)}


def to_sdr_kwargs(convert: bool) -> dict[str, object]:
    """swscale arguments that turn BT.2020 / PQ / HLG pictures into BT.709 SDR.

    The bundled FFmpeg has no zscale, so the `tonemap` filter cannot be fed linear
    light. FFmpeg 8's swscale converts transfer and primaries itself when the target
    transfer is set: it maps the BT.2408 reference white (203 cd/m2 in PQ, 75% in HLG)
    to SDR white and clips the highlights above it, without a roll-off curve. That is
    the documented fallback for HDR sources: right mid-tones, flat highlights.
    """
    if not convert:
        return {}
    return {
        "dst_colorspace": Colorspace.ITU709,
        "dst_color_trc": ColorTrc.BT709,
        "dst_color_primaries": ColorPrimaries.BT709,
    }


def needs_sdr(video: VideoInfo) -> bool:
    return video.hdr or video.bit_depth > 8


def rate_fraction(fps: float) -> Fraction:
    return _NTSC.get(round(fps, 3), Fraction(fps).limit_denominator(1001))


def rotation_filters(rotation: int) -> list[tuple[str, str | None]]:
    """Filters that apply a display matrix (counter-clockwise degrees) to the pixels."""
    if rotation == 90:
        return [("transpose", "cclock")]
    if rotation == 270:
        return [("transpose", "clock")]
    if rotation == 180:
        return [("hflip", None), ("vflip", None)]
    return []


class Prefilter:
    """Rotation and deinterlacing, done once per decoded frame before any scaling."""

    def __init__(self, video: VideoInfo) -> None:
        self.filters: list[tuple[str, str | None]] = []
        if video.interlaced:
            self.filters.append(("yadif", "mode=send_frame:parity=auto:deint=interlaced"))
        self.filters += rotation_filters(video.rotation)
        self.graph: av.filter.Graph | None = None
        self.sink: av.filter.context.FilterContext | None = None

    def _build(self, frame: VideoFrame) -> None:
        graph = av.filter.Graph()
        last = graph.add_buffer(
            width=frame.width,
            height=frame.height,
            format=frame.format,
            time_base=frame.time_base or Fraction(1, 90000),
        )
        for name, args in self.filters:
            node = graph.add(name, args)
            last.link_to(node)
            last = node
        sink = graph.add("buffersink")
        last.link_to(sink)
        graph.configure()
        self.graph, self.sink = graph, sink

    def __call__(self, frame: VideoFrame | None) -> list[VideoFrame]:
        if not self.filters:
            return [frame] if frame is not None else []
        if self.graph is None:
            if frame is None:
                return []
            self._build(frame)
        assert self.graph is not None and self.sink is not None
        self.graph.push(frame)
        out: list[VideoFrame] = []
        while True:
            try:
                pulled = self.sink.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return out
            assert isinstance(pulled, VideoFrame)
            out.append(pulled)


class RungFrames:
    """Turns decoded frames (any rate, any timing) into this rung's constant-rate, scaled frames.

    Output slot n (time n/fps) shows the last source frame presented at or before the
    middle of the slot, so frames are repeated or dropped by timestamp, as FFmpeg's
    `fps` filter does with round=near. Slots nearest each boundary are forced IDR.
    """

    def __init__(
        self,
        width: int,
        height: int,
        fps: float,
        boundaries: Sequence[float],
        encode: Callable[[VideoFrame], None],
        *,
        to_bt709: bool = False,
    ) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.rate = rate_fraction(fps)
        self.time_base = 1 / self.rate
        self.idr_slots = {math.floor(b * float(self.rate) + 0.5) for b in boundaries}
        self.encode = encode
        self.to_bt709 = to_bt709
        self.slot = 0
        self.prev: VideoFrame | None = None
        self.scaled: VideoFrame | None = None

    def slot_mid(self, slot: int) -> float:
        return (slot + 0.5) / float(self.rate)

    def feed(self, frame: VideoFrame, t: float) -> None:
        if self.prev is not None:
            while self.slot_mid(self.slot) < t:
                self._emit()
        self.prev, self.scaled = frame, None

    def finish(self, end: float) -> None:
        while self.prev is not None and self.slot_mid(self.slot) < end:
            self._emit()
        self.prev = self.scaled = None

    def _emit(self) -> None:
        if self.scaled is None:
            assert self.prev is not None
            self.scaled = self.prev.reformat(
                width=self.width,
                height=self.height,
                format="yuv420p",
                dst_colorspace=Colorspace.ITU709 if self.to_bt709 else None,
                dst_color_range=1,
                interpolation="BICUBIC",
            )
        frame = self.scaled
        frame.pts = self.slot
        frame.time_base = self.time_base
        frame.pict_type = PictureType.I if self.slot in self.idr_slots else PictureType.NONE
        self.slot += 1
        self.encode(frame)
