from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from media.errors import MediaError
from media.probe import probe

Clips = Callable[[str], Path]


def test_h264_with_audio(clip: Clips) -> None:
    info = probe(clip("h264_720p.mp4"))
    assert info.format_name.startswith("mov,mp4")
    assert abs(info.duration - 3.0) < 0.05 and info.size > 0 and info.bit_rate > 0
    v, a = info.video, info.audio
    assert v is not None and a is not None
    assert (v.codec, v.profile, v.pix_fmt, v.bit_depth) == ("h264", "High", "yuv420p", 8)
    assert (v.width, v.height, v.display_width, v.display_height) == (1280, 720, 1280, 720)
    assert v.rotation == 0 and not v.variable_frame_rate and not v.interlaced and not v.hdr
    assert v.frame_rate == pytest.approx(30.0)
    assert v.keyframes == (0.0, 1.0, 2.0)
    assert (a.codec, a.channels, a.sample_rate) == ("aac", 2, 48000)


def test_rotation_from_display_matrix(clip: Clips) -> None:
    v = probe(clip("portrait_rotated.mp4")).video
    assert v is not None
    assert (v.width, v.height, v.rotation) == (320, 180, 90)
    assert (v.display_width, v.display_height) == (180, 320)


def test_variable_frame_rate(clip: Clips) -> None:
    v = probe(clip("vfr.mp4")).video
    assert v is not None and v.variable_frame_rate
    assert probe(clip("no_audio.mp4")).video.variable_frame_rate is False  # type: ignore[union-attr]


def test_ten_bit_hdr_hevc(clip: Clips) -> None:
    v = probe(clip("hevc10.mkv")).video
    assert v is not None
    assert (v.codec, v.bit_depth, v.pix_fmt) == ("hevc", 10, "yuv420p10le")
    assert v.hdr and v.color_transfer == "smpte2084"


def test_audio_only_and_no_audio(clip: Clips) -> None:
    info = probe(clip("audio_only.m4a"))
    assert info.video is None and info.audio is not None
    assert probe(clip("no_audio.mp4")).audio is None


def test_interlaced(clip: Clips) -> None:
    v = probe(clip("interlaced.mp4")).video
    assert v is not None and v.interlaced


def test_vp9_opus(clip: Clips) -> None:
    info = probe(clip("vp9.webm"))
    assert info.video is not None and info.video.codec == "vp9"
    assert info.audio is not None and info.audio.codec == "opus"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("empty.mp4", "not a video or audio file"),
        ("image.mp4", "not a video or audio file"),
        ("text.mp4", "not a video or audio file"),
        ("truncated.mp4", "file is truncated at "),
        ("truncated.mkv", "file is truncated at "),
        ("garbage.mp4", "no decodable video or audio stream"),
    ],
)
def test_rejected_with_reason(clip: Clips, name: str, reason: str) -> None:
    with pytest.raises(MediaError) as caught:
        probe(clip(name))
    assert caught.value.reason.startswith(reason)
    if "truncated" in reason:
        percent = int(caught.value.reason.split()[-1].rstrip("%"))
        assert 20 < percent < 90


def test_limits(clip: Clips) -> None:
    with pytest.raises(MediaError, match="duration 3 s exceeds the limit of 2 s"):
        probe(clip("no_audio.mp4"), max_duration=2)
    with pytest.raises(MediaError, match="exceeds the limit of 480 lines"):
        probe(clip("h264_720p.mp4"), max_short_side=480)
