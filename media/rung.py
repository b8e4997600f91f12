"""One encoded rung: scaled and encoded on its own thread, fed by the single decode loop.

PyAV releases the GIL in swscale and in the encoder calls, so with one thread per
rung the rungs' scaling and encoding overlap each other and the decode, and libx264
runs frame threads (as the ffmpeg CLI does) instead of PyAV's default slice threads,
which kept the whole encode pass near one core.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence

from av.audio.stream import AudioStream
from av.video.frame import VideoFrame

from .frames import RungFrames, rate_fraction
from .hls import RenditionInfo
from .ladder import LadderSettings, VideoRendition
from .outputs import AAC_LC, RenditionOutput, StoredPacket, avc1_codec

# Decoded frames a rung may hold before the decode loop waits for it: enough to ride
# over the encoder's uneven pace, few enough to keep memory small (3 MB per 1080p frame).
QUEUE_FRAMES = 6
WAIT_SECONDS = 0.1

_Item = tuple[VideoFrame, float] | None


class EncodedRung:
    def __init__(
        self,
        out: RenditionOutput,
        rendition: VideoRendition,
        settings: LadderSettings,
        keyframes: Sequence[float],
        *,
        hdr: bool,
        audio_template: AudioStream | None,
        first_slot: int = 0,
    ) -> None:
        """`first_slot` is where a continued rendition goes on: the first frame its whole
        segments lack. The audio to mux comes with `give_audio`, before the first frame."""
        self.out, self.rendition = out, rendition
        self.audio: Sequence[StoredPacket] = ()
        stream = out.container.add_stream(
            "libx264", rate=rate_fraction(rendition.fps), options=x264_options(settings, rendition)
        )
        stream.width, stream.height, stream.pix_fmt = rendition.width, rendition.height, "yuv420p"
        ctx = stream.codec_context
        ctx.time_base = 1 / rate_fraction(rendition.fps)
        # Frame threads (thread_count 0: x264 picks by core count); forced IDR frames
        # still land exactly where asked, since x264's lookahead honours them.
        ctx.thread_type = "FRAME"
        ctx.thread_count = 0
        if hdr:
            ctx.color_primaries = ctx.color_trc = ctx.colorspace = 1  # BT.709
        self.stream = stream
        out.video = stream
        self.has_audio = audio_template is not None
        if audio_template is not None:
            out.add_audio_template(audio_template)
        # The header now: a continued rendition learns whether its init segment still fits.
        self.init_ok = out.start()
        self.audio_next = 0
        self.frames = RungFrames(
            rendition.width, rendition.height, rendition.fps, keyframes, self._encode,
            first_slot,
        )
        self.queue: queue.Queue[_Item] = queue.Queue(QUEUE_FRAMES)
        self.error: BaseException | None = None
        self.result: RenditionInfo | None = None
        self.end = 0.0
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name=f"rung {rendition.name}", daemon=True)
        self.thread.start()

    @property
    def name(self) -> str:
        return self.rendition.name

    # -- called from the decode loop ---------------------------------------------------
    def give_audio(self, audio: Sequence[StoredPacket], start: int) -> None:
        """The encoded audio, of which this rendition's segments lack `audio[start:]`."""
        self.audio, self.audio_next = audio, start

    def feed(self, frame: VideoFrame, t: float) -> None:
        self._put((frame, t))

    def close(self, end: float) -> None:
        """No more frames: the thread flushes the encoder and finishes the output."""
        self.end = end
        self._put(None)

    def done(self, timeout: float) -> bool:
        self.thread.join(timeout)
        if self.error is not None:
            raise self.error
        return not self.thread.is_alive()

    def stop(self) -> None:
        """Abandon the rung (cancel or failure elsewhere); its output is aborted after this."""
        self.stopping = True
        while self.thread.is_alive():
            try:
                self.queue.put(None, timeout=WAIT_SECONDS)
            except queue.Full:
                continue
            self.thread.join(WAIT_SECONDS)

    def _put(self, item: _Item) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.queue.put(item, timeout=WAIT_SECONDS)
                return
            except queue.Full:
                continue

    # -- the rung's thread -----------------------------------------------------------------
    def _run(self) -> None:
        try:
            while (item := self.queue.get()) is not None:
                if not self.stopping:
                    frame, t = item
                    self.frames.feed(frame, t)
                    self._pump_audio(t)
            if not self.stopping:
                self.result = self._finish()
        except BaseException as exc:  # handed to the decode loop, which raises it
            self.error = exc

    def _encode(self, frame: VideoFrame | None) -> None:
        self.out.mux(self.stream.encode(frame))

    def _pump_audio(self, until: float) -> None:
        # Audio packets go in about half a second ahead of the video they play with.
        start = self.audio_next
        while self.audio_next < len(self.audio) and self.audio[self.audio_next].time <= until + 0.5:
            self.audio_next += 1
        self.out.mux_stored(self.audio[start : self.audio_next])

    def _finish(self) -> RenditionInfo:
        self.frames.finish(self.end)
        self._encode(None)
        self._pump_audio(float("inf"))
        codecs = avc1_codec(self.stream.codec_context.extradata)
        if self.has_audio:
            codecs += "," + AAC_LC
        r = self.rendition
        return self.out.finish(
            self.frames.slot / float(self.frames.rate),
            "video",
            width=r.width,
            height=r.height,
            frame_rate=r.fps,
            codecs=codecs,
        )


def x264_options(settings: LadderSettings, r: VideoRendition) -> dict[str, str]:
    params = [
        # IDR frames come only where forced: at the segment boundaries and every 2 s
        # between them (Ladder.keyframes).
        "keyint=infinite",
        "scenecut=0",
        "open-gop=0",
        f"vbv-maxrate={r.max_kbps}",
        f"vbv-bufsize={2 * r.max_kbps}",
    ]
    return {
        "preset": settings.preset,
        "profile": r.profile,
        "level": r.level,
        "crf": str(settings.crf),
        "forced-idr": "1",
        "x264-params": ":".join(params),
    }
