"""One MP4 per rendition for a plain `<video src>`, made of the stored HLS files.

The virtual file is `init.mp4` (ftyp + moov, durations filled in) + a generated `sidx`
(ISO 14496-12 8.16.3, one reference per fragment, so players can seek without scanning)
+ every `seg_N.m4s` as stored. No second copy exists: the server maps a byte range onto
the generated head and the stored segments. Working the head out takes a small read of the
init and of each segment's `moof` boxes (blocking: run it in a thread).
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from media.fmp4 import child_box, fragment_start, iter_boxes, track_timescales
from media.layout import INIT, SEGMENT_NAME

MAX_REFERENCES = 0xFFFF  # sidx reference_count is an unsigned 16-bit field (8.16.3.2)


@dataclass(frozen=True)
class Progressive:
    """The virtual MP4: `head` (init + sidx) then each stored segment, whole, in order."""

    head: bytes
    segments: tuple[tuple[Path, int], ...]  # (path, size)
    tag: str  # changes whenever any part does
    modified_ns: int  # the newest part's modification time
    duration: float


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload



def _set_duration(data: bytearray, payload: int, offset_v0: int, offset_v1: int,
                  value: int) -> None:
    """Writes a duration field in place (mvhd 8.2.2, tkhd 8.3.2, mdhd 8.4.2, mehd 8.8.2)."""
    if data[payload] == 1:
        struct.pack_into(">Q", data, payload + offset_v1, value)
    else:
        struct.pack_into(">I", data, payload + offset_v0, min(value, 0xFFFFFFFF))


def fill_durations(init: bytearray, seconds: float) -> None:
    """A fragmented init says duration 0; a progressive player wants the real one."""
    moov = child_box(init, 0, len(init), b"moov")
    if moov is None:
        raise ValueError("init segment without moov")
    mvhd = child_box(init, moov[0], moov[1], b"mvhd")
    if mvhd is None:
        raise ValueError("moov without mvhd")
    movie_scale = struct.unpack_from(">I", init, mvhd[0] + (20 if init[mvhd[0]] == 1 else 12))[0]
    _set_duration(init, mvhd[0], 16, 24, round(seconds * movie_scale))
    for kind, s, e in iter_boxes(init, moov[0], moov[1]):
        if kind == b"trak":
            tkhd = child_box(init, s, e, b"tkhd")
            if tkhd is not None:
                _set_duration(init, tkhd[0], 20, 28, round(seconds * movie_scale))
            mdia = child_box(init, s, e, b"mdia")
            mdhd = child_box(init, mdia[0], mdia[1], b"mdhd") if mdia else None
            if mdhd is not None:
                scale = struct.unpack_from(
                    ">I", init, mdhd[0] + (20 if init[mdhd[0]] == 1 else 12))[0]
                _set_duration(init, mdhd[0], 16, 24, round(seconds * scale))
        elif kind == b"mvex":
            mehd = child_box(init, s, e, b"mehd")
            if mehd is not None:
                _set_duration(init, mehd[0], 4, 4, round(seconds * movie_scale))


def sidx_box(track_id: int, timescale: int, earliest: int, refs: list[tuple[int, int]],
             first_offset: int = 0) -> bytes:
    """Version 1 sidx: (size, duration) per segment; each starts with a keyframe (SAP 1)."""
    payload = struct.pack(">B3xIIQQHH", 1, track_id, timescale, earliest, first_offset, 0,
                          len(refs))
    for size, duration in refs:
        payload += struct.pack(">III", size & 0x7FFFFFFF, duration, 0x90000000)
    return _box(b"sidx", payload)


def _fragments(path: Path) -> list[tuple[int, bytes]]:
    """(offset, moof payload) of every fragment of a stored segment, reading box headers only."""
    found: list[tuple[int, bytes]] = []
    with open(path, "rb") as fh:
        offset = 0
        while True:
            header = fh.read(8)
            if len(header) < 8:
                break
            size, kind = struct.unpack(">I4s", header)
            if size < 8:
                raise ValueError(f"{path.name} is not ISO BMFF")
            if kind == b"moof":
                found.append((offset, fh.read(size - 8)))
            else:
                fh.seek(size - 8, os.SEEK_CUR)
            offset += size
    if not found or found[0][0] != 0:
        raise ValueError(f"{path.name} does not start with a moof")
    return found


def build(directory: Path, duration: float) -> Progressive:
    """Blocking: run in a thread. `directory` is one rendition's (media.layout)."""
    init_path = directory / INIT
    init = bytearray(init_path.read_bytes())
    moov = child_box(init, 0, len(init), b"moov")
    if moov is None:
        raise ValueError("init segment without moov")
    tracks = track_timescales(bytes(init[moov[0]:moov[1]]))
    if not tracks:
        raise ValueError("init segment without tracks")
    tracks.sort(key=lambda t: t[2] != b"vide")  # the video track's index first
    names = sorted(n for n in os.listdir(directory) if SEGMENT_NAME.match(n))
    if not names:
        raise FileNotFoundError("no segments yet")
    # One index reference per fragment (moof + mdat), not per segment: a segment of a
    # copied rung holds one fragment per source keyframe, and FFmpeg-based players
    # (Chromium's <video>) seek to a referenced moof and then jump from reference to
    # reference, so fragments left out of the index would be skipped after a seek.
    sizes, stamp = [], hashlib.blake2b(digest_size=10)
    file_sizes = []
    starts: list[list[int | None]] = [[] for _ in tracks]
    newest = os.stat(init_path).st_mtime_ns
    for name in names:
        path = directory / name
        info = os.stat(path)
        file_sizes.append(info.st_size)
        newest = max(newest, info.st_mtime_ns)
        stamp.update(f"{name}:{info.st_size}:{info.st_mtime_ns};".encode())
        fragments = _fragments(path)
        bounds = [offset for offset, _moof in fragments[1:]] + [info.st_size]
        for (offset, moof), end in zip(fragments, bounds, strict=True):
            sizes.append(end - offset)
            for i, (track_id, _scale, _handler) in enumerate(tracks):
                starts[i].append(fragment_start(moof, track_id))
    step = -(-len(sizes) // MAX_REFERENCES)
    if step > 1:  # reference_count is 16 bits: very long media gets coarser references
        sizes = [sum(sizes[i:i + step]) for i in range(0, len(sizes), step)]
        starts = [[next((t for t in row[i:i + step] if t is not None), None)
                   for i in range(0, len(row), step)] for row in starts]
    boxes = []
    for (track_id, timescale, _handler), track_starts in zip(tracks, starts, strict=True):
        known = [t for t in track_starts if t is not None] or [0]
        # Every track starts at the media's common start instant (media.fmp4), so the
        # presentation ends `duration` after the first sample, not at `duration`.
        end = max(known[0] + round(duration * timescale), known[-1] + 1)
        filled: list[int] = []
        following = end
        for t in reversed(track_starts):  # a fragment without this track: zero length
            following = t if t is not None else following
            filled.append(following)
        filled.reverse()
        ends = [*filled[1:], end]
        durations = [max(0, b - a) for a, b in zip(filled, ends, strict=True)]
        boxes.append((track_id, timescale, filled[0],
                      list(zip(sizes, durations, strict=True))))
    # One sidx per track (as ffmpeg's global_sidx); each one's first_offset skips the
    # sidx boxes after it, so every index points at the same first moof.
    sidx_list = [sidx_box(*b) for b in boxes]
    sidx_list = [sidx_box(*b, first_offset=sum(len(x) for x in sidx_list[i + 1:]))
                 for i, b in enumerate(boxes)]
    sidx = b"".join(sidx_list)
    fill_durations(init, duration)
    stamp.update(bytes(init))
    segments = tuple((directory / n, size) for n, size in zip(names, file_sizes, strict=True))
    return Progressive(bytes(init) + sidx, segments, stamp.hexdigest(), newest, duration)
