"""Synthetic test clips, made with PyAV and FFmpeg's own test sources (testsrc2, sine)."""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import av.error
import av.filter
from av.audio.frame import AudioFrame
from av.video.frame import PictureType, VideoFrame

from media.fmp4 import iter_boxes


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


def clip_maker(root: Path, clips: dict[str, Clip]) -> Callable[[str], Path]:
    """clip(name) -> path of a clip from `clips` (made once), or of a broken file made
    from one: truncated.mp4/.mkv, garbage.mp4 (noise over the media data), image.mp4 or
    png.mp4 (a PNG), empty.mp4, text.mp4."""
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name in made:
            return made[name]
        path = root / name
        if name in clips:
            make_clip(path, clips[name])
        elif name == "truncated.mp4":
            # Index (moov) in front, media data cut in the middle.
            whole = root / "whole.mp4"
            spec = clips["h264_720p.mp4"]
            make_clip(
                whole, Clip(**{**spec.__dict__, "container_options": {"movflags": "faststart"}})
            )
            data = whole.read_bytes()
            path.write_bytes(data[: len(data) // 2])
        elif name == "truncated.mkv":
            data = get("hevc10.mkv").read_bytes()
            path.write_bytes(data[: len(data) * 6 // 10])
        elif name == "garbage.mp4":
            # Valid container, undecodable video: the media data overwritten with noise.
            data = bytearray(get("no_audio.mp4").read_bytes())
            for kind, start, end in iter_boxes(data):
                if kind == b"mdat":
                    data[start:end] = random.Random(1).randbytes(end - start)
            path.write_bytes(bytes(data))
        elif name in ("image.mp4", "png.mp4"):
            frame = av.VideoFrame(64, 48, "rgb24")
            png = root / "image.png"
            frame.save(str(png))
            shutil.copy(png, path)
        elif name == "empty.mp4":
            path.write_bytes(b"")
        elif name == "text.mp4":
            path.write_text("this is not a video\n" * 50)
        else:
            raise KeyError(name)
        made[name] = path
        return path

    return get
