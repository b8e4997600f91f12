"""Clip fixtures: each clip is made once per session with PyAV (see clips.py).

The rotated clip is written by PyAV itself (VideoStream.set_display_rotation puts a
display matrix in the mp4), so no ffmpeg CLI is needed to make any clip.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.media.clips import Clip, clip_maker

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
    # Long enough for a run to be stopped halfway through its segments (test_resume.py).
    "long_360p.mp4": Clip(640, 360, seconds=12.0, gop=30, options=LOW_RATE),
    "remux_long.mp4": Clip(
        640, 360, seconds=8.0, gop=30, options={"crf": "32", "x264-params": "scenecut=0"}
    ),
}


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    return clip_maker(tmp_path_factory.mktemp("clips"), CLIPS)
