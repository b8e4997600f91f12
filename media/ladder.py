"""Choose the renditions for a source: never upscale, remux the top rung when possible."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .probe import ProbeResult, VideoInfo


@dataclass(frozen=True)
class Rung:
    short_side: int
    max_kbps: int
    max_fps: float


DEFAULT_RUNGS: tuple[Rung, ...] = (
    Rung(2160, 16000, 60),
    Rung(1440, 10000, 60),
    Rung(1080, 6000, 60),
    Rung(720, 3000, 60),
    Rung(480, 1500, 30),
    Rung(360, 800, 30),
    Rung(240, 400, 30),
)


@dataclass(frozen=True)
class LadderSettings:
    rungs: tuple[Rung, ...] = DEFAULT_RUNGS
    enabled: frozenset[int] | None = None  # short sides to keep; None keeps all
    preset: str = "veryfast"
    crf: int = 23
    segment_target: float = 6.0
    # Longest segment that source keyframes may give a copied rung: the target duration
    # Apple's authoring spec asks for; a source whose keyframes are further apart is encoded.
    max_remux_segment: float = 6.0
    keyframe_interval: float = 2.0  # an IDR at least this often in encoded rungs (Apple: 2 s)
    audio_kbps: int = 128
    allow_remux: bool = True
    max_duration: float | None = None
    max_short_side: int | None = None


@dataclass(frozen=True)
class VideoRendition:
    name: str  # "1080p"
    width: int
    height: int
    fps: float
    max_kbps: int
    profile: str  # libx264 profile
    level: str  # "4.0"
    copy: bool = False  # stream copy of the source's video packets


@dataclass(frozen=True)
class AudioRendition:
    name: str = "audio"
    codec: str = "aac"
    channels: int = 2
    sample_rate: int = 48000
    kbps: int = 128


@dataclass(frozen=True)
class Ladder:
    video: tuple[VideoRendition, ...]  # top rung first
    audio: AudioRendition | None
    boundaries: tuple[float, ...]  # segment start instants shared by every rendition
    duration: float
    remux_top: bool
    source: ProbeResult
    settings: LadderSettings = field(default_factory=LadderSettings)

    @property
    def keyframes(self) -> tuple[float, ...]:
        """Where the encoded rungs put their IDR frames: every boundary, and within each
        segment at equal steps no longer than `keyframe_interval` (a 6 s segment: 0, 2, 4)."""
        return idr_instants(self.boundaries, self.duration, self.settings.keyframe_interval)

    def last_keyframes(self) -> tuple[float, ...]:
        """For each segment, the instant of its last IDR (where its last fragment starts)."""
        ends = [*self.boundaries[1:], max(self.duration, self.boundaries[-1])]
        keys = self.keyframes
        return tuple(max(k for k in keys if start - 1e-6 <= k < end - 1e-6) if end > start
                     else start for start, end in zip(self.boundaries, ends, strict=True))


def idr_instants(boundaries: tuple[float, ...], duration: float, interval: float
                 ) -> tuple[float, ...]:
    ends = [*boundaries[1:], max(duration, boundaries[-1] if boundaries else 0.0)]
    out: list[float] = []
    for start, end in zip(boundaries, ends, strict=True):
        steps = max(1, math.ceil((end - start) / interval - 1e-6)) if interval > 0 else 1
        out += [round(start + (end - start) * k / steps, 6) for k in range(steps)]
    return tuple(out)


# H.264 Annex A table A-1: level -> (MaxMBPS, MaxFS, MaxBR in kbit/s for Baseline/Main).
_LEVELS: tuple[tuple[str, int, int, int], ...] = (
    ("3.0", 40500, 1620, 10000),
    ("3.1", 108000, 3600, 14000),
    ("3.2", 216000, 5120, 20000),
    ("4.0", 245760, 8192, 20000),
    ("4.1", 245760, 8192, 50000),
    ("4.2", 522240, 8704, 50000),
    ("5.0", 589824, 22080, 135000),
    ("5.1", 983040, 36864, 240000),
    ("5.2", 2073600, 36864, 240000),
)
_COMMON_RATES = (23.976, 24.0, 25.0, 29.97, 30.0, 48.0, 50.0, 59.94, 60.0)


def h264_level(width: int, height: int, fps: float, kbps: int) -> str:
    """Smallest level (3.0 at least, which every TV decodes) that fits size, rate and bitrate."""
    mbs = math.ceil(width / 16) * math.ceil(height / 16)
    for name, max_mbps, max_fs, max_br in _LEVELS:
        # High profile allows 1.25 x MaxBR (table A-2, cpbBrVclFactor 1250).
        if mbs <= max_fs and mbs * fps <= max_mbps and kbps <= max_br * 1.25:
            return name
    return "5.2"


def snap_rate(fps: float) -> float:
    nearest = min(_COMMON_RATES, key=lambda rate: abs(fps - rate))
    if abs(fps - nearest) / nearest < 0.015:
        return nearest
    return float(round(fps)) if fps >= 1 else 1.0


def rung_rate(source_fps: float, max_fps: float) -> float:
    fps = snap_rate(source_fps)
    while fps > max_fps + 0.01:
        fps /= 2  # halve, so that every other frame is kept and motion stays even
    return round(fps, 3)


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def _size_for(video: VideoInfo, short: int) -> tuple[int, int]:
    w, h = video.display_width, video.display_height
    if w >= h:
        return _even(w * short / h), _even(short)
    return _even(short), _even(h * short / w)


def remux_possible(video: VideoInfo, top: Rung, settings: LadderSettings) -> bool:
    return (
        settings.allow_remux
        and video.codec == "h264"
        and video.bit_depth == 8
        and video.pix_fmt in ("yuv420p", "yuvj420p")
        and (video.profile or "").lower() in ("baseline", "constrained baseline", "main", "high")
        and video.bit_rate is not None
        and video.bit_rate <= top.max_kbps * 1000
        and video.rotation == 0
        and not video.interlaced
        and not video.variable_frame_rate
        and not video.hdr
        and video.width % 2 == 0
        and video.height % 2 == 0
    )


def keyframe_boundaries(
    keyframes: tuple[float, ...], duration: float, target: float, longest: float
) -> tuple[float, ...] | None:
    """Pick source keyframes as segment starts, each segment as near `target` as they allow.

    None when two chosen keyframes (or the last one and the end) are more than `longest` apart.
    """
    chosen = [0.0]
    candidates = [k for k in keyframes if k > 0.05]
    while duration - chosen[-1] > longest:
        reach = [k for k in candidates if chosen[-1] < k <= chosen[-1] + longest]
        if not reach:
            return None
        chosen.append(min(reach, key=lambda k: abs(k - chosen[-1] - target)))
    if not keyframes or keyframes[0] > 0.05:
        return None  # the first frame is not a keyframe: no clean start
    rest = [k for k in candidates if k > chosen[-1] + target * 0.5 and duration - k > target * 0.5]
    if rest and duration - chosen[-1] > target * 1.5:
        chosen.append(min(rest, key=lambda k: abs(k - chosen[-1] - target)))
    return tuple(chosen)


def fixed_boundaries(duration: float, target: float) -> tuple[float, ...]:
    count = max(1, math.ceil(duration / target - 1e-6))
    return tuple(round(i * target, 6) for i in range(count))


def choose_ladder(probe: ProbeResult, settings: LadderSettings | None = None) -> Ladder:
    settings = settings or LadderSettings()
    audio = AudioRendition(kbps=settings.audio_kbps) if probe.audio is not None else None
    video = probe.video
    if video is None:
        bounds = fixed_boundaries(probe.duration, settings.segment_target)
        return Ladder((), audio, bounds, probe.duration, False, probe, settings)
    rungs = [
        r for r in settings.rungs if settings.enabled is None or r.short_side in settings.enabled
    ]
    rungs.sort(key=lambda r: r.short_side, reverse=True)
    source_short = min(video.display_width, video.display_height)
    fitting = [r for r in rungs if r.short_side <= source_short]
    renditions: list[VideoRendition] = []
    if not fitting:
        # Smaller than the lowest rung: one rendition at the source's own size, made even.
        base = min(rungs, key=lambda r: r.short_side) if rungs else DEFAULT_RUNGS[-1]
        fitting = [Rung(source_short - source_short % 2, base.max_kbps, base.max_fps)]
    for rung in fitting:
        if rung.short_side == source_short - source_short % 2:
            width = video.display_width - video.display_width % 2
            height = video.display_height - video.display_height % 2
        else:
            width, height = _size_for(video, rung.short_side)
        fps = rung_rate(video.frame_rate, rung.max_fps)
        level = h264_level(width, height, fps, rung.max_kbps)
        renditions.append(
            VideoRendition(f"{rung.short_side}p", width, height, fps, rung.max_kbps, "high", level)
        )
    top = fitting[0]
    same_size = (renditions[0].width, renditions[0].height) == (video.width, video.height)
    same_rate = abs(renditions[0].fps - snap_rate(video.frame_rate)) < 0.01
    keyed: tuple[float, ...] | None = None
    # MP4 and Matroska carry the avcC record that an fMP4 copy needs (ISO 14496-15).
    container_ok = "mp4" in probe.format_name or "matroska" in probe.format_name
    if same_size and same_rate and container_ok and remux_possible(video, top, settings):
        keyed = keyframe_boundaries(
            video.keyframes, probe.duration, settings.segment_target, settings.max_remux_segment
        )
    if keyed is None:
        bounds = fixed_boundaries(probe.duration, settings.segment_target)
        return Ladder(tuple(renditions), audio, bounds, probe.duration, False, probe, settings)
    first = renditions[0]
    renditions[0] = VideoRendition(
        first.name,
        video.width,
        video.height,
        first.fps,
        first.max_kbps,
        (video.profile or "high").lower(),
        first.level,
        copy=True,
    )
    return Ladder(tuple(renditions), audio, keyed, probe.duration, True, probe, settings)
