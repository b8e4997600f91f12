"""Reading fMP4 segments back: the tracks of an init segment and the samples of each
fragment (ISO 14496-12 8.8), for a run that continues a rendition another run began.

Only box headers and `moof` boxes are read from a segment file; sample bytes are read
when asked for (the audio that a continued video rendition muxes again).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .fmp4 import child_box, iter_boxes

# tfhd flags (8.8.7.1) and trun flags (8.8.8.1).
_BASE_DATA_OFFSET, _DESCRIPTION_INDEX = 0x01, 0x02
_DEFAULT_DURATION, _DEFAULT_SIZE, _DEFAULT_FLAGS = 0x08, 0x10, 0x20
_DATA_OFFSET, _FIRST_FLAGS = 0x01, 0x04
_DURATION, _SIZE, _FLAGS, _COMPOSITION = 0x100, 0x200, 0x400, 0x800


@dataclass(frozen=True)
class Track:
    track_id: int
    timescale: int
    handler: bytes  # b"vide", b"soun"
    duration: int  # trex default sample duration (8.8.3)
    size: int  # trex default sample size


@dataclass(frozen=True)
class Sample:
    track_id: int
    decode: int  # decode time, in the track's timescale
    duration: int
    size: int
    offset: int  # of its bytes in the segment file
    composition: int  # presentation time minus decode time


@dataclass(frozen=True)
class Fragment:
    offset: int  # of the moof box in the segment file
    moof: bytes  # the moof box's payload
    header: int  # size of the moof box's header


def _uint(data: bytes, offset: int) -> int:
    return int(struct.unpack_from(">I", data, offset)[0])


def init_tracks(init: bytes) -> dict[int, Track]:
    """track_ID -> Track for every `trak` of an init segment (ftyp + moov)."""
    moov = child_box(init, 0, len(init), b"moov")
    if moov is None:
        return {}
    defaults: dict[int, tuple[int, int]] = {}
    mvex = child_box(init, moov[0], moov[1], b"mvex")
    if mvex is not None:
        for kind, s, _e in iter_boxes(init, mvex[0], mvex[1]):
            if kind == b"trex":
                defaults[_uint(init, s + 4)] = (_uint(init, s + 12), _uint(init, s + 16))
    tracks: dict[int, Track] = {}
    for kind, s, e in iter_boxes(init, moov[0], moov[1]):
        if kind != b"trak":
            continue
        tkhd = child_box(init, s, e, b"tkhd")
        mdia = child_box(init, s, e, b"mdia")
        if tkhd is None or mdia is None:
            continue
        track_id = _uint(init, tkhd[0] + (20 if init[tkhd[0]] == 1 else 12))
        mdhd = child_box(init, mdia[0], mdia[1], b"mdhd")
        hdlr = child_box(init, mdia[0], mdia[1], b"hdlr")
        if mdhd is None or hdlr is None:
            continue
        timescale = _uint(init, mdhd[0] + (20 if init[mdhd[0]] == 1 else 12))
        duration, size = defaults.get(track_id, (0, 0))
        tracks[track_id] = Track(track_id, timescale, init[hdlr[0] + 8 : hdlr[0] + 12],
                                 duration, size)
    return tracks


def read_fragments(path: Path) -> list[Fragment] | None:
    """The fragments of a segment file, or None when it is not a whole run of moof+mdat
    pairs (a box that runs past the end of the file, a moof without its mdat)."""
    try:
        with open(path, "rb") as fh:
            return fragments_in(fh)
    except FileNotFoundError:
        return None


def fragments_in(fh: BinaryIO) -> list[Fragment] | None:
    """As read_fragments, from an open file (or a BytesIO)."""
    size = fh.seek(0, 2)
    fragments: list[Fragment] = []
    offset, expect_mdat = 0, False
    while offset < size:
        fh.seek(offset)
        head = fh.read(16)
        if len(head) < 8:
            return None
        box_size, kind = struct.unpack_from(">I4s", head)
        header = 8
        if box_size == 1 and len(head) == 16:
            (box_size,) = struct.unpack_from(">Q", head, 8)
            header = 16
        if box_size < header or offset + box_size > size:
            return None
        if kind == b"moof":
            if expect_mdat:
                return None
            fh.seek(offset + header)
            fragments.append(Fragment(offset, fh.read(box_size - header), header))
            expect_mdat = True
        elif kind == b"mdat":
            expect_mdat = False
        offset += box_size
    return fragments if fragments and not expect_mdat else None


def fragment_samples(fragment: Fragment, tracks: dict[int, Track]) -> list[Sample]:
    """Every sample of a fragment, track by track, each track's in decode order."""
    moof = fragment.moof
    samples: list[Sample] = []
    for kind, s, e in iter_boxes(moof):
        if kind != b"traf":
            continue
        tfhd = child_box(moof, s, e, b"tfhd")
        tfdt = child_box(moof, s, e, b"tfdt")
        if tfhd is None or tfdt is None:
            continue
        flags = int.from_bytes(moof[tfhd[0] + 1 : tfhd[0] + 4], "big")
        track_id = _uint(moof, tfhd[0] + 4)
        track = tracks.get(track_id)
        pos = tfhd[0] + 8
        # default-base-is-moof (or no base at all, for a traf that is the first in its moof)
        base = fragment.offset
        if flags & _BASE_DATA_OFFSET:
            (base,) = struct.unpack_from(">Q", moof, pos)
            pos += 8
        if flags & _DESCRIPTION_INDEX:
            pos += 4
        duration = track.duration if track else 0
        size = track.size if track else 0
        if flags & _DEFAULT_DURATION:
            duration = _uint(moof, pos)
            pos += 4
        if flags & _DEFAULT_SIZE:
            size = _uint(moof, pos)
        if moof[tfdt[0]] == 1:
            (decode,) = struct.unpack_from(">Q", moof, tfdt[0] + 4)
        else:
            decode = _uint(moof, tfdt[0] + 4)
        data = base
        for run_kind, rs, _re in iter_boxes(moof, s, e):
            if run_kind == b"trun":
                decode, data = _trun(moof, rs, track_id, decode, data, base, duration, size,
                                     samples)
    return samples


def _trun(moof: bytes, start: int, track_id: int, decode: int, data: int, base: int,
          duration: int, size: int, out: list[Sample]) -> tuple[int, int]:
    version = moof[start]
    flags = int.from_bytes(moof[start + 1 : start + 4], "big")
    count = _uint(moof, start + 4)
    pos = start + 8
    if flags & _DATA_OFFSET:
        data = base + int(struct.unpack_from(">i", moof, pos)[0])
        pos += 4
    if flags & _FIRST_FLAGS:
        pos += 4
    for _ in range(count):
        d, n, c = duration, size, 0
        if flags & _DURATION:
            d = _uint(moof, pos)
            pos += 4
        if flags & _SIZE:
            n = _uint(moof, pos)
            pos += 4
        if flags & _FLAGS:
            pos += 4
        if flags & _COMPOSITION:
            c = int(struct.unpack_from(">i" if version == 1 else ">I", moof, pos)[0])
            pos += 4
        out.append(Sample(track_id, decode, d, n, data, c))
        decode += d
        data += n
    return decode, data
