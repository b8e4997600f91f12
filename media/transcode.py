"""Produce every rendition of a ladder: a fast packet pass, then one decode for all rungs.

Pass 1 reads packets only: audio is decoded and encoded to AAC once (the audio-only
rendition, and packets kept for every video rendition), and when the ladder says so
the source's H.264 packets are copied into the top rung, which is then playable
within seconds. Pass 2 decodes each video frame once and feeds every encoded rung;
IDR frames are forced at the ladder's boundaries so that segments line up across
renditions (the HLS authoring spec asks for aligned segments).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import av
import av.error
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.packet import Packet
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from media.layout import VideoLayout

from .audio import AudioEncoder, decode, frame_time, ordinal
from .errors import MediaError, TranscodeCancelled
from .frames import Prefilter, needs_sdr
from .hls import RenditionInfo
from .ladder import Ladder, VideoRendition
from .outputs import AAC_LC, RenditionOutput, StoredPacket, avc1_codec
from .probe import ProbeResult
from .rung import EncodedRung

POLL_SECONDS = 0.25
PROGRESS_SECONDS = 0.5


@dataclass(frozen=True)
class Progress:
    overall: float  # percent of the transcode
    renditions: dict[str, float]  # percent per rendition name


@dataclass(frozen=True)
class RenditionDone:
    info: RenditionInfo


TranscodeEvent = Progress | RenditionDone


class FrameConsumer(Protocol):
    """Also fed the decoded, rotated, SDR frames of the encode pass (thumbnails use it)."""

    def wants(self, t: float) -> bool: ...

    def feed(self, frame: VideoFrame, t: float) -> None: ...


@dataclass(frozen=True)
class TranscodeResult:
    renditions: tuple[RenditionInfo, ...]
    seconds: float
    pass_seconds: tuple[float, ...] = field(default=())
    frames_decoded: bool = False  # the encode pass ran, so frame consumers saw the video


class _Job:
    def __init__(
        self,
        source: Path,
        out_dir: Path,
        ladder: Ladder,
        on_event: Callable[[TranscodeEvent], None],
        should_cancel: Callable[[], bool],
    ) -> None:
        self.source, self.out_dir, self.ladder = source, out_dir, ladder
        self.probe: ProbeResult = ladder.source
        self.on_event, self.should_cancel = on_event, should_cancel
        video = self.probe.video
        self.origin = (
            video.start_time
            if video
            else (self.probe.audio.start_time if self.probe.audio else 0.0)
        )
        self.encoded = [r for r in ladder.video if not r.copy]
        self.lead = self._lead()
        self.pass1_share = 1.0 if not self.encoded else 0.1
        self.percent = {r.name: 0.0 for r in ladder.video}
        if ladder.audio is not None:
            self.percent[ladder.audio.name] = 0.0
        self.open: list[RenditionOutput] = []
        self.done: list[RenditionInfo] = []
        self.stored: list[StoredPacket] = []
        self.audio_template: AudioStream | None = None
        self.consumers: Sequence[FrameConsumer] = ()
        self.rungs: list[EncodedRung] = []
        self._last_poll = self._last_progress = time.monotonic()

    def _lead(self) -> float:
        """When every track's first sample is presented: the longest B-frame reorder delay
        of any video rendition (see media.fmp4), so that all renditions share one timeline."""
        delays = [0.0]
        if self.encoded and self.ladder.settings.preset != "ultrafast":
            # libx264 with B-frames and b-pyramid (every other preset) delays by 2 frames.
            delays.append(max(2 / r.fps for r in self.encoded))
        video = self.probe.video
        if self.ladder.remux_top and video is not None:
            with av.open(str(self.source)) as inp:
                stream = inp.streams.video[ordinal(inp, video.index)]
                for packet in inp.demux(stream):
                    if packet.pts is not None and packet.dts is not None and packet.time_base:
                        delays.append(float((packet.pts - packet.dts) * packet.time_base))
                        break
        return round(max(delays), 6)

    # -- events ---------------------------------------------------------------------
    def tick(self, names: Sequence[str], fraction: float, pass_no: int) -> None:
        now = time.monotonic()
        if now - self._last_poll >= POLL_SECONDS:
            self._last_poll = now
            if self.should_cancel():
                raise TranscodeCancelled()
        if now - self._last_progress >= PROGRESS_SECONDS:
            self._last_progress = now
            for name in names:
                self.percent[name] = round(min(99.9, 100 * fraction), 1)
            share = self.pass1_share
            overall = share * fraction if pass_no == 1 else share + (1 - share) * fraction
            self.on_event(Progress(round(100 * min(overall, 0.999), 1), dict(self.percent)))

    def finished(self, info: RenditionInfo) -> None:
        self.percent[info.name] = 100.0
        self.done.append(info)
        self.on_event(RenditionDone(info))

    def open_output(
        self, name: str, tolerance: float, *, audio_only: bool = False
    ) -> RenditionOutput:
        out = RenditionOutput(
            self.out_dir,
            name,
            self.ladder.boundaries,
            tolerance,
            lead=self.lead,
            audio_only=audio_only,
        )
        self.open.append(out)
        return out

    def close_output(self, out: RenditionOutput) -> None:
        self.open.remove(out)

    # -- pass 1: packets --------------------------------------------------------------
    def packet_pass(self) -> None:
        ladder = self.ladder
        copy = ladder.video[0] if ladder.remux_top and ladder.video else None
        if ladder.audio is None and copy is None:
            return
        with av.open(str(self.source)) as inp:
            audio_out = self.open_output("audio", 0.03, audio_only=True) if ladder.audio else None
            encoder = AudioEncoder(inp, self.probe, audio_out, self.origin) if audio_out else None
            self.audio_template = encoder.stream if encoder else None
            top = self._open_copy(inp, copy) if copy else None
            streams = [
                s
                for s in (encoder.input if encoder else None, top[1] if top else None)
                if s is not None
            ]
            names = [n for n in ([copy.name] if copy else []) + (["audio"] if encoder else [])]
            duration = max(self.probe.duration, 0.001)
            for packet in inp.demux(streams):
                if encoder is not None and packet.stream is encoder.input:
                    self._store(encoder.push(packet), audio_out, top[0] if top else None)
                elif top is not None and packet.pts is not None:
                    self._copy_packet(packet, top[0])
                if packet.pts is not None and packet.time_base is not None:
                    self.tick(names, float(packet.pts * packet.time_base) / duration, 1)
            if encoder is not None:
                self._store(encoder.push(None), audio_out, top[0] if top else None)
            if top is not None and copy is not None:
                out, stream = top
                codecs = avc1_codec(stream.codec_context.extradata)
                if ladder.audio is not None:
                    codecs += "," + AAC_LC
                self.close_output(out)
                self.finished(
                    out.finish(
                        self.probe.duration,
                        "video",
                        width=copy.width,
                        height=copy.height,
                        frame_rate=copy.fps,
                        codecs=codecs,
                        copied=True,
                    )
                )
            if audio_out is not None and encoder is not None:
                end = encoder.samples / encoder.rate
                self.close_output(audio_out)
                self.finished(audio_out.finish(end, "audio"))

    def _open_copy(
        self, inp: InputContainer, rendition: VideoRendition
    ) -> tuple[RenditionOutput, VideoStream]:
        assert self.probe.video is not None
        source = inp.streams.video[ordinal(inp, self.probe.video.index)]
        out = self.open_output(rendition.name, 0.5 / rendition.fps)
        out.video = out.container.add_stream_from_template(source)
        if self.audio_template is not None:
            out.add_audio_template(self.audio_template)
        return out, source

    def _copy_packet(self, packet: Packet[Any], out: RenditionOutput) -> None:
        assert out.video is not None and packet.time_base is not None
        shift = round(self.origin / packet.time_base)
        packet.pts = (packet.pts or 0) - shift
        if packet.dts is not None:
            packet.dts -= shift
        packet.stream = out.video
        out.mux([packet])

    def _store(
        self,
        packets: list[Packet[Any]],
        audio_out: RenditionOutput | None,
        top: RenditionOutput | None,
    ) -> None:
        if not packets:
            return
        stored = [StoredPacket.of(p) for p in packets]
        self.stored += stored
        if audio_out is not None:
            audio_out.mux(packets)
        if top is not None:
            top.mux_stored(stored)

    # -- pass 2: decode once, encode every rung ---------------------------------------
    def encode_pass(self) -> None:
        video = self.probe.video
        if not self.encoded or video is None:
            return
        self.rungs = [self._open_rung(r, needs_sdr(video)) for r in self.encoded]
        prefilter = Prefilter(video)
        names = [r.name for r in self.encoded]
        duration = max(self.probe.duration, 0.001)
        last = 0.0
        with av.open(str(self.source)) as inp:
            stream = inp.streams.video[ordinal(inp, video.index)]
            # Frame and slice threads in the decoder, as the ffmpeg CLI has by default.
            stream.thread_type = "AUTO"
            for packet in inp.demux(stream):
                for frame in decode(packet):
                    for shaped in prefilter(frame):
                        last = max(last, self._feed(shaped))
                        self.tick(names, last / duration, 2)
            for shaped in prefilter(None):
                last = max(last, self._feed(shaped))
        end = last + 1 / max(video.frame_rate, 1.0)
        for rung in self.rungs:
            rung.close(end)
        pending = list(self.rungs)
        while pending:  # publish each rendition as soon as its thread has finished it
            for rung in list(pending):
                if rung.done(POLL_SECONDS / len(pending)):
                    pending.remove(rung)
                    self.close_output(rung.out)
                    assert rung.result is not None
                    self.finished(rung.result)
            self.tick(names, 1.0, 2)

    def _open_rung(self, rendition: VideoRendition, hdr: bool) -> EncodedRung:
        return EncodedRung(
            self.open_output(rendition.name, 0.5 / rendition.fps),
            rendition,
            self.ladder.settings,
            self.ladder.boundaries,
            hdr=hdr,
            audio_template=self.audio_template,
            audio=self.stored,
        )

    def _feed(self, shaped: VideoFrame) -> float:
        t = frame_time(shaped) - self.origin
        for rung in self.rungs:
            rung.feed(shaped, t)
        for consumer in self.consumers:
            if consumer.wants(t):
                consumer.feed(shaped, t)
        return t

    def stop_rungs(self) -> None:
        for rung in self.rungs:
            rung.stop()


def transcode(
    source_path: str | Path,
    out_dir: str | Path,
    ladder: Ladder,
    *,
    on_event: Callable[[TranscodeEvent], None],
    should_cancel: Callable[[], bool],
    frame_consumers: Sequence[FrameConsumer] = (),
) -> TranscodeResult:
    out = Path(out_dir)
    VideoLayout(out).hls.mkdir(parents=True, exist_ok=True)
    job = _Job(Path(source_path), out, ladder, on_event, should_cancel)
    job.consumers = frame_consumers
    started = time.monotonic()
    try:
        job.packet_pass()
        middle = time.monotonic()
        job.encode_pass()
    except TranscodeCancelled:
        _abort(job)
        raise
    except av.error.FFmpegError as exc:
        _abort(job)
        raise MediaError(f"transcoding failed: {exc}") from exc
    except BaseException:
        _abort(job)
        raise
    ended = time.monotonic()
    on_event(Progress(100.0, {name: 100.0 for name in job.percent}))
    order = {r.name: i for i, r in enumerate(ladder.video)}
    infos = sorted(job.done, key=lambda i: order.get(i.name, len(order)))
    return TranscodeResult(
        tuple(infos),
        round(ended - started, 3),
        (round(middle - started, 3), round(ended - middle, 3)),
        frames_decoded=bool(job.encoded) and ladder.source.video is not None,
    )


def _abort(job: _Job) -> None:
    job.stop_rungs()  # their threads write to the outputs about to be aborted
    for out in list(job.open):
        out.abort()
    job.open.clear()
    for partial in VideoLayout(job.out_dir).hls.glob(".*.partial"):
        shutil.rmtree(partial, ignore_errors=True)
