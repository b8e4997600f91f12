from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import av
import pytest

from media.errors import MediaError, TranscodeCancelled
from media.ladder import LadderSettings
from media.pipeline import Probed, ProcessEvent, ProcessResult, ProcessSettings, process
from media.probe import probe
from media.thumbnails import luma_stats
from media.transcode import Progress, RenditionDone
from tests.media.hlscheck import Checked, assert_aligned, check_master, ffprobe, joined

Clips = Callable[[str], Path]
# Short segments so that a 3 s clip has several boundaries to compare.
SHORT = ProcessSettings(
    ladder=LadderSettings(segment_target=1.0, max_remux_segment=2.0),
    storyboard_interval=0.5,
)


def run(
    source: Path, out: Path, settings: ProcessSettings = SHORT
) -> tuple[ProcessResult, list[ProcessEvent]]:
    events: list[ProcessEvent] = []
    result = process(source, out, settings, events.append)
    return result, events


def check(result: ProcessResult, out: Path, tmp: Path) -> dict[str, Checked]:
    checked = check_master(out, result.renditions, tmp)
    for c in checked.values():
        assert abs(c.duration - result.probe.duration) <= 0.1, (c.name, c.duration)
    rate = max((r.frame_rate or 0) for r in result.renditions)
    if rate:
        assert_aligned(checked, 1 / rate)
    assert not list((out / "hls").glob(".*"))  # no temporary names left
    return checked


def test_h264_720p_ladder(clip: Clips, tmp_path: Path) -> None:
    out = tmp_path / "out"
    encode_all = ProcessSettings(
        ladder=LadderSettings(segment_target=1.0, allow_remux=False), storyboard_interval=0.5
    )
    result, events = run(clip("h264_720p.mp4"), out, encode_all)
    assert [r.name for r in result.renditions] == ["720p", "480p", "360p", "240p", "audio"]
    assert not result.ladder.remux_top and not any(r.copied for r in result.renditions)
    checked = check(result, out, tmp_path)
    assert checked["720p"].segment_starts == pytest.approx([0.0, 1.0, 2.0], abs=0.034)
    sizes = {r.name: (r.width, r.height) for r in result.renditions}
    assert sizes["480p"] == (854, 480) and sizes["240p"] == (426, 240)
    assert result.poster is not None and result.poster.exists()
    assert result.storyboard is not None
    vtt = result.storyboard.read_text()
    assert vtt.startswith("WEBVTT") and "sprite_000.jpg#xywh=160,0,160,90" in vtt
    assert vtt.count("#xywh=") == 6  # 3 s every 0.5 s, from the encode pass's frames
    assert (out / "storyboard" / "sprite_000.jpg").exists()
    overall = [e.overall for e in events if isinstance(e, Progress)]
    assert overall == sorted(overall) and overall[-1] == 100.0 and overall[-2] < 100.0
    assert isinstance(events[0], Probed)
    done = [e.info.name for e in events if isinstance(e, RenditionDone)]
    assert sorted(done) == sorted(r.name for r in result.renditions)


def _video_payload_digests(path: Path) -> list[str]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [hashlib.sha1(bytes(p)).hexdigest() for p in container.demux(stream) if p.size]


def test_remux_top_rung(clip: Clips, tmp_path: Path) -> None:
    source = clip("remux.mp4")
    out = tmp_path / "out"
    result, events = run(source, out)
    assert result.ladder.remux_top
    top = result.renditions[0]
    assert top.copied and top.name == "360p"
    checked = check(result, out, tmp_path)
    # Boundaries are the source's own keyframes, in the copied and the encoded rungs.
    assert result.ladder.boundaries == pytest.approx((0.0, 0.8333, 2.0), abs=1e-3)
    assert checked["360p"].segment_starts == pytest.approx([0.0, 0.8333, 2.0], abs=1e-3)
    assert checked["240p"].segment_starts == pytest.approx([0.0, 0.8333, 2.0], abs=0.034)
    # Top rung packets are the source's packets, byte for byte.
    rdir = out / "hls" / "360p"
    import m3u8

    whole, _ = joined(rdir, m3u8.load(str(rdir / "index.m3u8")), tmp_path / "top.mp4")
    assert _video_payload_digests(whole) == _video_payload_digests(source)
    done = [e.info.name for e in events if isinstance(e, RenditionDone)]
    assert done[0] == "360p"  # the remux is published before any encoded rung


def _starts(path: Path) -> dict[str, float]:
    """First presented instant per stream kind, as FFmpeg's demuxer and decoders see it."""
    starts: dict[str, float] = {}
    for kind in ("video", "audio"):
        with av.open(str(path)) as container:
            if any(s.type == kind for s in container.streams):
                stream = next(s for s in container.streams if s.type == kind)
                frames = container.decode(stream)
                starts[kind] = min(f.time or 0.0 for f in frames if isinstance(f, av.frame.Frame))
    probed = ffprobe(path, "-show_streams")["streams"]
    for stream in probed:
        starts[f"{stream['codec_type']} stream"] = float(stream["start_time"])
    return starts


def test_remuxed_rung_starts_audio_and_video_together(clip: Clips, tmp_path: Path) -> None:
    """The copied rung keeps the source's B-frame delay (its first frame has a composition
    offset); its audio, the encoded rungs and the audio-only rendition share its timeline."""
    source = clip("remux.mp4")
    with av.open(str(source)) as container:
        first = next(p for p in container.demux(video=0) if p.dts is not None)
        assert first.pts is not None and first.dts is not None
        assert first.pts > first.dts  # frames are reordered: the first one has an offset
    out = tmp_path / "out"
    result, _ = run(
        source, out, ProcessSettings(ladder=SHORT.ladder, poster=False, storyboard=False)
    )
    assert result.renditions[0].copied
    import m3u8

    starts = {}
    for r in result.renditions:
        rdir = out / "hls" / r.name
        whole, _ = joined(rdir, m3u8.load(str(rdir / "index.m3u8")), tmp_path / f"{r.name}.mp4")
        starts[r.name] = _starts(whole)
    # Every track's first sample sits at the common lead, and the edit list presents that
    # instant as 0: every stream of every rendition starts at 0, the first picture too.
    # (FFmpeg 7's AAC decoder takes an audio edit list for priming and drops that many
    # samples from the start, keeping each later sample at its time: sync holds.)
    assert set(starts) == {r.name for r in result.renditions}
    for name, s in starts.items():
        for kind in ("video stream", "audio stream"):
            if kind in s:
                assert s[kind] == pytest.approx(0.0, abs=0.001), (name, kind, s)
        if "video" in s:
            assert s["video"] == pytest.approx(0.0, abs=0.001), (name, s)


@pytest.mark.parametrize(
    ("name", "renditions", "size"),
    [
        ("no_audio.mp4", ["240p"], (320, 240)),
        ("odd_175x143.mp4", ["142p", "audio"], (174, 142)),
        ("portrait_rotated.mp4", ["180p", "audio"], (180, 320)),
        ("vfr.mp4", ["240p", "audio"], (320, 240)),
        ("hevc10.mkv", ["240p", "audio"], (320, 240)),
        ("vp9.webm", ["240p", "audio"], (320, 240)),
        ("interlaced.mp4", ["240p", "audio"], (320, 240)),
    ],
)
def test_sources(
    clip: Clips, tmp_path: Path, name: str, renditions: list[str], size: tuple[int, int]
) -> None:
    out = tmp_path / "out"
    result, _ = run(clip(name), out)
    assert [r.name for r in result.renditions] == renditions
    video = result.renditions[0]
    assert (video.width, video.height) == size
    checked = check(result, out, tmp_path)
    v = next(s for s in checked[video.name].streams if s["codec_type"] == "video")
    assert v["r_frame_rate"] == v["avg_frame_rate"]  # constant frame rate out
    assert v.get("field_order", "progressive") == "progressive"
    if name == "hevc10.mkv":  # HDR10 source: BT.709 SDR out
        assert (v["color_transfer"], v["color_primaries"]) == ("bt709", "bt709")
    if name == "no_audio.mp4":
        assert video.codecs.count(",") == 0


def test_rotated_pixels_match_ffmpeg(clip: Clips, tmp_path: Path) -> None:
    """The rotation turns the picture the way FFmpeg's autorotate does."""
    import subprocess

    source = clip("portrait_rotated.mp4")
    result, _ = run(source, tmp_path / "out", ProcessSettings(storyboard=False))
    assert result.poster is not None
    reference = tmp_path / "ref.jpg"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-ss",
            "0.5",
            "-i",
            str(source),
            "-frames:v",
            "1",
            str(reference),
        ],
        check=True,
    )
    with av.open(str(reference)) as a, av.open(str(result.poster)) as b:
        fa, fb = next(a.decode(video=0)), next(b.decode(video=0))
        assert (fa.width, fa.height) == (fb.width, fb.height) == (180, 320)
        ga, gb = _gray(fa), _gray(fb)
    right = sum(abs(x - y) for x, y in zip(ga, gb, strict=True)) / len(ga)
    upside_down = sum(abs(x - y) for x, y in zip(ga, reversed(gb), strict=True)) / len(ga)
    assert right < 20 and right < upside_down / 2


def _gray(frame: av.VideoFrame) -> list[int]:
    small = frame.reformat(width=18, height=32, format="gray")
    plane = small.planes[0]
    data = bytes(plane)
    return [
        v for row in range(32) for v in data[row * plane.line_size : row * plane.line_size + 18]
    ]


def test_late_audio_is_padded_to_the_video_start(clip: Clips, tmp_path: Path) -> None:
    source = clip("late_audio.mp4")
    info = probe(source)
    assert info.audio is not None and info.audio.start_time == pytest.approx(0.5, abs=0.03)
    out = tmp_path / "out"
    result, _ = run(source, out, ProcessSettings(poster=False, storyboard=False))
    rdir = out / "hls" / result.renditions[0].name
    import m3u8

    whole, _ = joined(rdir, m3u8.load(str(rdir / "index.m3u8")), tmp_path / "v.mp4")
    with av.open(str(whole)) as container:
        samples = [f for f in container.decode(audio=0)]
    with av.open(str(whole)) as container:
        first_frame = min(f.time or 0.0 for f in container.decode(container.streams.video[0]))
    first_sound = next(f.time or 0.0 for f in samples if max(bytes(f.planes[0])[::4]) > 0)
    # The sine starts half a second after the first frame, as in the source.
    assert first_sound - first_frame == pytest.approx(0.5, abs=0.05)
    assert sum(f.samples for f in samples) / 48000 == pytest.approx(2.5, abs=0.06)


def test_copy_only_ladder_still_gets_thumbnails(clip: Clips, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result, _ = run(clip("copy_only.mp4"), out)
    assert [(r.name, r.copied) for r in result.renditions] == [("240p", True), ("audio", False)]
    check(result, out, tmp_path)
    assert result.poster is not None and result.poster.exists()
    assert result.storyboard is not None
    cues = [line for line in result.storyboard.read_text().splitlines() if "#xywh=" in line]
    assert len(cues) == 6 and cues[-1] == "sprite_000.jpg#xywh=800,0,160,120"


def test_audio_only(clip: Clips, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result, _ = run(clip("audio_only.m4a"), out)
    assert [r.name for r in result.renditions] == ["audio"]
    assert result.poster is None and result.storyboard is None
    check(result, out, tmp_path)
    assert "RESOLUTION" not in (out / "hls" / "master.m3u8").read_text()


def test_poster_skips_black_lead(clip: Clips, tmp_path: Path) -> None:
    result, _ = run(clip("black_lead.mp4"), tmp_path / "out", ProcessSettings(storyboard=False))
    assert result.poster is not None
    with av.open(str(result.poster)) as poster:
        mean, variance = luma_stats(next(poster.decode(video=0)))
    assert mean > 40 and variance > 100


@pytest.mark.parametrize("name", ["empty.mp4", "image.mp4", "truncated.mp4", "text.mp4"])
def test_bad_input_raises_media_error(clip: Clips, tmp_path: Path, name: str) -> None:
    with pytest.raises(MediaError):
        process(clip(name), tmp_path / "out", SHORT)
    assert not (tmp_path / "out" / "hls").exists()


@pytest.mark.parametrize("after", [1, 4])
def test_cancel_removes_partial_output(clip: Clips, tmp_path: Path, after: int) -> None:
    out = tmp_path / "out"
    calls = 0

    def should_cancel() -> bool:
        nonlocal calls
        calls += 1
        return calls >= after

    import media.transcode

    media.transcode.POLL_SECONDS, saved = 0.0, media.transcode.POLL_SECONDS
    try:
        with pytest.raises(TranscodeCancelled):
            process(clip("h264_720p.mp4"), out, SHORT, should_cancel=should_cancel)
    finally:
        media.transcode.POLL_SECONDS = saved
    assert not list((out / "hls").glob(".*")) and not list(out.glob(".*"))
    assert not (out / "hls" / "720p").exists()
    assert not (out / "poster.jpg").exists()
