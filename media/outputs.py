"""One HLS rendition being written: an fMP4 muxer feeding a SegmentSink in a temporary dir."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import av.error
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.packet import Packet
from av.stream import Stream
from av.video.stream import VideoStream

from media.layout import VideoLayout

from .errors import MediaError
from .fmp4 import Continuation, SegmentSink
from .hls import RenditionInfo, rendition_info, write_media_playlist

# Fragment at every keyframe; the moov carries no samples (the init segment); tfdt in
# each fragment. Composition offsets stay unsigned: SegmentSink lines the tracks up.
MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"
AUDIO_FRAGMENT_US = "500000"  # audio-only output has no keyframes to cut at
AAC_LC = "mp4a.40.2"


@dataclass(frozen=True)
class StoredPacket:
    """An encoded packet kept as bytes so that it can be muxed into several outputs."""

    data: bytes
    pts: int
    dts: int
    duration: int
    time_base: Fraction

    @property
    def time(self) -> float:
        return float(self.pts * self.time_base)

    @classmethod
    def of(cls, packet: Packet[Any]) -> StoredPacket:
        assert packet.pts is not None and packet.dts is not None and packet.time_base is not None
        return cls(bytes(packet), packet.pts, packet.dts, packet.duration or 0, packet.time_base)

    def packet_for(self, stream: Stream) -> Packet[Any]:
        packet = Packet(self.data)
        packet.pts, packet.dts, packet.duration = self.pts, self.dts, self.duration
        packet.time_base = self.time_base
        packet.is_keyframe = True
        packet.stream = stream
        return packet


def avc1_codec(extradata: bytes | None) -> str:
    """RFC 6381 avc1.PPCCLL from an avcC record or an Annex B SPS (ISO 14496-15 5.3.3)."""
    if not extradata:
        return "avc1.640028"
    if extradata[0] == 1 and len(extradata) >= 4:
        return "avc1." + extradata[1:4].hex().upper()
    i = extradata.find(b"\x00\x00\x01")
    while i >= 0 and i + 6 < len(extradata):
        if extradata[i + 3] & 0x1F == 7:  # sequence parameter set
            return "avc1." + extradata[i + 4 : i + 7].hex().upper()
        i = extradata.find(b"\x00\x00\x01", i + 3)
    return "avc1.640028"


class RenditionOutput:
    """Written in hls/.<name>.partial/, renamed to hls/<name>/ when finished. With `after`,
    the partial directory's whole segments are kept and this run appends to them."""

    def __init__(
        self,
        out_dir: Path,
        name: str,
        boundaries: Sequence[float],
        tolerance: float,
        *,
        lead: float = 0.0,
        audio_only: bool = False,
        after: Continuation | None = None,
        last_fragments: Sequence[float] | None = None,
    ) -> None:
        self.name = name
        layout = VideoLayout(out_dir)
        self.final_dir = layout.rendition(name)
        self.tmp_dir = layout.rendition_partial(name)
        if after is None:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.sink = SegmentSink(self.tmp_dir, boundaries, tolerance, lead, after=after,
                                last_fragments=last_fragments)
        # No shift of every track by the first packet (AAC priming, B-frame delay): the
        # muxer starts each track at 0 and SegmentSink puts the tracks on one timeline.
        options = {"movflags": MOVFLAGS, "avoid_negative_ts": "disabled"}
        if audio_only:
            options["frag_duration"] = AUDIO_FRAGMENT_US
        self.container: OutputContainer = av.open(self.sink, "w", format="mp4", options=options)
        self.video: VideoStream | None = None
        self.audio: AudioStream | None = None
        self.closed = False

    @property
    def continued(self) -> bool:
        return self.sink.after is not None

    def start(self) -> bool:
        """Write the header now; False when a continued rendition's init segment differs
        from this run's (another encoder build): its segments cannot be continued."""
        self.container.start_encoding()
        return self.sink.init_matches

    def add_audio_template(self, template: AudioStream) -> None:
        self.audio = self.container.add_stream_from_template(template)

    def mux(self, packets: Sequence[Packet[Any]]) -> None:
        if packets:
            self.container.mux(list(packets))

    def mux_stored(self, packets: Sequence[StoredPacket]) -> None:
        if self.audio is not None and packets:
            self.container.mux([p.packet_for(self.audio) for p in packets])

    def finish(
        self,
        end: float,
        kind: Literal["video", "audio"],
        *,
        width: int | None = None,
        height: int | None = None,
        frame_rate: float | None = None,
        codecs: str = AAC_LC,
        copied: bool = False,
    ) -> RenditionInfo:
        self._close()
        segments = self.sink.segments
        if not segments:
            raise MediaError(f"nothing could be encoded for the {self.name} rendition")
        starts = [s.start for s in segments]
        durations = [
            b - a for a, b in zip(starts, [*starts[1:], max(end, starts[-1] + 0.001)], strict=True)
        ]
        write_media_playlist(self.tmp_dir, [s.name for s in segments], durations)
        shutil.rmtree(self.final_dir, ignore_errors=True)
        os.replace(self.tmp_dir, self.final_dir)
        return rendition_info(self.name, kind, [s.size for s in segments], durations,
                              width=width, height=height, frame_rate=frame_rate, codecs=codecs,
                              copied=copied)

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            self.container.close()
            self.sink.close()

    def abort(self, *, keep: bool = False) -> None:
        """Stop writing. With `keep`, the whole segments stay for a later run to continue."""
        self.sink.discard()
        try:
            self._close()
        except (av.error.FFmpegError, OSError, ValueError):
            pass  # a half-written output is being thrown away
        if not keep:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
