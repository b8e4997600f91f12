"""The progressive MP4's `sidx` (ISO 14496-12 8.16.3) indexes every fragment of the stored
segments: a segment of the copied rung holds one fragment per source keyframe, and a
player that seeks by the index must find each of them (Chromium's `<video>` otherwise
ends playback after the first fragment of the segment it seeked into)."""

from __future__ import annotations

import struct

from media import progressive
from media.fmp4 import iter_boxes
from tests.playback.conftest import Tree


def _sidx(payload: bytes) -> tuple[int, int, int, int, list[tuple[int, int]]]:
    """(track_ID, timescale, earliest_presentation_time, first_offset, [(size, duration)])."""
    assert payload[0] == 1
    track_id, timescale, earliest, first_offset = struct.unpack_from(">IIQQ", payload, 4)
    (count,) = struct.unpack_from(">H", payload, 30)
    refs = [struct.unpack_from(">III", payload, 32 + 12 * i)[:2] for i in range(count)]
    return track_id, timescale, earliest, first_offset, [(s & 0x7FFFFFFF, d) for s, d in refs]


def test_sidx_references_every_fragment_of_every_segment(hls_tree: Tree) -> None:
    directory = hls_tree.root / "hls" / "360p"  # the copied rung: a keyframe every second
    duration = hls_tree.result.probe.duration
    built = progressive.build(directory, duration)
    index = built.head  # the init, then the sidx boxes
    files = built.segments
    body = b"".join(path.read_bytes() for path, _size in files)
    moofs = [s - 8 for kind, s, _ in iter_boxes(body) if kind == b"moof"]
    assert len(moofs) > len(files)  # several fragments in some segment
    boxes = [(s, e) for kind, s, e in iter_boxes(index) if kind == b"sidx"]
    assert len(boxes) == 2  # video and audio
    for s, e in boxes:
        _track, timescale, earliest, first_offset, refs = _sidx(index[s:e])
        # first_offset skips the later sidx boxes; then each reference starts at a moof,
        # in order, and together they cover the body.
        assert first_offset == sum(b - a + 8 for a, b in boxes if a > s)
        offsets = []
        offset = 0
        for size, _ in refs:
            offsets.append(offset)
            offset += size
        assert offsets == moofs and offset == len(body)
        # The index starts at the media's first presented sample and spans the duration.
        end = (earliest + sum(d for _, d in refs)) / timescale
        assert abs(end - earliest / timescale - duration) < 0.1
