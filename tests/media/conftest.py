"""Clip fixtures: each clip is made once per session with PyAV (see clips.py).

The rotated clip is written by PyAV itself (VideoStream.set_display_rotation puts a
display matrix in the mp4), so no ffmpeg CLI is needed to make any clip.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path

import av
import pytest

from media.fmp4 import iter_boxes
from tests.media.clips import Clip, make_clip

LOW_RATE = {"crf": "32", "preset": "veryfast"}

CLIPS: dict[str, Clip] = {
    "h264_720p.mp4": Clip(1280, 720, seconds=3.0, gop=30, options=LOW_RATE),
    # Keyframes at irregular instants (0, 0.833, 2.0, 2.667 s) for the remux path.
    "remux.mp4": Clip(
        640,
        360,
        seconds=3.5,
        keyframes_at=(0, 25, 60, 80),
        options={"crf": "30", "x264-params": "keyint=1000:scenecut=0"},
    ),
    # Only one rung (240p), copied: no encode pass, thumbnails seek on their own.
    "copy_only.mp4": Clip(
        320,
        240,
        seconds=3.0,
        keyframes_at=(0, 30, 60),
        options={"crf": "30", "x264-params": "keyint=1000:scenecut=0"},
    ),
    "no_audio.mp4": Clip(320, 240, acodec=None, options=LOW_RATE),
    "audio_only.m4a": Clip(vcodec=None),
    "odd_175x143.mp4": Clip(175, 143, pix_fmt="yuv444p", options=LOW_RATE),
    "portrait_rotated.mp4": Clip(320, 180, rotation=90, options=LOW_RATE),
    "vfr.mp4": Clip(320, 240, vfr=True, options=LOW_RATE),
    "hevc10.mkv": Clip(
        320,
        240,
        vcodec="libx265",
        pix_fmt="yuv420p10le",
        hdr=True,
        options={"preset": "ultrafast", "x265-params": "log-level=error"},
    ),
    "vp9.webm": Clip(
        320,
        240,
        vcodec="libvpx-vp9",
        acodec="libopus",
        options={"deadline": "realtime", "cpu-used": "8"},
    ),
    "interlaced.mp4": Clip(320, 240, options={"x264-params": "tff=1", "crf": "30"}),
    "late_audio.mp4": Clip(320, 240, seconds=2.0, audio_delay=0.5, options=LOW_RATE),
    "black_lead.mp4": Clip(320, 240, seconds=3.0, black_lead=1.0, options=LOW_RATE),
}


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """clip(name) -> path of a clip from CLIPS, or of a broken file made from one."""
    root = tmp_path_factory.mktemp("clips")
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name in made:
            return made[name]
        path = root / name
        if name in CLIPS:
            make_clip(path, CLIPS[name])
        elif name == "truncated.mp4":
            # Index (moov) in front, media data cut in the middle.
            whole = root / "whole.mp4"
            spec = CLIPS["h264_720p.mp4"]
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
        elif name == "image.mp4":
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
