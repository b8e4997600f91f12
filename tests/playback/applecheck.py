"""The Apple HLS authoring rules the project claims, applied mechanically to a ladder as a
client fetches it (over HTTP), each failure named by its rule.

Rules (Apple's "HLS authoring specification for Apple devices", and RFC 8216 where it
says MUST):
  variant-attributes  every variant has BANDWIDTH, AVERAGE-BANDWIDTH, CODECS and
                      CLOSED-CAPTIONS; video variants RESOLUTION and FRAME-RATE too
  audio-only          an audio-only variant is offered when the video has sound
  iframe-playlists    every video variant has an I-frame playlist
  independent         EXT-X-INDEPENDENT-SEGMENTS in every playlist
  version             EXT-X-VERSION is the lowest the playlist needs (RFC 8216 section 7)
  target-duration     no EXTINF, rounded, above EXT-X-TARGETDURATION, and that at most 6 s
  idr-at-start        every segment of a video variant starts with a keyframe
  idr-every-2s        keyframes at most 2 s apart in the video variants
  aligned             the video variants' segments start at the same instants
  from-zero           every variant's first video and audio sample is presented at 0
"""

from __future__ import annotations

import itertools
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import m3u8
from aiohttp import ClientSession

KEYFRAME_SECONDS = 2.0
TARGET_SECONDS = 6
TOLERANCE = 0.05


@dataclass
class Report:
    failures: list[str] = field(default_factory=list)

    def fail(self, rule: str, detail: str) -> None:
        self.failures.append(f"{rule}: {detail}")


def _probe(path: Path, *args: str) -> dict[str, list[dict[str, str]]]:
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", *args, str(path)],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    parsed: dict[str, list[dict[str, str]]] = json.loads(out)
    return parsed


RULES = frozenset({"variant-attributes", "audio-only", "iframe-playlists", "independent",
                   "version", "target-duration", "idr-at-start", "idr-every-2s", "aligned",
                   "from-zero"})


async def check_ladder(master_url: str, work: Path, *, has_audio: bool = True,
                       rules: frozenset[str] = RULES, copied: frozenset[str] = frozenset()
                       ) -> list[str]:
    """The failures, `rule: detail`, of the rules asked for. `copied`: variants whose video
    is the source's own (its keyframes are where the source put them)."""
    report = Report()
    async with ClientSession() as http:
        async with http.get(master_url) as resp:
            text = await resp.text()
        master = m3u8.loads(text, uri=master_url)
        if "#EXT-X-VERSION" in text:
            report.fail("version", "the master needs no EXT-X-VERSION (version 1)")
        if "#EXT-X-INDEPENDENT-SEGMENTS" not in text:
            report.fail("independent", "master")
        video = [p for p in master.playlists if p.stream_info.resolution]
        audio_only = [p for p in master.playlists if not p.stream_info.resolution]
        if has_audio and not audio_only:
            report.fail("audio-only", "no audio-only variant")
        for variant in master.playlists:
            info = variant.stream_info
            needed = {"BANDWIDTH": info.bandwidth, "AVERAGE-BANDWIDTH": info.average_bandwidth,
                      "CODECS": info.codecs, "CLOSED-CAPTIONS": info.closed_captions}
            if info.resolution:
                needed |= {"RESOLUTION": info.resolution, "FRAME-RATE": info.frame_rate}
            for name, value in needed.items():
                if not value:
                    report.fail("variant-attributes", f"{variant.uri} lacks {name}")
        iframe_uris = {p.uri.split("?")[0].split("/")[0] for p in master.iframe_playlists}
        starts: dict[str, list[float]] = {}
        for variant in master.playlists:
            name = variant.uri.split("?")[0].split("/")[0]
            if variant in video and name not in iframe_uris:
                report.fail("iframe-playlists", f"{name} has none")
            async with http.get(variant.absolute_uri) as resp:
                media_text = await resp.text()
            media = m3u8.loads(media_text, uri=variant.absolute_uri)
            if "#EXT-X-INDEPENDENT-SEGMENTS" not in media_text:
                report.fail("independent", name)
            if media.version != 6:
                report.fail("version", f"{name}: {media.version} (fMP4 media playlists need 6)")
            target = media.target_duration or 0
            if target > TARGET_SECONDS:
                report.fail("target-duration", f"{name}: target {target} s")
            for n, segment in enumerate(media.segments):
                if int(segment.duration + 0.5) > target:
                    report.fail("target-duration",
                                f"{name} segment {n}: {segment.duration:.3f} s > {target}")
            joined = work / f"{name}.mp4"
            offsets: list[int] = []
            async with http.get(media.segment_map[0].absolute_uri) as resp:
                data = await resp.read()
            for segment in media.segments:
                offsets.append(len(data))
                async with http.get(segment.absolute_uri) as resp:
                    data += await resp.read()
            joined.write_bytes(data)
            first_times = _probe(joined, "-show_entries", "stream=codec_type,start_time")
            for stream in first_times["streams"]:
                start = float(stream.get("start_time", "0") or 0)
                if abs(start) > 0.001:
                    report.fail("from-zero", f"{name} {stream['codec_type']} starts at {start}")
            if variant not in video:
                continue
            packets = _probe(joined, "-select_streams", "v", "-show_entries",
                             "packet=pts_time,pos,flags")["packets"]
            keys = sorted(float(p["pts_time"]) for p in packets if "K" in p["flags"])
            for a, b in itertools.pairwise(keys):
                if name not in copied and b - a > KEYFRAME_SECONDS + TOLERANCE:
                    report.fail("idr-every-2s", f"{name}: keyframes at {a:.3f} and {b:.3f}")
                    break
            seg_starts = []
            for n, offset in enumerate(offsets):
                end = offsets[n + 1] if n + 1 < len(offsets) else len(data)
                inside = [p for p in packets if offset <= int(p["pos"]) < end]
                if not inside:
                    report.fail("idr-at-start", f"{name} segment {n} has no video")
                    continue
                first = min(inside, key=lambda p: int(p["pos"]))
                if "K" not in first["flags"]:
                    report.fail("idr-at-start", f"{name} segment {n}")
                seg_starts.append(round(min(float(p["pts_time"]) for p in inside), 2))
            starts[name] = seg_starts
        if len({tuple(s) for s in starts.values()}) > 1:
            report.fail("aligned", f"segment starts differ: {starts}")
    return [f for f in report.failures if f.split(":", 1)[0] in rules]
