from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from media.ladder import (
    LadderSettings,
    choose_ladder,
    fixed_boundaries,
    h264_level,
    keyframe_boundaries,
    rung_rate,
)
from media.probe import AudioInfo, ProbeResult, VideoInfo

VIDEO = VideoInfo(
    index=0,
    codec="h264",
    profile="High",
    pix_fmt="yuv420p",
    bit_depth=8,
    width=1920,
    height=1080,
    rotation=0,
    display_width=1920,
    display_height=1080,
    frame_rate=30.0,
    variable_frame_rate=False,
    bit_rate=4_000_000,
    color_transfer=None,
    hdr=False,
    interlaced=False,
    start_time=0.0,
    keyframes=tuple(float(k) for k in range(0, 60, 2)),
)
AUDIO = AudioInfo(
    index=1, codec="aac", channels=2, sample_rate=48000, bit_rate=128000, start_time=0.0
)


def source(
    video: VideoInfo | None = VIDEO, audio: AudioInfo | None = AUDIO, duration: float = 60.0
) -> ProbeResult:
    return ProbeResult(Path("x.mp4"), "mov,mp4", duration, 1, 1, video, audio)


def test_never_upscales_and_keeps_even_sizes() -> None:
    ladder = choose_ladder(source())
    assert [r.name for r in ladder.video] == ["1080p", "720p", "480p", "360p", "240p"]
    assert [(r.width, r.height) for r in ladder.video][:3] == [
        (1920, 1080),
        (1280, 720),
        (854, 480),
    ]
    assert all(r.width % 2 == 0 and r.height % 2 == 0 for r in ladder.video)
    assert ladder.audio is not None and ladder.audio.name == "audio"


def test_remux_top_uses_source_keyframes() -> None:
    ladder = choose_ladder(source())
    assert ladder.remux_top and ladder.video[0].copy and not ladder.video[1].copy
    assert set(ladder.boundaries) <= {0.0, *VIDEO.keyframes}
    gaps = [b - a for a, b in zip(ladder.boundaries, [*ladder.boundaries[1:], 60.0], strict=True)]
    assert max(gaps) <= 6.0 and min(gaps) >= 4.0


def test_keyframes_far_apart_are_encoded_never_a_segment_past_the_target() -> None:
    """Source keyframes 8 s apart would make 8 s copied segments: the top rung is encoded."""
    ladder = choose_ladder(source(replace(VIDEO, keyframes=tuple(float(k) for k in
                                                                range(0, 60, 8)))))
    assert not ladder.remux_top
    assert ladder.boundaries == fixed_boundaries(60.0, 6.0)


def test_encoded_rungs_have_an_idr_every_two_seconds() -> None:
    ladder = choose_ladder(source(duration=13.0))
    assert ladder.boundaries == (0.0, 6.0, 12.0)
    # Copied top rung: segments where the source's keyframes are; every 2 s between.
    assert ladder.keyframes == (0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0)
    assert ladder.last_keyframes() == (4.0, 10.0, 12.0)
    odd = choose_ladder(source(replace(VIDEO, codec="hevc"), duration=17.0))
    assert odd.boundaries == (0.0, 6.0, 12.0)  # the last segment is 5 s
    assert odd.keyframes == (0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 13.666667, 15.333333)
    assert odd.last_keyframes() == (4.0, 10.0, 15.333333)


@pytest.mark.parametrize(
    "change",
    [
        {"codec": "hevc"},
        {"bit_depth": 10, "pix_fmt": "yuv420p10le"},
        {"rotation": 90},
        {"interlaced": True},
        {"variable_frame_rate": True},
        {"bit_rate": 9_000_000},
        {"keyframes": (0.0, 30.0)},
        {"hdr": True},
    ],
)
def test_reencode_when_remux_is_unsafe(change: dict[str, object]) -> None:
    ladder = choose_ladder(source(replace(VIDEO, **change)))  # type: ignore[arg-type]
    assert not ladder.remux_top and not any(r.copy for r in ladder.video)
    assert ladder.boundaries == fixed_boundaries(60.0, 6.0)
    assert all(b - a <= 6.5 for a, b in zip(ladder.boundaries, ladder.boundaries[1:], strict=False))


def test_portrait_by_short_side_and_rotation() -> None:
    portrait = replace(
        VIDEO, width=1920, height=1080, rotation=90, display_width=1080, display_height=1920
    )
    ladder = choose_ladder(source(portrait))
    assert ladder.video[0].name == "1080p"
    assert (ladder.video[0].width, ladder.video[0].height) == (1080, 1920)
    assert (ladder.video[1].width, ladder.video[1].height) == (720, 1280)


def test_small_odd_source_gets_its_own_even_size() -> None:
    small = replace(VIDEO, width=175, height=143, display_width=175, display_height=143)
    ladder = choose_ladder(source(small))
    assert [(r.name, r.width, r.height) for r in ladder.video] == [("142p", 174, 142)]


def test_audio_only_and_subset() -> None:
    assert choose_ladder(source(video=None)).video == ()
    ladder = choose_ladder(source(), LadderSettings(enabled=frozenset({720, 360})))
    assert [r.name for r in ladder.video] == ["720p", "360p"]
    assert choose_ladder(source(audio=None)).audio is None


def test_levels_and_rates() -> None:
    assert h264_level(1920, 1080, 30, 6000) == "4.0"
    assert h264_level(1280, 720, 30, 3000) == "3.1"
    assert h264_level(3840, 2160, 30, 16000) == "5.1"
    assert h264_level(426, 240, 30, 400) == "3.0"
    assert rung_rate(59.94, 30) == 29.97
    assert rung_rate(50, 30) == 25
    assert rung_rate(30.02, 60) == 30


def test_keyframe_boundaries() -> None:
    assert keyframe_boundaries((0.0, 5.0, 11.0, 17.0), 20.0, 6.0, 10.0) == (0.0, 5.0, 11.0)
    assert keyframe_boundaries((0.0, 12.0), 20.0, 6.0, 10.0) is None
