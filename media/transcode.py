"""Produce every rendition of a ladder: a fast packet pass, then one decode for all rungs.

Pass 1 reads packets only: audio is decoded and encoded to AAC once (the audio-only
rendition, and packets kept for every video rendition), and when the ladder says so
the source's H.264 packets are copied into the top rung, which is then playable
within seconds. Pass 2 decodes each video frame once and feeds every encoded rung;
IDR frames are forced at the ladder's boundaries so that segments line up across
renditions (the HLS authoring spec asks for aligned segments), and every 2 s between
them (its keyframe rule, for seeking and trick play); each starts a fragment.

A run goes on from what a stopped one left (media.resume): finished renditions stay as
they are, and the encode pass seeks the source to the keyframe at or before the first
segment that some rung still lacks; each rung starts at its own first missing segment,
with the same boundaries and a timeline that continues its segments on disk.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import av.error
from av.container import InputContainer
from av.packet import Packet
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from media.layout import VideoLayout

from . import resume
from .audio import AudioEncoder, SharedAudio, decode, frame_time, ordinal
from .errors import MediaError, OutOfSpace, TranscodeCancelled, out_of_space
from .fmp4 import Continuation
from .frames import FrameConsumer, Prefilter, boundary_slot, needs_sdr, rate_fraction
from .hls import RenditionInfo
from .ladder import Ladder, VideoRendition
from .outputs import AAC_LC, RenditionOutput, StoredPacket, avc1_codec
from .probe import ProbeResult
from .rung import EncodedRung
from .thumbnails import seek_feed

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


@dataclass(frozen=True)
class TranscodeResult:
    renditions: tuple[RenditionInfo, ...]
    seconds: float
    pass_seconds: tuple[float, ...] = field(default=())
    frames_decoded: bool = False  # the encode pass ran, so frame consumers saw the video
    resumed_at: float | None = None  # where the encode pass began when it went on from disk


class _Job:
    def __init__(
        self,
        source: Path,
        out_dir: Path,
        ladder: Ladder,
        on_event: Callable[[TranscodeEvent], None],
        should_cancel: Callable[[], bool],
        min_free_bytes: int = 0,
    ) -> None:
        self.source, self.out_dir, self.ladder = source, out_dir, ladder
        self.probe: ProbeResult = ladder.source
        self.on_event, self.should_cancel = on_event, should_cancel
        self.min_free_bytes = min_free_bytes
        video = self.probe.video
        self.origin = (
            video.start_time
            if video
            else (self.probe.audio.start_time if self.probe.audio else 0.0)
        )
        self.encoded = [r for r in ladder.video if not r.copy]
        self.lead = self._lead()
        self.found = resume.inspect(out_dir, ladder, self.lead)
        if self._encodes_audio():
            # New audio packets: what encoded segments hold cannot be continued with them.
            self.found.partial.clear()
        self.pass1_share = 1.0 if not self.encoded else 0.1
        self.percent = {r.name: 0.0 for r in ladder.video}
        if ladder.audio is not None:
            self.percent[ladder.audio.name] = 0.0
        self.open: list[RenditionOutput] = []
        self.done: list[RenditionInfo] = []
        self.audio = SharedAudio(self.probe, VideoLayout(out_dir),
                                 ladder.audio.name if ladder.audio else None)
        self.consumers: Sequence[FrameConsumer] = ()
        self.rungs: list[EncodedRung] = []
        self.resumed_at: float | None = None
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

    # -- what is left to do -------------------------------------------------------------
    def _encodes_audio(self) -> bool:
        """Pass 1 runs when the audio or the copied top rung is not finished; it encodes
        the audio unless the audio rendition is there to read the packets back from."""
        audio = self.ladder.audio
        return audio is not None and audio.name not in self.found.finished

    def _copy_rung(self) -> VideoRendition | None:
        ladder = self.ladder
        top = ladder.video[0] if ladder.remux_top and ladder.video else None
        return top if top is not None and top.name not in self.found.finished else None

    def _pending(self) -> list[VideoRendition]:
        return [r for r in self.encoded if r.name not in self.found.finished]

    def _first_slot(self, rendition: VideoRendition, after: Continuation | None) -> int:
        if after is None:
            return 0
        return boundary_slot(self.ladder.boundaries[len(after.segments)],
                             rate_fraction(rendition.fps))

    def _decode_start(self, starts: Sequence[float]) -> float:
        video = self.probe.video
        return resume.decode_start(video.keyframes if video else (), starts)

    def announce(self) -> None:
        """Progress starts where a stopped run was; the renditions it finished are done."""
        finished = [r for r in [*self.ladder.video, self.ladder.audio]
                    if r is not None and r.name in self.found.finished]
        for rendition in finished:
            self.percent[rendition.name] = 100.0
        fraction = 0.0
        pending = self._pending()
        if not self._encodes_audio() and self._copy_rung() is None and not pending:
            fraction = 1.0  # stopped after the renditions: thumbnails are left
        elif not self._encodes_audio() and self._copy_rung() is None:
            starts = [self._first_slot(r, self.found.partial.get(r.name)) / float(
                rate_fraction(r.fps)) for r in pending]
            start = self._decode_start(starts) / max(self.probe.duration, 0.001)
            for r in pending:
                self.percent[r.name] = round(100 * start, 1)
            fraction = self.pass1_share + (1 - self.pass1_share) * start
        self.on_event(Progress(round(100 * min(fraction, 0.999), 1), dict(self.percent)))
        for rendition in finished:
            self.finished(self.found.finished[rendition.name])

    # -- events ---------------------------------------------------------------------
    def tick(self, names: Sequence[str], fraction: float, pass_no: int) -> None:
        now = time.monotonic()
        if now - self._last_poll >= POLL_SECONDS:
            self._last_poll = now
            if self.should_cancel():
                raise TranscodeCancelled()
            self._check_space()
        if now - self._last_progress >= PROGRESS_SECONDS:
            self._last_progress = now
            for name in names:
                self.percent[name] = round(min(99.9, 100 * fraction), 1)
            share = self.pass1_share
            overall = share * fraction if pass_no == 1 else share + (1 - share) * fraction
            self.on_event(Progress(round(100 * min(overall, 0.999), 1), dict(self.percent)))

    def _check_space(self) -> None:
        if self.min_free_bytes <= 0:
            return
        free = shutil.disk_usage(self.out_dir).free
        if free < self.min_free_bytes:
            raise OutOfSpace(f"free disk space fell below the floor ({free >> 20} MiB free, "
                             f"{self.min_free_bytes >> 20} MiB kept free)")

    def finished(self, info: RenditionInfo) -> None:
        self.percent[info.name] = 100.0
        self.done.append(info)
        self.on_event(RenditionDone(info))

    def open_output(
        self,
        name: str,
        tolerance: float,
        *,
        audio_only: bool = False,
        after: Continuation | None = None,
        last_fragments: Sequence[float] | None = None,
    ) -> RenditionOutput:
        out = RenditionOutput(
            self.out_dir,
            name,
            self.ladder.boundaries,
            tolerance,
            lead=self.lead,
            audio_only=audio_only,
            after=after,
            last_fragments=last_fragments,
        )
        self.open.append(out)
        return out

    def close_output(self, out: RenditionOutput) -> None:
        self.open.remove(out)

    # -- pass 1: packets --------------------------------------------------------------
    def packet_pass(self) -> None:
        copy = self._copy_rung()
        encode_audio = self._encodes_audio()
        if not encode_audio and copy is None:
            return
        if not encode_audio:
            self.audio.template()
            self.audio.load(0)
        with av.open(str(self.source)) as inp:
            audio_out = self.open_output("audio", 0.03, audio_only=True) if encode_audio else None
            encoder = AudioEncoder(inp, self.probe, audio_out, self.origin) if audio_out else None
            if encoder is not None:
                self.audio.encoded_by(encoder)
            top = self._open_copy(inp, copy) if copy else None
            streams = [
                s
                for s in (encoder.input if encoder else None, top[1] if top else None)
                if s is not None
            ]
            names = [n for n in ([copy.name] if copy else []) + (["audio"] if encoder else [])]
            duration = max(self.probe.duration, 0.001)
            pumped = 0  # stored audio muxed into the copy, when it was read back from disk
            for packet in inp.demux(streams):
                if encoder is not None and packet.stream is encoder.input:
                    self._store(encoder.push(packet), audio_out, top[0] if top else None)
                elif top is not None and packet.pts is not None:
                    if encoder is None and packet.time_base is not None:
                        until = float(packet.pts * packet.time_base) - self.origin + 0.5
                        pumped = self.audio.pump(top[0], pumped, until)
                    self._copy_packet(packet, top[0])
                if packet.pts is not None and packet.time_base is not None:
                    self.tick(names, float(packet.pts * packet.time_base) / duration, 1)
            if encoder is not None:
                self._store(encoder.push(None), audio_out, top[0] if top else None)
            elif top is not None:
                self.audio.pump(top[0], pumped, float("inf"))
            if top is not None and copy is not None:
                out, stream = top
                codecs = avc1_codec(stream.codec_context.extradata)
                if self.ladder.audio is not None:
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
        if self.audio.stream is not None:
            out.add_audio_template(self.audio.stream)
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
        self.audio.packets += stored
        if audio_out is not None:
            audio_out.mux(packets)
        if top is not None:
            top.mux_stored(stored)

    # -- pass 2: decode once, encode every rung ---------------------------------------
    def encode_pass(self) -> bool:
        """False when there was nothing to encode (every encoded rung already finished)."""
        video = self.probe.video
        pending = self._pending()
        if not pending or video is None:
            return False
        self.audio.template()
        self.rungs = [self._open_rung(r, needs_sdr(video)) for r in pending]
        self._hand_audio()
        starts = [rung.frames.slot / float(rung.frames.rate) for rung in self.rungs]
        start = self._decode_start(starts)
        if start > 0:
            self.resumed_at = start
            for consumer in self.consumers:  # what the decode from `start` will not show them
                seek_feed(self.source, video, consumer, consumer.missing(start))
        names = [r.name for r in pending]
        duration = max(self.probe.duration, 0.001)
        last = self._decode(start, names, duration)
        end = last + 1 / max(video.frame_rate, 1.0)
        for rung in self.rungs:
            rung.close(end)
        waiting = list(self.rungs)
        while waiting:  # publish each rendition as soon as its thread has finished it
            for rung in list(waiting):
                if rung.done(POLL_SECONDS / len(waiting)):
                    waiting.remove(rung)
                    self.close_output(rung.out)
                    assert rung.result is not None
                    self.finished(rung.result)
            self.tick(names, 1.0, 2)
        return True

    def _decode(self, start: float, names: Sequence[str], duration: float) -> float:
        """Feed every rung (and consumer) the frames from `start`, a keyframe instant; from
        the beginning instead when seeking there lands after it. Returns the last frame time."""
        video = self.probe.video
        assert video is not None
        prefilter = Prefilter(video)
        last = start
        with av.open(str(self.source)) as inp:
            stream = inp.streams.video[ordinal(inp, video.index)]
            # Frame and slice threads in the decoder, as the ffmpeg CLI has by default.
            stream.thread_type = "AUTO"
            if start > 0 and stream.time_base is not None:
                inp.seek(int((self.origin + start) / stream.time_base), stream=stream,
                         backward=True)
            checked = start <= 0
            for packet in inp.demux(stream):
                for frame in decode(packet):
                    t = frame_time(frame) - self.origin
                    if not checked:
                        checked = True
                        if t > start + 0.5 / max(video.frame_rate, 1.0):
                            return self._decode(0.0, names, duration)
                    if t < start - 1e-3:
                        continue  # shown before the keyframe: not decodable from it
                    for shaped in prefilter(frame):
                        last = max(last, self._feed(shaped))
                        self.tick(names, last / duration, 2)
            for shaped in prefilter(None):
                last = max(last, self._feed(shaped))
        return last

    def _open_rung(self, rendition: VideoRendition, hdr: bool) -> EncodedRung:
        after = self.found.partial.get(rendition.name)
        rung = self._rung(rendition, hdr, after)
        if after is not None and not rung.init_ok:
            # Another encoder build: its segments would not decode with the old init segment.
            rung.stop()
            self.close_output(rung.out)
            rung.out.abort()
            del self.found.partial[rendition.name]
            rung = self._rung(rendition, hdr, None)
        return rung

    def _rung(self, rendition: VideoRendition, hdr: bool, after: Continuation | None
              ) -> EncodedRung:
        out = self.open_output(rendition.name, 0.5 / rendition.fps, after=after,
                               last_fragments=self.ladder.last_keyframes())
        return EncodedRung(
            out,
            rendition,
            self.ladder.settings,
            self.ladder.keyframes,
            hdr=hdr,
            audio_template=self.audio.stream,
            first_slot=self._first_slot(rendition, after),
        )

    def _hand_audio(self) -> None:
        """Each rung muxes the stored audio from the first packet its segments lack."""
        if self.ladder.audio is None:
            return
        firsts = {}
        for rung in self.rungs:
            after = self.found.partial.get(rung.name)
            firsts[rung.name] = after.samples.get(b"soun", 0) if after else 0
        self.audio.load(min(firsts.values(), default=0))
        base = self.audio.first or 0
        for rung in self.rungs:
            rung.give_audio(self.audio.packets, firsts[rung.name] - base)

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
    min_free_bytes: int = 0,
) -> TranscodeResult:
    """Raises MediaError, TranscodeCancelled or OutOfSpace (partial outputs removed); on
    any other error the whole segments written so far stay for the next run."""
    out = Path(out_dir)
    VideoLayout(out).hls.mkdir(parents=True, exist_ok=True)
    job = _Job(Path(source_path), out, ladder, on_event, should_cancel, min_free_bytes)
    job.consumers = frame_consumers
    started = time.monotonic()
    try:
        job.announce()
        job.packet_pass()
        middle = time.monotonic()
        encoded = job.encode_pass()
    except TranscodeCancelled:
        _abort(job)
        raise
    except BaseException as exc:
        full = out_of_space(exc)
        if full is not None:
            _abort(job)
            raise full from exc
        if isinstance(exc, av.error.FFmpegError):
            _abort(job)
            raise MediaError(f"transcoding failed: {exc}") from exc
        _abort(job, keep=True)
        raise
    finally:
        job.audio.close()
    ended = time.monotonic()
    on_event(Progress(100.0, {name: 100.0 for name in job.percent}))
    order = {r.name: i for i, r in enumerate(ladder.video)}
    infos = sorted(job.done, key=lambda i: order.get(i.name, len(order)))
    return TranscodeResult(
        tuple(infos),
        round(ended - started, 3),
        (round(middle - started, 3), round(ended - middle, 3)),
        frames_decoded=encoded,
        resumed_at=job.resumed_at,
    )


def _abort(job: _Job, *, keep: bool = False) -> None:
    """With `keep`, the whole segments of encoded rungs stay for the next run."""
    job.stop_rungs()  # their threads write to the outputs about to be aborted
    for out in list(job.open):
        out.abort(keep=keep and out.name in {r.name for r in job.encoded})
    job.open.clear()
    if not keep:
        for partial in VideoLayout(job.out_dir).hls.glob(".*.partial"):
            shutil.rmtree(partial, ignore_errors=True)
