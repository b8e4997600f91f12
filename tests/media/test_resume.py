"""A run that was stopped (its worker failed, or was killed) is continued by the next one:
whole segments are kept and not written again, the rest is made with the same boundaries
and a timeline that goes on exactly, and the result is what an uninterrupted run makes."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from media.errors import OutOfSpace
from media.fragments import fragment_samples, init_tracks, read_fragments
from media.ladder import LadderSettings
from media.layout import VideoLayout
from media.pipeline import ProcessEvent, ProcessResult, ProcessSettings, process
from media.transcode import Progress, RenditionDone
from tests.media.hlscheck import check_master

Clips = Callable[[str], Path]
SETTINGS = ProcessSettings(
    ladder=LadderSettings(segment_target=1.0, allow_remux=False, enabled=frozenset({360, 240})),
    storyboard_interval=0.5,
)
ENCODED = ("360p", "240p")


class Stop(Exception):
    """What a failing worker raises, halfway through."""


def stopped_at(percent: float) -> Callable[[ProcessEvent], None]:
    def on_event(event: ProcessEvent) -> None:
        if isinstance(event, Progress) and event.overall >= percent:
            raise Stop()
    return on_event


def stop_halfway(source: Path, out: Path, settings: ProcessSettings = SETTINGS) -> None:
    with pytest.raises(Stop):
        process(source, out, settings, stopped_at(50))


def go_on(source: Path, out: Path, settings: ProcessSettings = SETTINGS
          ) -> tuple[ProcessResult, list[ProcessEvent]]:
    events: list[ProcessEvent] = []
    return process(source, out, settings, events.append), events


def identity(path: Path) -> tuple[int, int]:
    """Which file this is: a file written again (even under a reused inode) is newer."""
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


def kept(out: Path, name: str) -> dict[str, tuple[int, int]]:
    """Segment file -> identity, in a rendition's partial directory."""
    partial = VideoLayout(out).rendition_partial(name)
    return {p.name: identity(p) for p in partial.glob("seg_*.m4s")}


def assert_continuous(out: Path, name: str) -> None:
    """Each segment's samples begin, track by track, where the previous segment's ended."""
    layout = VideoLayout(out)
    tracks = init_tracks(layout.init(name).read_bytes())
    ends: dict[int, int] = {}
    for path in sorted(layout.rendition(name).glob("seg_*.m4s")):
        fragments = read_fragments(path)
        assert fragments, path
        for fragment in fragments:
            for sample in fragment_samples(fragment, tracks):
                expected = ends.get(sample.track_id)
                assert expected is None or sample.decode == expected, (path.name, sample)
                ends[sample.track_id] = sample.decode + sample.duration


def frames(path: Path) -> int:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
                          "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])  # an HLS input lists its streams once per program too


@pytest.fixture(scope="module")
def reference(clip: Clips, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted")
    process(clip("long_360p.mp4"), out, SETTINGS)
    return out


def assert_like(out: Path, reference: Path, result: ProcessResult, tmp: Path) -> None:
    """Valid as checked by real clients, and the same playlists and frames as `reference`."""
    check_master(out, result.renditions, tmp)
    for info in result.renditions:
        playlist = VideoLayout(out).media_playlist(info.name)
        assert playlist.read_text() == VideoLayout(reference).media_playlist(info.name).read_text()
        assert_continuous(out, info.name)
        if info.kind == "video":
            assert frames(playlist) == frames(VideoLayout(reference).media_playlist(info.name))
    assert not VideoLayout(out).unfinished()


def test_a_stopped_run_goes_on_from_its_whole_segments(
    clip: Clips, tmp_path: Path, reference: Path
) -> None:
    source, out = clip("long_360p.mp4"), tmp_path / "out"
    stop_halfway(source, out)
    before = {name: kept(out, name) for name in ENCODED}
    assert all(len(segments) >= 2 for segments in before.values()), before
    assert VideoLayout(out).media_playlist("audio").is_file()  # pass 1 had finished
    assert list(VideoLayout(out).storyboard_partial.glob("tile_*.jpg"))

    result, events = go_on(source, out)
    assert result.renditions and result.poster and result.storyboard
    # The finished audio is reported at once; progress starts near where the stop was.
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress[0].overall >= 40, progress[0]
    assert next(e.info.name for e in events if isinstance(e, RenditionDone)) == "audio"
    for name in ENCODED:  # the kept segments were not written again
        layout = VideoLayout(out)
        for segment, file in before[name].items():
            assert identity(layout.rendition(name) / segment) == file, (name, segment)
    assert_like(out, reference, result, tmp_path)
    vtt = result.storyboard.read_text()
    assert vtt.count("#xywh=") == 24  # 12 s every 0.5 s: the tiles before the stop were kept


def test_a_killed_run_goes_on(clip: Clips, tmp_path: Path, reference: Path) -> None:
    """kill -9 of the process writing it: no cleanup at all, torn writes left behind."""
    source, out = clip("long_360p.mp4"), tmp_path / "out"
    ctx = multiprocessing.get_context("spawn")
    worker = ctx.Process(target=process, args=(source, out, SETTINGS), daemon=True)
    worker.start()
    partial = VideoLayout(out).rendition_partial("240p")
    deadline = time.monotonic() + 60
    while len(list(partial.glob("seg_*.m4s"))) < 4:
        assert time.monotonic() < deadline and worker.is_alive()
        time.sleep(0.01)
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)
    worker.join(10)
    result, _events = go_on(source, out)
    assert_like(out, reference, result, tmp_path)


def test_torn_damaged_and_stray_files_are_made_again(
    clip: Clips, tmp_path: Path, reference: Path
) -> None:
    source, out = clip("long_360p.mp4"), tmp_path / "out"
    stop_halfway(source, out)
    layout = VideoLayout(out)
    partial = layout.rendition_partial("360p")
    segments = sorted(partial.glob("seg_*.m4s"))
    (partial / ".seg_00042.m4s.tmp").write_bytes(b"torn")
    with open(segments[1], "r+b") as fh:  # cut in the middle of a box: not whole
        fh.truncate(fh.seek(0, 2) // 2)
    other = layout.rendition_partial("240p")
    (other / "seg_00001.m4s").unlink()  # a gap: what follows it is made again too
    result, _events = go_on(source, out)
    assert_like(out, reference, result, tmp_path)


def test_a_rung_from_another_encoder_build_starts_over(
    clip: Clips, tmp_path: Path, reference: Path
) -> None:
    source, out = clip("long_360p.mp4"), tmp_path / "out"
    stop_halfway(source, out)
    init = VideoLayout(out).rendition_partial("240p") / "init.mp4"
    data = bytearray(init.read_bytes())
    data[-1] ^= 0xFF  # not the init segment this run's encoder makes
    init.write_bytes(bytes(data))
    first = kept(out, "240p")["seg_00000.m4s"]
    unchanged = kept(out, "360p")["seg_00000.m4s"]
    result, _events = go_on(source, out)
    assert_like(out, reference, result, tmp_path)
    assert identity(VideoLayout(out).segment("240p", 0)) != first
    assert identity(VideoLayout(out).segment("360p", 0)) == unchanged


def test_a_run_stopped_in_its_thumbnails_makes_only_them(
    clip: Clips, tmp_path: Path, reference: Path
) -> None:
    source, out = clip("long_360p.mp4"), tmp_path / "out"
    with pytest.raises(Stop):
        process(source, out, SETTINGS, stopped_at(93))  # after the poster, before the board
    hls = VideoLayout(out).hls
    finished = {str(p): identity(p) for p in hls.rglob("seg_*.m4s")}
    result, events = go_on(source, out)
    assert next(e.overall for e in events if isinstance(e, Progress)) >= 89
    assert {str(p): identity(p) for p in hls.rglob("seg_*.m4s")} == finished
    assert result.storyboard is not None and result.storyboard.read_text().count("#xywh=") == 24
    assert_like(out, reference, result, tmp_path)


def test_a_copied_rung_takes_the_audio_back_from_its_finished_rendition(
    clip: Clips, tmp_path: Path
) -> None:
    source, out = clip("remux_long.mp4"), tmp_path / "out"
    settings = ProcessSettings(ladder=LadderSettings(segment_target=2.0))
    first, _events = go_on(source, out, settings)
    assert first.ladder.remux_top and first.renditions[0].copied
    layout = VideoLayout(out)
    audio = {p.name: identity(p) for p in layout.rendition("audio").iterdir()}
    top = first.renditions[0].name
    copied = layout.media_playlist(top).read_text()
    os.replace(layout.rendition(top), layout.rendition_partial(top))  # as if unfinished
    layout.media_playlist(top).parent.mkdir()  # (an empty folder is not a rendition)
    (layout.rendition_partial(top) / "index.m3u8").unlink()
    result, _events = go_on(source, out, settings)
    assert {p.name: identity(p) for p in layout.rendition("audio").iterdir()} == audio
    assert layout.media_playlist(top).read_text() == copied
    check_master(out, result.renditions, tmp_path)
    assert_continuous(out, top)


def test_below_the_floor_it_stops_and_removes_what_it_had_not_finished(
    clip: Clips, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    settings = ProcessSettings(ladder=SETTINGS.ladder, min_free_bytes=1 << 60)
    with pytest.raises(OutOfSpace, match="below the floor"):
        process(clip("long_360p.mp4"), out, settings)
    assert not VideoLayout(out).unfinished()
