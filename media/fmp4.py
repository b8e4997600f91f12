"""Cut the byte stream of FFmpeg's fragmented-MP4 muxer into HLS segment files.

The mp4 muxer runs with `movflags=frag_keyframe+empty_moov+default_base_moof` and
writes into `SegmentSink`, which it sees as a non-seekable file. `ftyp`+`moov` become
`init.mp4` (the EXT-X-MAP of RFC 8216 section 4.3.2.5);
each `moof`+`mdat` pair is a fragment, and a fragment whose first sample is
presented at a boundary instant opens a new segment. Cutting here, instead of with
the `hls` muxer, puts boundaries exactly at the instants the ladder chose (every
rung's IDR frames, or the source's own keyframes for a remux) and keeps several
fragments in one segment when the source has more keyframes than boundaries.

One timeline for every track of every rendition: the muxer starts each track's decode
time (tfdt) at 0, so a video track whose first frame has a composition offset (the
B-frame reorder delay, which differs between a copied source and libx264) would be
presented that much after the audio. Signed offsets (trun version 1) are read
differently by players (FFmpeg adds the largest negative offset back to every
timestamp), so offsets stay unsigned and the sink moves each track's tfdt instead:
every track's first sample is presented at `lead`, a common instant no shorter than
any rendition's reorder delay (ISO 14496-12 8.8.12, composition = decode + offset).
An edit list in the init segment (8.6.6, one entry with media_time = `lead`) then has
players present that instant as 0, so playback starts at 0 with no hole before it
(Chromium's MSE, Safari, FFmpeg honour it), and A/V sync is untouched.

Each segment is written under a temporary name and renamed when whole, so a segment
file that exists is complete. A run that continues a rendition another run stopped
(`Continuation`) appends to its whole segments: each track's decode time goes on from
where the last segment left it, so the timeline has neither gap nor overlap.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from media.layout import INIT, segment_name, temporary

from .hls import write_atomic

_CONTAINERS = {b"moov", b"trak", b"mdia", b"moof", b"traf"}


@dataclass(frozen=True)
class Segment:
    name: str
    start: float  # presentation time of the first sample, seconds from the start
    size: int  # bytes


@dataclass(frozen=True)
class Continuation:
    """The whole segments a stopped run left of a rendition, for a new run to append to."""

    init: bytes  # the init segment they go with; the new run's must be the same
    segments: tuple[Segment, ...]
    # By track handler (b"vide", b"soun"): the decode time after the last sample, in the
    # track's timescale, and how many samples the segments hold.
    decode_ends: Mapping[bytes, int] = field(default_factory=dict)
    samples: Mapping[bytes, int] = field(default_factory=dict)


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def with_edit_lists(init: bytes, lead: float) -> bytes:
    """`init` (ftyp + moov) with an `edts`/`elst` after each `tkhd` (8.6.5, 8.6.6): one
    entry, segment_duration 0 (the whole, unknown length of a fragmented track),
    media_time `lead` in the track's own timescale, rate 1."""
    if lead <= 0:
        return init
    out = bytearray()
    begin = 0  # where the current box starts (its header may be 8 or 16 bytes)
    for kind, start, end in iter_boxes(init):
        box_start, begin = begin, end
        if kind != b"moov":
            out += init[box_start:end]
            continue
        moov = init[start:end]
        scales = {track_id: scale for track_id, scale, _ in track_timescales(moov)}
        body = bytearray()
        child_start = 0
        for child, cs, ce in iter_boxes(moov):
            child_box_start, child_start = child_start, ce
            if child != b"trak":
                body += moov[child_box_start:ce]
                continue
            trak = bytearray()
            part_start = cs
            for part, ps, pe in iter_boxes(moov, cs, ce):
                part_box_start, part_start = part_start, pe
                if part == b"edts":
                    continue  # ours replaces any the muxer wrote
                trak += moov[part_box_start:pe]
                if part == b"tkhd":
                    version = moov[ps]
                    (track_id,) = struct.unpack_from(">I", moov, ps + (20 if version == 1 else 12))
                    media_time = round(lead * scales.get(track_id, 1))
                    elst = struct.pack(">I I I i H H", 0, 1, 0, media_time, 1, 0)
                    trak += _box(b"edts", _box(b"elst", elst))
            body += _box(b"trak", bytes(trak))
        out += _box(b"moov", bytes(body))
    return bytes(out)


def iter_boxes(
    data: bytes | bytearray, start: int = 0, end: int | None = None
) -> Iterator[tuple[bytes, int, int]]:
    """Yield (type, payload offset, box end) for the boxes in data[start:end]."""
    end = len(data) if end is None else end
    off = start
    while off + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, off)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, off + 8)
            header = 16
        elif size == 0:
            size = end - off
        if size < header:
            return
        yield kind, off + header, off + size
        off += size


def child_box(data: bytes | bytearray, start: int, end: int, kind: bytes
              ) -> tuple[int, int] | None:
    for k, s, e in iter_boxes(data, start, end):
        if k == kind:
            return s, e
    return None


def track_timescales(moov: bytes | bytearray) -> list[tuple[int, int, bytes]]:
    """(track_ID, timescale, handler) per `trak` of a moov payload (ISO 14496-12 8.3, 8.4)."""
    tracks: list[tuple[int, int, bytes]] = []
    for kind, s, e in iter_boxes(moov):
        if kind != b"trak":
            continue
        tkhd = child_box(moov, s, e, b"tkhd")
        mdia = child_box(moov, s, e, b"mdia")
        if tkhd is None or mdia is None:
            continue
        version = moov[tkhd[0]]
        (track_id,) = struct.unpack_from(">I", moov, tkhd[0] + (20 if version == 1 else 12))
        mdhd = child_box(moov, mdia[0], mdia[1], b"mdhd")
        hdlr = child_box(moov, mdia[0], mdia[1], b"hdlr")
        if mdhd is None or hdlr is None:
            continue
        version = moov[mdhd[0]]
        (timescale,) = struct.unpack_from(">I", moov, mdhd[0] + (20 if version == 1 else 12))
        tracks.append((track_id, timescale, bytes(moov[hdlr[0] + 8 : hdlr[0] + 12])))
    return tracks


def fragment_start(moof: bytes | bytearray, track_id: int) -> int | None:
    """Presentation time, in track timescale, of the first sample of `track_id` in a moof payload.

    tfdt's baseMediaDecodeTime plus the first sample's (signed, trun version 1)
    composition offset, ISO 14496-12 8.8.8 and 8.8.12.
    """
    for kind, s, e in iter_boxes(moof):
        if kind != b"traf":
            continue
        tfhd = child_box(moof, s, e, b"tfhd")
        if tfhd is None or struct.unpack_from(">I", moof, tfhd[0] + 4)[0] != track_id:
            continue
        tfdt = child_box(moof, s, e, b"tfdt")
        if tfdt is None:
            return None
        if moof[tfdt[0]] == 1:
            (base,) = struct.unpack_from(">Q", moof, tfdt[0] + 4)
        else:
            (base,) = struct.unpack_from(">I", moof, tfdt[0] + 4)
        return int(base) + _first_composition_offset(moof, s, e)
    return None


def _shift_tfdt(moof: bytearray, start: int, end: int, ticks: int) -> None:
    tfdt = child_box(moof, start, end, b"tfdt")
    if tfdt is None or ticks == 0:
        return
    fmt = ">Q" if moof[tfdt[0]] == 1 else ">I"
    (base,) = struct.unpack_from(fmt, moof, tfdt[0] + 4)
    struct.pack_into(fmt, moof, tfdt[0] + 4, base + ticks)


def _first_composition_offset(moof: bytes | bytearray, start: int, end: int) -> int:
    trun = child_box(moof, start, end, b"trun")
    if trun is None:
        return 0
    pos = trun[0]
    version = moof[pos]
    flags = int.from_bytes(moof[pos + 1 : pos + 4], "big")
    if not flags & 0x800:
        return 0
    pos += 8 + (4 if flags & 0x1 else 0) + (4 if flags & 0x4 else 0)
    pos += 4 * sum(1 for bit in (0x100, 0x200, 0x400) if flags & bit)
    fmt = ">i" if version == 1 else ">I"
    return int(struct.unpack_from(fmt, moof, pos)[0])


class SegmentSink:
    """File-like target for the mp4 muxer that writes init.mp4 and seg_NNNNN.m4s into `directory`.

    `boundaries` are segment start instants in seconds (the first is 0); a fragment
    starting within `tolerance` before a boundary still opens that boundary's segment.
    Every track's first sample is presented at `lead` seconds (see the module's notes);
    segment starts are counted from there. With `last_fragments` (an encoder that puts
    keyframes only where told: for each segment, when its last fragment starts) a segment
    is whole, and renamed into place, as soon as that fragment is; otherwise only when the
    next segment begins.
    """

    def __init__(
        self,
        directory: Path,
        boundaries: Sequence[float],
        tolerance: float,
        lead: float = 0.0,
        *,
        after: Continuation | None = None,
        last_fragments: Sequence[float] | None = None,
    ) -> None:
        self.directory = directory
        self.lead = lead
        self.after = after
        self.last_fragments = list(last_fragments) if last_fragments is not None else None
        self.fragment_per_segment = last_fragments is not None  # keyframes where told only
        self._fragment_start = 0.0
        self._tracks: dict[int, tuple[int, bytes]] = {}  # track_ID: (timescale, handler)
        self._shifts: dict[int, int] = {}  # track_ID: ticks added to its tfdt
        self.boundaries = list(boundaries)
        self.tolerance = tolerance
        self.segments: list[Segment] = list(after.segments) if after else []
        self.bytes_written = 0
        self.init_matches = True  # False: the continued segments need another init segment
        self._buffer = bytearray()
        self._init = bytearray()
        self._track = 0
        self._timescale = 1
        self._next_boundary = len(self.segments)
        self._current: BinaryIO | None = None
        self._current_size = 0
        self._discarding = False

    def write(self, data: bytes) -> int:
        if not self._discarding:
            self._buffer += data
            self._drain()
        return len(data)

    def flush(self) -> None:
        """The muxer flushes its buffer; complete boxes are drained on write."""

    def close(self) -> None:
        if not self._discarding:
            self._drain()
            self._close_segment()

    def discard(self) -> None:
        """Throw away the segment being written and whatever the muxer still sends (an
        aborted run): only whole segments are ever renamed into place."""
        self._discarding = True
        if self._current is not None:
            self._current.close()
            self._current = None
            temporary(self._segment_path()).unlink(missing_ok=True)

    def _drain(self) -> None:
        while True:
            header = next(iter_boxes(self._buffer), None)
            if header is None or header[2] > len(self._buffer):
                return
            kind, payload, end = header
            box = bytes(self._buffer[:end])
            del self._buffer[:end]
            self._handle(kind, box, payload)

    def _handle(self, kind: bytes, box: bytes, payload: int) -> None:
        if kind in (b"ftyp", b"moov"):
            self._init += box
            if kind == b"moov":
                self._choose_track(box[payload:])
                self._init = bytearray(with_edit_lists(bytes(self._init), self.lead))
                if self.after is None:
                    write_atomic(self.directory / INIT, bytes(self._init))
                elif bytes(self._init) != self.after.init:
                    self.init_matches = False
        elif kind == b"moof":
            moof = bytearray(box[payload:])
            self._shift(moof)
            start = fragment_start(moof, self._track)
            if start is not None:
                self._fragment_start = start / self._timescale - self.lead
                self._maybe_open(self._fragment_start)
            self._append(box[:payload] + bytes(moof))
        elif kind == b"mdat":
            self._append(box)
            if self._segment_is_whole():
                self._close_segment()
        # mfra and any trailing index are not part of an HLS segment.

    def _segment_is_whole(self) -> bool:
        """The fragment just written was its segment's last (keyframes where told only)."""
        if self.last_fragments is None or not self.segments or self._current is None:
            return False
        index = len(self.segments) - 1
        return index < len(self.last_fragments) and (
            self._fragment_start >= self.last_fragments[index] - self.tolerance)

    def _shift(self, moof: bytearray) -> None:
        for kind, s, e in iter_boxes(moof):
            tfhd = child_box(moof, s, e, b"tfhd") if kind == b"traf" else None
            if tfhd is None:
                continue
            (track_id,) = struct.unpack_from(">I", moof, tfhd[0] + 4)
            if track_id not in self._shifts:
                self._shifts[track_id] = self._first_shift(track_id, moof, s, e)
            _shift_tfdt(moof, s, e, self._shifts[track_id])

    def _first_shift(self, track_id: int, moof: bytearray, start: int, end: int) -> int:
        timescale, handler = self._tracks.get(track_id, (1, b""))
        if self.after is not None and handler in self.after.decode_ends:
            # Go on from the decode time at which the continued segments end.
            tfdt = child_box(moof, start, end, b"tfdt")
            first = 0
            if tfdt is not None:
                fmt = ">Q" if moof[tfdt[0]] == 1 else ">I"
                (first,) = struct.unpack_from(fmt, moof, tfdt[0] + 4)
            return self.after.decode_ends[handler] - int(first)
        # A video track's first fragment: its first frame's offset is the delay.
        delay = _first_composition_offset(moof, start, end) if handler == b"vide" else 0
        return max(0, round(self.lead * timescale) - delay)

    def _choose_track(self, moov: bytes) -> None:
        tracks = track_timescales(moov)
        self._tracks = {t[0]: (t[1], t[2]) for t in tracks}
        video = [t for t in tracks if t[2] == b"vide"]
        chosen = (video or tracks)[0]
        self._track, self._timescale = chosen[0], chosen[1]

    def _maybe_open(self, start: float) -> None:
        nb = self._next_boundary
        at_boundary = nb < len(self.boundaries) and start >= self.boundaries[nb] - self.tolerance
        if self.fragment_per_segment and self._current is None and self.segments \
                and not at_boundary:
            raise ValueError(f"a fragment at {start:.3f} s does not start a segment")
        if self._current is not None and not at_boundary:
            return
        while nb + 1 < len(self.boundaries) and start >= self.boundaries[nb + 1] - self.tolerance:
            nb += 1  # a fragment may jump past a boundary that had no keyframe
        self._next_boundary = nb + 1
        self._close_segment()
        name = segment_name(len(self.segments))
        self.segments.append(Segment(name, start, 0))
        self._current = open(temporary(self.directory / name), "wb")
        self._current_size = 0

    def _segment_path(self) -> Path:
        return self.directory / self.segments[-1].name

    def _append(self, box: bytes) -> None:
        if self._current is None:
            if self.fragment_per_segment and self.segments:
                raise ValueError("a fragment without the video that starts its segment")
            return
        self._current.write(box)
        self._current_size += len(box)
        self.bytes_written += len(box)

    def _close_segment(self) -> None:
        if self._current is None:
            return
        # On disk before it is renamed, so that after a power cut a segment is whole or absent.
        self._current.flush()
        os.fsync(self._current.fileno())
        self._current.close()
        self._current = None
        last = self.segments[-1]
        self.segments[-1] = Segment(last.name, last.start, self._current_size)
        path = self._segment_path()
        os.replace(temporary(path), path)
