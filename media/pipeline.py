"""The single entry point of a worker: probe, ladder, transcode, playlists, thumbnails."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from media.layout import VideoLayout

from .errors import MediaError, OutOfSpace, TranscodeCancelled, out_of_space
from .hls import RenditionInfo
from .iframes import write_master_with_iframes
from .ladder import Ladder, LadderSettings, choose_ladder
from .probe import ProbeResult, probe
from .thumbnails import PosterPicker, StoryboardBuilder, seek_feed
from .transcode import Progress, RenditionDone, TranscodeEvent, transcode

# Share of the overall percentage per stage; thumbnails come after every rendition.
_PROBE, _TRANSCODE, _POSTER = 1.0, 90.0, 93.0


@dataclass(frozen=True)
class ProcessSettings:
    ladder: LadderSettings = field(default_factory=LadderSettings)
    poster: bool = True
    storyboard: bool = True
    storyboard_interval: float | None = None  # None: about 100 thumbnails, 1 to 10 s apart
    min_free_bytes: int = 0  # stop with OutOfSpace when less is free on the output's disk


@dataclass(frozen=True)
class Probed:
    probe: ProbeResult
    ladder: Ladder


ProcessEvent = Probed | Progress | RenditionDone


@dataclass(frozen=True)
class ProcessResult:
    probe: ProbeResult
    ladder: Ladder
    renditions: tuple[RenditionInfo, ...]
    master: Path  # out_dir/hls/master.m3u8
    poster: Path | None  # None for audio-only sources
    storyboard: Path | None  # the .vtt; None for audio-only sources
    seconds: dict[str, float]  # wall time per stage


def process(
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    settings: ProcessSettings | None = None,
    on_event: Callable[[ProcessEvent], None] = lambda _event: None,
    should_cancel: Callable[[], bool] = lambda: False,
) -> ProcessResult:
    """Raises MediaError (with a readable `reason`), TranscodeCancelled or OutOfSpace.

    Goes on from what a stopped run left in `out_dir` (see media.resume): the renditions
    it finished are reported again at once, and the master playlist lists them."""
    settings = settings or ProcessSettings()
    out = Path(out_dir)
    layout = VideoLayout(out)
    seconds: dict[str, float] = {}
    clock = time.monotonic()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.monotonic()
        seconds[stage] = round(now - clock, 3)
        clock = now

    info = probe(
        source,
        max_duration=settings.ladder.max_duration,
        max_short_side=settings.ladder.max_short_side,
    )
    ladder = choose_ladder(info, settings.ladder)
    lap("probe")
    on_event(Probed(info, ladder))
    done: list[RenditionInfo] = []

    def relay(event: TranscodeEvent) -> None:
        if isinstance(event, RenditionDone):
            done.append(event.info)
            # Playable as soon as one video rendition is (audio-only sources: the audio).
            if info.video is None or any(r.kind == "video" for r in done):
                write_master_with_iframes(layout, done)
            on_event(event)
        else:
            share = _PROBE + (_TRANSCODE - _PROBE) * event.overall / 100
            on_event(Progress(round(share, 1), event.renditions))

    # Thumbnails ride on the encode pass's decode; without one they seek on their own.
    picker = PosterPicker(info.duration) if settings.poster and info.video else None
    board = None
    if settings.storyboard and info.video is not None and info.duration > 0:
        board = StoryboardBuilder(
            out,
            info.duration,
            info.video.display_width,
            info.video.display_height,
            settings.storyboard_interval,
        )
    consumers = [c for c in (picker, board) if c is not None]
    try:
        result = transcode(
            info.path,
            out,
            ladder,
            on_event=relay,
            should_cancel=should_cancel,
            frame_consumers=consumers,
            min_free_bytes=settings.min_free_bytes,
        )
        master = write_master_with_iframes(layout, list(result.renditions))
        lap("transcode")
        poster = storyboard = None
        if picker is not None:
            _check(should_cancel)
            if not result.frames_decoded and info.video:  # no decode pass this run: seek
                seek_feed(info.path, info.video, picker, picker.missing(float("inf")))
            poster = picker.write(VideoLayout(out).poster)
            on_event(Progress(_POSTER, {}))
        lap("poster")
        if board is not None:
            _check(should_cancel)
            if not result.frames_decoded and info.video:
                seek_feed(info.path, info.video, board, board.missing(float("inf")))
            storyboard = board.finish()
        lap("storyboard")
    except BaseException as exc:
        full = out_of_space(exc)
        if board is not None and (full or isinstance(exc, TranscodeCancelled | MediaError)):
            board.abort()  # otherwise its tiles so far stay for the next run
        if full is not None and not isinstance(exc, OutOfSpace):
            raise full from exc
        raise
    on_event(Progress(100.0, {r.name: 100.0 for r in result.renditions}))
    return ProcessResult(info, ladder, result.renditions, master, poster, storyboard, seconds)


def _check(should_cancel: Callable[[], bool]) -> None:
    if should_cancel():
        raise TranscodeCancelled()
