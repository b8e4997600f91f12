"""Frame work shared by all rungs (rotation, deinterlacing) and done per rung (CFR, scaling)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Protocol

import av.error
import av.filter
from av.video.frame import PictureType, VideoFrame
from av.video.reformatter import ColorPrimaries, Colorspace, ColorTrc, VideoReformatter

from .probe import VideoInfo

_NTSC = {23.976: Fraction(24000, 1001), 29.97: Fraction(30000, 1001), 59.94: Fraction(60000, 1001)}


class FrameConsumer(Protocol):
    """Also fed the decoded, rotated, SDR frames of the encode pass (thumbnails use it)."""

    def wants(self, t: float) -> bool: ...

    def missing(self, until: float) -> list[float]: ...

    def feed(self, frame: VideoFrame, t: float) -> None: ...


class SdrConverter:
    """8-bit yuv420p for every frame; BT.2020 PQ/HLG (HDR) pictures become BT.709 SDR.

    The bundled FFmpeg has no zscale, so the `tonemap` filter cannot be fed linear
    light. FFmpeg 8's swscale converts transfer and primaries itself once the target
    transfer is given; measured here on PQ grey: 100 cd/m2 -> Y 178, 203 cd/m2 (the
    BT.2408 reference white) -> 235, 1000 cd/m2 and above -> 236, i.e. right
    mid-tones and clipped highlights (no roll-off). That is the documented fallback.
    Setting the conversion up takes seconds (a 3D LUT), so one reformatter is kept
    per video and reused: its context stays cached while sizes and formats match.
    """

    def __init__(self, hdr: bool) -> None:
        self.hdr = hdr
        self.reformatter = VideoReformatter()

    def __call__(
        self, frame: VideoFrame, width: int | None = None, height: int | None = None
    ) -> VideoFrame:
        if not self.hdr:
            if frame.format.name == "yuv420p" and width is None:
                return frame
            return self.reformatter.reformat(
                frame, width, height, "yuv420p", dst_color_range=1, interpolation="AREA"
            )
        return self.reformatter.reformat(
            frame,
            width,
            height,
            "yuv420p",
            dst_color_range=1,
            interpolation="AREA",
            dst_colorspace=Colorspace.ITU709,
            dst_color_trc=ColorTrc.BT709,
            dst_color_primaries=ColorPrimaries.BT709,
        )


def needs_sdr(video: VideoInfo) -> bool:
    return video.hdr


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

    def __init__(self, video: VideoInfo, *, deinterlace: bool = True) -> None:
        self.filters: list[tuple[str, str | None]] = []
        if video.interlaced and deinterlace:
            self.filters.append(("yadif", "mode=send_frame:parity=auto:deint=interlaced"))
        self.filters += rotation_filters(video.rotation)
        self.graph: av.filter.Graph | None = None
        self.sink: av.filter.context.FilterContext | None = None
        self.sdr = SdrConverter(needs_sdr(video)) if needs_sdr(video) else None

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
        shaped = self._filter(frame)
        if self.sdr is None:
            return shaped
        return [self.sdr(f) for f in shaped]

    def _filter(self, frame: VideoFrame | None) -> list[VideoFrame]:
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


def boundary_slot(boundary: float, rate: Fraction) -> int:
    """The output frame nearest a boundary instant: the one forced IDR."""
    return math.floor(boundary * float(rate) + 0.5)


class RungFrames:
    """Turns decoded frames (any rate, any timing) into this rung's constant-rate, scaled frames.

    Output slot n (time n/fps) shows the last source frame presented before the middle
    of the slot, so frames are repeated or dropped by timestamp, as FFmpeg's
    `fps` filter does with round=near. Slots nearest each keyframe instant (the segment
    boundaries and the keyframes between them) are forced IDR.
    A rung continued from a boundary starts at that boundary's slot (`first_slot`): the
    frames fed before it only decide which frame that slot shows.
    """

    def __init__(
        self,
        width: int,
        height: int,
        fps: float,
        keyframes: Sequence[float],
        encode: Callable[[VideoFrame], None],
        first_slot: int = 0,
    ) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.rate = rate_fraction(fps)
        self.time_base = 1 / self.rate
        self.idr_slots = {boundary_slot(k, self.rate) for k in keyframes}
        self.encode = encode
        self.reformatter = VideoReformatter()
        self.slot = first_slot
        self.prev: VideoFrame | None = None
        self.scaled: VideoFrame | None = None

    def slot_mid(self, slot: int) -> float:
        return (slot + 0.5) / float(self.rate)

    def feed(self, frame: VideoFrame, t: float) -> None:
        if self.prev is not None:
            # A frame exactly at a slot's middle belongs to the next slot (round half up).
            while self.slot_mid(self.slot) <= t + 1e-9:
                self._emit()
        self.prev, self.scaled = frame, None

    def finish(self, end: float) -> None:
        while self.prev is not None and self.slot_mid(self.slot) < end:
            self._emit()
        self.prev = self.scaled = None

    def _emit(self) -> None:
        if self.scaled is None:
            assert self.prev is not None
            # Area averaging: the ladder only scales down, and it is 3x faster than bicubic
            # here (4 ms instead of 14 ms per 1080p frame for four rungs).
            self.scaled = self.reformatter.reformat(
                self.prev,
                self.width,
                self.height,
                "yuv420p",
                dst_color_range=1,
                interpolation="AREA",
                threads=2,
            )
        frame = self.scaled
        frame.pts = self.slot
        frame.time_base = self.time_base
        frame.pict_type = PictureType.I if self.slot in self.idr_slots else PictureType.NONE
        self.slot += 1
        self.encode(frame)
