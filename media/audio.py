"""Audio encoded once, and the small decode helpers both passes use."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av.error
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.packet import Packet
from av.video.frame import VideoFrame

from .outputs import RenditionOutput
from .probe import ProbeResult


class AudioEncoder:
    """Decode the source audio, resample to stereo AAC rate and encode once, from t=0."""

    def __init__(
        self, inp: InputContainer, probe: ProbeResult, out: RenditionOutput, origin: float
    ) -> None:
        assert probe.audio is not None
        self.input: AudioStream = inp.streams.audio[ordinal(inp, probe.audio.index)]
        self.rate = (
            48000 if probe.audio.sample_rate not in (44100, 48000) else probe.audio.sample_rate
        )
        stream = out.container.add_stream("aac", rate=self.rate)
        stream.layout = "stereo"
        stream.bit_rate = 128_000
        stream.codec_context.open()
        # Writing the header fills the stream's codec parameters (AudioSpecificConfig),
        # which outputs created from this stream as a template copy.
        out.container.start_encoding()
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
