"""media/ts.py: a remuxed TS segment whose continuity counters start at 0 and end at 15 for
every PID, with the very same elementary stream bytes as the muxer wrote."""

from __future__ import annotations

from pathlib import Path

import av

from media.ladder import LadderSettings
from media.layout import VideoLayout
from media.pipeline import ProcessSettings, process
from media.ts import PACKET, make_continuous, remux_segment
from tests.media.clips import Clip, make_clip


def packets_of(path: Path) -> list[tuple[int, bytes, int | None]]:
    with av.open(str(path)) as container:
        return [(p.stream.index, bytes(p), p.pts) for p in container.demux() if p.size]


def counters(path: Path) -> dict[int, list[int]]:
    data = path.read_bytes()
    found: dict[int, list[int]] = {}
    for offset in range(0, len(data), PACKET):
        packet = data[offset:offset + PACKET]
        if (packet[3] >> 4) & 1:  # has a payload
            pid = ((packet[1] & 0x1F) << 8) | packet[2]
            found.setdefault(pid, []).append(packet[3] & 0xF)
    return found


def test_segments_count_to_a_multiple_of_16_with_their_bytes_unchanged(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "s.mp4", Clip(320, 240, seconds=4.0, gop=25))
    settings = ProcessSettings(ladder=LadderSettings(enabled=frozenset({240}),
                                                     segment_target=2.0, allow_remux=False),
                               poster=False, storyboard=False)
    process(source, tmp_path / "out", settings)
    layout = VideoLayout(tmp_path / "out")
    segment = layout.segment("240p", 1)
    out = layout.ts_segment("240p", 1)
    remux_segment(layout.init("240p"), segment, out)
    for pid, seen in counters(out).items():
        assert len(seen) % 16 == 0, pid
        assert seen == [i % 16 for i in range(len(seen))], pid
    # What the muxer alone writes, for comparison: the same elementary stream packets.
    raw = tmp_path / "raw.ts"
    again = tmp_path / "again.ts"
    with av.open(str(out)) as src, av.open(str(raw), "w", format="mpegts",
                                           options={"mpegts_copyts": "1"}) as dst:
        streams = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                dst.mux(packet)
    make_continuous(raw, again)
    assert packets_of(again) == packets_of(raw)
    assert again.stat().st_size > raw.stat().st_size  # split packets, tables repeated
    assert any(len(seen) % 16 for seen in counters(raw).values())  # they were needed
