"""I-frame playlists (RFC 8216 sections 4.3.3.6 and 4.3.4.3): one per video rendition, for
trick play and scrubbing previews on Apple TV and iOS, pointing into the stored segments.

Each rendition is muxed with one fragment per keyframe (`frag_keyframe`), so every
keyframe is the first video sample of a fragment: its byte range is the fragment's moof,
the mdat header and the samples up to the end of the keyframe, in one contiguous run of
the segment file. No bytes are stored twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .fragments import fragment_samples, init_tracks, read_fragments
from .hls import IFrameStats, RenditionInfo, target_duration, write_atomic, write_master
from .layout import IFRAME_PLAYLIST, INIT, MEDIA_PLAYLIST, VideoLayout


@dataclass(frozen=True)
class IFrame:
    segment: str  # the segment file's name
    offset: int  # of the fragment's moof in it
    length: int  # through the end of the keyframe's bytes
    duration: float  # until the next keyframe, seconds


def segment_names(playlist: Path) -> list[str]:
    """The segment URIs of a media playlist as stored (plain lines)."""
    lines = playlist.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def find_iframes(layout: VideoLayout, rendition: str) -> list[IFrame]:
    """Every keyframe of a finished rendition, from the moof boxes of its segments."""
    directory = layout.rendition(rendition)
    tracks = init_tracks((directory / INIT).read_bytes())
    video = next((t for t in tracks.values() if t.handler == b"vide"), None)
    if video is None:
        return []
    starts: list[tuple[str, int, int, int]] = []  # segment, offset, length, decode time
    end = 0
    for name in segment_names(directory / MEDIA_PLAYLIST):
        for fragment in read_fragments(directory / name) or []:
            samples = [s for s in fragment_samples(fragment, tracks)
                       if s.track_id == video.track_id]
            if not samples:
                continue
            first = samples[0]
            starts.append((name, fragment.offset, first.offset + first.size - fragment.offset,
                           first.decode))
            end = samples[-1].decode + samples[-1].duration
    frames = []
    for i, (name, offset, length, decode) in enumerate(starts):
        following = starts[i + 1][3] if i + 1 < len(starts) else end
        frames.append(IFrame(name, offset, length, (following - decode) / video.timescale))
    return frames


def iframe_playlist(frames: list[IFrame]) -> str:
    # Version 5: EXT-X-MAP in an I-frames-only playlist (RFC 8216 section 7); BYTERANGE
    # and I-FRAMES-ONLY need 4.
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:5",
        f"#EXT-X-TARGETDURATION:{target_duration([f.duration for f in frames])}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-I-FRAMES-ONLY",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f'#EXT-X-MAP:URI="{INIT}"',
    ]
    for frame in frames:
        lines += [f"#EXTINF:{frame.duration:.5f},",
                  f"#EXT-X-BYTERANGE:{frame.length}@{frame.offset}", frame.segment]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def write_iframe_playlist(layout: VideoLayout, rendition: str) -> IFrameStats | None:
    """Writes hls/<rendition>/iframes.m3u8; None for a rendition without video."""
    frames = find_iframes(layout, rendition)
    if not frames:
        return None
    write_atomic(layout.rendition(rendition) / IFRAME_PLAYLIST, iframe_playlist(frames))
    return stats(frames)


def stats(frames: list[IFrame]) -> IFrameStats:
    total = sum(f.duration for f in frames)
    rates = [f.length * 8 / f.duration for f in frames if f.duration >= 0.5]
    average = int(sum(f.length for f in frames) * 8 / total) if total > 0 else 0
    return IFrameStats(int(max(rates, default=average)), average)


def read_stats(layout: VideoLayout, rendition: str) -> IFrameStats | None:
    """The figures of a written I-frame playlist, for the master; None when there is none."""
    path = layout.rendition(rendition) / IFRAME_PLAYLIST
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    frames, duration = [], 0.0
    for line in lines:
        if line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",", 1)[0])
        elif line.startswith("#EXT-X-BYTERANGE:"):
            length, _, offset = line[17:].partition("@")
            frames.append(IFrame("", int(offset or 0), int(length), duration))
    return stats(frames) if frames else None


def write_master_with_iframes(layout: VideoLayout, renditions: list[RenditionInfo]) -> Path:
    """The master playlist, listing the I-frame playlists of the video renditions (made
    here for a finished rendition that has none yet, such as one a stopped run left)."""
    iframes: dict[str, IFrameStats] = {}
    for info in renditions:
        if info.kind != "video":
            continue
        found = read_stats(layout, info.name) or write_iframe_playlist(layout, info.name)
        if found is not None:
            iframes[info.name] = found
    return write_master(layout.out, renditions, iframes)
