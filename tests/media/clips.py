"""Synthetic test clips, made with PyAV and FFmpeg's own test sources (testsrc2, sine)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import av.error
import av.filter
from av.audio.frame import AudioFrame
from av.video.frame import PictureType, VideoFrame


@dataclass
class Clip:
    width: int = 320
    height: int = 240
    fps: int = 30
    seconds: float = 3.0
    vcodec: str | None = "libx264"
    pix_fmt: str = "yuv420p"
    acodec: str | None = "aac"
    sample_rate: int = 48000
    gop: int | None = None  # keyframe every N frames; None leaves it to the encoder
    keyframes_at: tuple[int, ...] = ()  # frame numbers forced to IDR
    rotation: int = 0
    black_lead: float = 0.0  # seconds of black at the start
    vfr: bool = False
    hdr: bool = False
    audio_delay: float = 0.0  # seconds between the first video frame and the first sample
    options: dict[str, str] = field(default_factory=dict)
    container_options: dict[str, str] = field(default_factory=dict)


def _pull(sink: av.filter.context.FilterContext) -> Iterator[av.frame.Frame]:
    while True:
        try:
            yield sink.pull()
        except (av.error.EOFError, av.error.BlockingIOError):
            return


def video_frames(clip: Clip) -> Iterator[VideoFrame]:
    graph = av.filter.Graph()
    src = graph.add(
        "testsrc2", f"size={clip.width}x{clip.height}:rate={clip.fps}:duration={clip.seconds}"
    )
    last = src
    if clip.black_lead:
        box = graph.add(
            "drawbox", f"x=0:y=0:w=iw:h=ih:color=black:t=fill:enable=lt(t\\,{clip.black_lead})"
        )
        last.link_to(box)
        last = box
    sink = graph.add("buffersink")
    last.link_to(sink)
    graph.configure()
    for frame in _pull(sink):
        assert isinstance(frame, VideoFrame)
        yield frame


def audio_frames(clip: Clip) -> Iterator[AudioFrame]:
    graph = av.filter.Graph()
    src = graph.add("sine", f"frequency=440:sample_rate={clip.sample_rate}:duration={clip.seconds}")
    sink = graph.add("abuffersink")
    src.link_to(sink)
    graph.configure()
    for frame in _pull(sink):
        assert isinstance(frame, AudioFrame)
        yield frame


def make_clip(path: Path, clip: Clip) -> Path:
    out = av.open(str(path), "w", options=clip.container_options)
    vstream = astream = None
    if clip.vcodec:
        vstream = out.add_stream(clip.vcodec, rate=clip.fps, options=clip.options)
        vstream.width, vstream.height, vstream.pix_fmt = clip.width, clip.height, clip.pix_fmt
        if clip.gop:
            vstream.codec_context.gop_size = clip.gop
        if clip.vfr:
            vstream.codec_context.time_base = Fraction(1, 1000)
        if clip.hdr:
            vstream.codec_context.color_trc = 16  # smpte2084
            vstream.codec_context.color_primaries = 9  # bt2020
            vstream.codec_context.colorspace = 9  # bt2020nc
        if clip.rotation:
            vstream.set_display_rotation(clip.rotation)
    if clip.acodec:
        astream = out.add_stream(clip.acodec, rate=clip.sample_rate)
        astream.layout = "stereo"
    if vstream is not None:
        ms = 0
        for i, frame in enumerate(video_frames(clip)):
            if clip.pix_fmt != "yuv420p":
                frame = frame.reformat(format=clip.pix_fmt)
            if clip.vfr:
                # Irregular spacing: 20 ms, 50 ms, 33 ms, ... as phones record.
                frame.pts, frame.time_base = ms, Fraction(1, 1000)
                ms += (20, 50, 33, 40, 25)[i % 5]
            if i in clip.keyframes_at or (clip.gop and i % clip.gop == 0):
                frame.pict_type = PictureType.I
            else:
                frame.pict_type = PictureType.NONE  # testsrc2 marks every frame I
            out.mux(vstream.encode(frame))
        out.mux(vstream.encode(None))
    if astream is not None:
        shift = round(clip.audio_delay * clip.sample_rate)
        for aframe in audio_frames(clip):
            if shift and aframe.pts is not None:
                aframe.pts += shift
            out.mux(astream.encode(aframe))
        out.mux(astream.encode(None))
    out.close()
    return path
