"""What a stopped run left in a video's directory, read back so that the next run goes on
from there instead of starting over.

A finished rendition (hls/<name>/ with its playlist) is kept as it is and described
again from its files. A partial one (hls/.<name>.partial/) keeps its whole segments:
each was renamed into place only once complete, so a segment file that is there and
whose boxes are whole is a segment to keep. Its last segment, the one at the last
boundary, is always made again, as is anything after a segment that does not start
where the ladder's boundaries say it should.
"""

from __future__ import annotations

import itertools
import shutil
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from media.layout import INIT, TEMPORARY_NAME, VideoLayout, segment_name

from .fmp4 import Continuation, Segment, child_box, iter_boxes
from .fragments import Track, fragment_samples, init_tracks, read_fragments
from .hls import RenditionInfo, rendition_info
from .ladder import AudioRendition, Ladder, VideoRendition
from .outputs import AAC_LC, StoredPacket, avc1_codec

_VISUAL_SAMPLE_ENTRY = 78  # bytes before a visual sample entry's child boxes (12.1.3)


@dataclass(frozen=True)
class Found:
    finished: dict[str, RenditionInfo]  # by name, complete on disk
    partial: dict[str, Continuation]  # encoded renditions with whole segments to go on from


def inspect(out_dir: Path, ladder: Ladder, lead: float) -> Found:
    """Read what is on disk for every rendition of `ladder`; partial renditions of the
    copied top rung and the audio are not continued (their pass is quick): they start over."""
    layout = VideoLayout(out_dir)
    finished: dict[str, RenditionInfo] = {}
    partial: dict[str, Continuation] = {}
    renditions: list[VideoRendition | AudioRendition] = [*ladder.video]
    if ladder.audio is not None:
        renditions.append(ladder.audio)
    for rendition in renditions:
        info = finished_rendition(layout, rendition, has_audio=ladder.audio is not None)
        if info is not None:
            finished[rendition.name] = info
            continue
        if isinstance(rendition, VideoRendition) and not rendition.copy:
            found = continuation(layout, rendition.name, ladder.boundaries,
                                 0.5 / rendition.fps, lead)
            if found is not None:
                partial[rendition.name] = found
    return Found(finished, partial)


def finished_rendition(layout: VideoLayout, rendition: VideoRendition | AudioRendition, *,
                       has_audio: bool) -> RenditionInfo | None:
    name = rendition.name
    partial = layout.rendition_partial(name)
    if not layout.media_playlist(name).is_file() and (partial / "index.m3u8").is_file():
        # Stopped between writing its playlist and renaming the directory into place.
        shutil.rmtree(layout.rendition(name), ignore_errors=True)
        partial.replace(layout.rendition(name))
    listed = _playlist(layout.media_playlist(name))
    if not listed:
        return None
    sizes = []
    for segment, _duration in listed:
        path = layout.rendition(name) / segment
        if not path.is_file():
            return None
        sizes.append(path.stat().st_size)
    durations = [d for _s, d in listed]
    if isinstance(rendition, AudioRendition):
        return rendition_info(name, "audio", sizes, durations, codecs=AAC_LC)
    try:
        init = layout.init(name).read_bytes()
    except FileNotFoundError:
        return None
    codecs = _video_codecs(init)
    if codecs is None:
        return None
    return rendition_info(name, "video", sizes, durations, width=rendition.width,
                          height=rendition.height, frame_rate=rendition.fps,
                          codecs=codecs + ("," + AAC_LC if has_audio else ""),
                          copied=rendition.copy)


def _playlist(path: Path) -> list[tuple[str, float]]:
    """(segment, duration) of a media playlist this package wrote; [] if it is not one."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, UnicodeDecodeError):
        return []
    if not lines or lines[-1] != "#EXT-X-ENDLIST":
        return []
    listed: list[tuple[str, float]] = []
    for line, following in itertools.pairwise(lines):
        if line.startswith("#EXTINF:"):
            try:
                listed.append((following, float(line[8:].split(",")[0])))
            except ValueError:
                return []
    return listed


def _video_codecs(init: bytes) -> str | None:
    """RFC 6381 avc1 string from the init segment's avcC (ISO 14496-15 5.3.3)."""
    for _kind, s, e in _path(init, 0, len(init), b"moov", b"trak"):
        stbl = _first(init, s, e, b"mdia", b"minf", b"stbl", b"stsd")
        if stbl is None:
            continue
        for kind, es, ee in iter_boxes(init, stbl[0] + 8, stbl[1]):  # after version and count
            if kind == b"avc1":
                avcc = child_box(init, es + _VISUAL_SAMPLE_ENTRY, ee, b"avcC")
                if avcc is not None:
                    return avc1_codec(init[avcc[0] : avcc[1]])
    return None


def _path(data: bytes, start: int, end: int, *kinds: bytes) -> list[tuple[bytes, int, int]]:
    found = [(b"", start, end)]
    for kind in kinds:
        found = [b for _k, s, e in found for b in iter_boxes(data, s, e) if b[0] == kind]
    return found


def _first(data: bytes, start: int, end: int, *kinds: bytes) -> tuple[int, int] | None:
    found = _path(data, start, end, *kinds)
    return (found[0][1], found[0][2]) if found else None


def continuation(layout: VideoLayout, name: str, boundaries: tuple[float, ...],
                 tolerance: float, lead: float) -> Continuation | None:
    """The whole segments of a partial rendition that start at their boundaries; the
    files after them are removed. None (and nothing kept) when there are none."""
    directory = layout.rendition_partial(name)
    if not directory.is_dir():
        return None
    for path in directory.iterdir():
        if TEMPORARY_NAME.match(path.name):
            path.unlink(missing_ok=True)  # torn: a write the stopped run did not finish
    try:
        init = (directory / INIT).read_bytes()
    except FileNotFoundError:
        return None
    tracks = init_tracks(init)
    main = next((t for t in tracks.values() if t.handler == b"vide"), None)
    if main is None:
        return None
    segments: list[Segment] = []
    ends: dict[bytes, int] = {}
    counts: dict[bytes, int] = {}
    # The segment at the last boundary is made again: only then does the run know the end.
    while len(segments) < len(boundaries) - 1:
        index = len(segments)
        path = directory / segment_name(index)
        whole = _segment(path, tracks, main, lead)
        if whole is None:
            break
        start, last = whole
        low = boundaries[index] - tolerance
        high = boundaries[index + 1] - tolerance
        if not low <= start < high:
            break
        segments.append(Segment(segment_name(index), start, path.stat().st_size))
        for handler, (end, count) in last.items():
            ends[handler] = end
            counts[handler] = counts.get(handler, 0) + count
    for path in directory.iterdir():
        if path.name != INIT and path.name not in {s.name for s in segments}:
            path.unlink(missing_ok=True)
    if not segments:
        return None
    return Continuation(init, tuple(segments), ends, counts)


def _segment(path: Path, tracks: dict[int, Track], main: Track, lead: float
             ) -> tuple[float, dict[bytes, tuple[int, int]]] | None:
    """A whole segment's start (as SegmentSink counts it) and, by track handler, its
    decode end and sample count; None when the file is missing or not whole."""
    fragments = read_fragments(path)
    if not fragments:
        return None
    start: float | None = None
    last: dict[bytes, tuple[int, int]] = {}
    for fragment in fragments:
        for sample in fragment_samples(fragment, tracks):
            track = tracks.get(sample.track_id)
            if track is None:
                return None
            if start is None and track is main:
                start = (sample.decode + sample.composition) / main.timescale - lead
            _end, count = last.get(track.handler, (0, 0))
            last[track.handler] = (sample.decode + sample.duration, count + 1)
    return (start, last) if start is not None else None


def stored_audio(layout: VideoLayout, name: str, first: int) -> list[StoredPacket]:
    """The encoded audio of a finished audio rendition from its sample `first` on, as the
    run that encoded it held it: the same packets, one after another in decode time."""
    listed = _playlist(layout.media_playlist(name))
    tracks = init_tracks(layout.init(name).read_bytes())
    packets: list[StoredPacket] = []
    index = 0
    origin: int | None = None
    for segment, _duration in listed:
        path = layout.rendition(name) / segment
        data = path.read_bytes()
        for fragment in read_fragments(path) or []:
            for sample in fragment_samples(fragment, tracks):
                track = tracks[sample.track_id]
                if origin is None:
                    origin = sample.decode
                if index >= first:
                    packets.append(StoredPacket(
                        data[sample.offset : sample.offset + sample.size],
                        sample.decode - origin, sample.decode - origin, sample.duration,
                        Fraction(1, track.timescale)))
                index += 1
    return packets


def decode_start(keyframes: Sequence[float], starts: Sequence[float]) -> float:
    """The source keyframe at or before the earliest instant some rung still needs (its
    first missing segment's start), where the encode pass seeks to; 0 from the beginning."""
    first = min(starts, default=0.0)
    if first <= 0:
        return 0.0
    index = bisect_right(keyframes, first + 1e-6) - 1
    return keyframes[index] if index >= 0 else 0.0
