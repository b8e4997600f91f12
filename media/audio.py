"""Audio encoded once, and the small decode helpers both passes use."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av
import av.error
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.packet import Packet
from av.video.frame import VideoFrame

from media.layout import VideoLayout

from .outputs import RenditionOutput, StoredPacket
from .probe import ProbeResult
from .resume import stored_audio


def aac_rate(probe: ProbeResult) -> int:
    rate = probe.audio.sample_rate if probe.audio is not None else 48000
    return rate if rate in (44100, 48000) else 48000


def open_aac(container: OutputContainer, rate: int) -> AudioStream:
    stream = container.add_stream("aac", rate=rate)
    stream.layout = "stereo"
    stream.bit_rate = 128_000
    stream.codec_context.open()
    # Writing the header fills the stream's codec parameters (AudioSpecificConfig),
    # which outputs created from this stream as a template copy.
    container.start_encoding()
    return stream


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)


class AudioTemplate:
    """The AAC stream that a run encoding the audio would hand its outputs as a template,
    for a run that reads the encoded audio back from disk: same parameters, same init
    segments, so that the renditions it continues stay decodable with theirs."""

    def __init__(self, rate: int) -> None:
        options = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
        self.container = av.open(_Discard(), "w", format="mp4", options=options)
        self.stream = open_aac(self.container, rate)

    def close(self) -> None:
        self.container.close()


class SharedAudio:
    """The encoded audio every video rendition muxes too: the packets pass 1 encodes or,
    when the audio rendition was finished by an earlier run, the same packets read back
    from it, from the first one that some rendition still lacks. `stream` is the template
    for the renditions' audio tracks."""

    def __init__(self, probe: ProbeResult, layout: VideoLayout, name: str | None) -> None:
        self.probe, self.layout, self.name = probe, layout, name
        self.packets: list[StoredPacket] = []
        self.first: int | None = None  # index of packets[0] among all, once there are some
        self.stream: AudioStream | None = None
        self.made: AudioTemplate | None = None

    def encoded_by(self, encoder: AudioEncoder) -> None:
        self.stream, self.first = encoder.stream, 0

    def template(self) -> AudioStream | None:
        if self.stream is None and self.name is not None:
            self.made = AudioTemplate(aac_rate(self.probe))
            self.stream = self.made.stream
        return self.stream

    def load(self, first: int) -> None:
        """Read the packets from `first` on back from the finished audio rendition."""
        if self.name is None or (self.first is not None and self.first <= first):
            return
        self.packets = stored_audio(self.layout, self.name, first)
        self.first = first

    def pump(self, out: RenditionOutput, start: int, until: float) -> int:
        """Mux packets[start:] presented up to `until` into `out`; returns the next index."""
        end = start
        while end < len(self.packets) and self.packets[end].time <= until:
            end += 1
        out.mux_stored(self.packets[start:end])
        return end

    def close(self) -> None:
        if self.made is not None:
            self.made.close()


class AudioEncoder:
    """Decode the source audio, resample to stereo AAC rate and encode once, from t=0."""

    def __init__(
        self, inp: InputContainer, probe: ProbeResult, out: RenditionOutput, origin: float
    ) -> None:
        assert probe.audio is not None
        self.input: AudioStream = inp.streams.audio[ordinal(inp, probe.audio.index)]
        self.rate = aac_rate(probe)
        stream = open_aac(out.container, self.rate)
        out.audio = stream
        self.stream = stream
        self.resampler = AudioResampler(
            format="fltp", layout="stereo", rate=self.rate, frame_size=1024
        )
        self.origin = origin
        self.samples = 0
        self.skip = 0
        self.started = False

    def push(self, packet: Packet[Any] | None) -> list[Packet[Any]]:
        frames: list[AudioFrame] = []
        if packet is not None:
            try:
                frames = [f for f in decoded(packet) if isinstance(f, AudioFrame)]
            except av.error.InvalidDataError:
                return []  # a damaged packet: skip its samples
        out: list[Packet[Any]] = []
        for frame in frames:
            out += self._align(frame)
            for chunk in self.resampler.resample(frame):
                if self.skip >= chunk.samples:
                    self.skip -= chunk.samples  # audio that starts before the video's first frame
                    continue
                out += self._encode(chunk)
        if packet is None:
            for chunk in self.resampler.resample(None):
                out += self._encode(chunk)
            out += self.stream.encode(None)
        return out

    def _align(self, frame: AudioFrame) -> list[Packet[Any]]:
        """Pad with silence when the audio starts after the video, so both start at 0."""
        if self.started:
            return []
        self.started = True
        start = (
            float(frame.pts * frame.time_base)
            if frame.pts is not None and frame.time_base
            else self.origin
        ) - self.origin
        blocks = round(start * self.rate / 1024)  # whole AAC frames: within 11 ms
        self.skip = max(0, -blocks) * 1024
        out: list[Packet[Any]] = []
        for _ in range(max(0, blocks)):
            silence = AudioFrame(format="fltp", layout="stereo", samples=1024)
            silence.sample_rate = self.rate
            for plane in silence.planes:
                plane.update(bytes(plane.buffer_size))
            out += self._encode(silence)
        return out

    def _encode(self, frame: AudioFrame) -> list[Packet[Any]]:
        frame.pts = self.samples
        frame.time_base = Fraction(1, self.rate)
        self.samples += frame.samples
        return self.stream.encode(frame)


def decoded(packet: Packet[Any]) -> list[Any]:
    return list(packet.decode())


def decode(packet: Packet[Any]) -> list[VideoFrame]:
    try:
        return [f for f in packet.decode() if isinstance(f, VideoFrame)]
    except av.error.InvalidDataError:
        return []  # a damaged packet: the rung repeats the previous frame


def frame_time(frame: VideoFrame) -> float:
    if frame.pts is None or frame.time_base is None:
        return 0.0
    return float(frame.pts * frame.time_base)


def ordinal(inp: InputContainer, index: int) -> int:
    kind = inp.streams[index].type
    return [s.index for s in inp.streams if s.type == kind].index(index)
