"""Simulated HLS viewers, run in their own process by bench/serve.py (one run per trial).

    python bench/viewers.py --master URL --players N [--watch S] [--ramp S]

Players join evenly over --ramp seconds; each fetches --watch seconds of video (looping the
segments if the video is shorter) and leaves when the last of them is in.

Each player reads the master playlist at URL, loads the media playlist of the rung it
picks (once per rung, as a VOD player does) and that rung's `EXT-X-MAP` init segment, then
fetches segments one after the other at real-time pace. Every URI is resolved against the
URL of the playlist that lists it (RFC 8216 section 4), its query string kept as written.

Pacing: playback starts when segment 0 has arrived (the startup buffer is that one
segment). Segment k is due at its playback instant, deadline(k) = deadline(k-1) + D(k-1);
it is requested once segment k-1 has arrived, but not before deadline(k-1), so a player
holds at most one segment ahead and each segment has the length of the previous one to
arrive (a rung switch's playlist and init segment included). A segment not fully in by
its deadline is a stall; so is a failed request, or a startup (master, playlist, init,
segment 0) longer than STARTUP_LIMIT. The segments loop when the video ends. The first
stall stops the trial.

Rungs: like hls.js, the player starts from a 500 kbit/s estimate, keeps the slower of a
fast (3 s) and a slow (9 s) exponentially weighted average of measured segment throughput
(weighted by the seconds of video each segment holds), moves up only to a rung whose
BANDWIDTH fits in 0.7 of the estimate and stays on one that fits in 0.95. Only variants
with a picture (RESOLUTION) are chosen.

Prints one JSON object: players, stalls, segments and bytes fetched, segments per rung,
fetch times, and this process's CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin

import aiohttp
from yarl import URL

STARTUP_LIMIT = 10.0
DEFAULT_ESTIMATE = 500_000.0
_ATTR = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


@dataclass(frozen=True)
class Variant:
    url: str
    bandwidth: int


@dataclass(frozen=True)
class MediaPlaylist:
    init: str | None
    segments: tuple[tuple[float, str], ...]  # (duration, absolute URL)


@dataclass
class Tally:
    stalls: int = 0
    first_stall: str = ""
    segments: int = 0
    bytes: int = 0
    per_rung: dict[int, int] = field(default_factory=dict)
    fetch_times: list[float] = field(default_factory=list)
    slack: list[float] = field(default_factory=list)  # deadline minus arrival
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def stall(self, why: str) -> None:
        self.stalls += 1
        if not self.first_stall:
            self.first_stall = why
        self.stop.set()


def attributes(line: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in _ATTR.findall(line.partition(":")[2])}


def parse_master(text: str, base: str) -> list[Variant]:
    """Variants with a picture, lowest bandwidth first."""
    out: list[Variant] = []
    lines = [line.strip() for line in text.splitlines()]
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            attrs = attributes(line)
            uri = next(x for x in lines[i + 1:] if x and not x.startswith("#"))
            if "RESOLUTION" in attrs:
                out.append(Variant(urljoin(base, uri), int(attrs["BANDWIDTH"])))
    if not out:
        raise ValueError("the master playlist lists no video variant")
    return sorted(out, key=lambda v: v.bandwidth)


def parse_media(text: str, base: str) -> MediaPlaylist:
    init: str | None = None
    segments: list[tuple[float, str]] = []
    duration: float | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXT-X-MAP:"):
            init = urljoin(base, attributes(line)["URI"])
        elif line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",", 1)[0])
        elif line and not line.startswith("#") and duration is not None:
            segments.append((duration, urljoin(base, line)))
            duration = None
    if not segments:
        raise ValueError("the media playlist lists no segment")
    return MediaPlaylist(init, tuple(segments))


class Estimate:
    """hls.js's EwmaBandWidthEstimator: the slower of a fast and a slow average."""

    def __init__(self) -> None:
        self.fast = self.slow = DEFAULT_ESTIMATE
        self.weight_fast = self.weight_slow = 0.0

    def sample(self, seconds: float, bits_per_second: float) -> None:
        for half_life, name in ((3.0, "fast"), (9.0, "slow")):
            alpha = 0.5 ** (seconds / half_life)
            setattr(self, name, alpha * getattr(self, name) + (1 - alpha) * bits_per_second)
            setattr(self, f"weight_{name}",
                    alpha * getattr(self, f"weight_{name}") + (1 - alpha))

    def value(self) -> float:
        if self.weight_fast < 0.01:
            return DEFAULT_ESTIMATE
        # Bias-corrected, as hls.js does until enough samples are in.
        return min(self.fast / self.weight_fast, self.slow / self.weight_slow)


def choose(variants: list[Variant], current: int | None, estimate: float) -> int:
    best = 0
    for i, variant in enumerate(variants):
        factor = 0.95 if i == current else 0.7
        if variant.bandwidth <= factor * estimate:
            best = i
    return best


async def get(session: aiohttp.ClientSession, url: str) -> bytes:
    async with session.get(URL(url, encoded=True)) as resp:
        body = await resp.read()
        if resp.status != 200:
            raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status,
                                              message=url)
        return body


async def drain(session: aiohttp.ClientSession, url: str) -> int:
    """GET a segment, reading and discarding its body; returns its size."""
    size = 0
    async with session.get(URL(url, encoded=True)) as resp:
        if resp.status != 200:
            raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status,
                                              message=url)
        async for chunk in resp.content.iter_any():
            size += len(chunk)
    return size


class Player:
    def __init__(self, session: aiohttp.ClientSession, tally: Tally) -> None:
        self.session = session
        self.tally = tally
        self.variants: list[Variant] = []
        self.playlists: dict[int, MediaPlaylist] = {}
        self.estimate = Estimate()
        self.rung: int | None = None

    async def playlist(self, rung: int) -> MediaPlaylist:
        if rung not in self.playlists:
            url = self.variants[rung].url
            media = parse_media((await get(self.session, url)).decode(), url)
            if media.init is not None:
                await drain(self.session, media.init)
            self.playlists[rung] = media
        return self.playlists[rung]

    async def segment(self, index: int) -> float:
        """Fetches segment `index` of the rung the estimate picks; returns its duration."""
        loop = asyncio.get_running_loop()
        self.rung = choose(self.variants, self.rung, self.estimate.value())
        media = await self.playlist(self.rung)
        duration, url = media.segments[index % len(media.segments)]
        started = loop.time()
        size = await drain(self.session, url)
        took = max(loop.time() - started, 1e-6)
        self.estimate.sample(duration, size * 8 / took)
        tally = self.tally
        tally.segments += 1
        tally.bytes += size
        tally.per_rung[self.variants[self.rung].bandwidth] = (
            tally.per_rung.get(self.variants[self.rung].bandwidth, 0) + 1)
        tally.fetch_times.append(took)
        return duration

    async def run(self, master: str, watch: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(STARTUP_LIMIT):
                self.variants = parse_master((await get(self.session, master)).decode(), master)
                first = await self.segment(0)
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            self.tally.stall(f"startup: {exc!r}")
            return
        playing = loop.time()  # playback starts once segment 0 is in
        due, index = playing + first, 1
        previous = playing
        while due - playing < watch - 0.01 and not self.tally.stop.is_set():
            # Requested no earlier than the previous segment's playback instant.
            await asyncio.sleep(max(0.0, previous - loop.time()))
            if self.tally.stop.is_set():
                return
            try:
                async with asyncio.timeout_at(due):
                    duration = await self.segment(index)
            except TimeoutError:
                self.tally.stall(f"segment {index} late")
                return
            except (aiohttp.ClientError, OSError, ValueError) as exc:
                self.tally.stall(f"segment {index}: {exc!r}")
                return
            self.tally.slack.append(due - loop.time())
            previous, due = due, due + duration
            index += 1


async def one_player(master: str, watch: float, delay: float, tally: Tally) -> None:
    await asyncio.sleep(delay)
    if tally.stop.is_set():
        return
    # One connection per viewer, as separate browsers or TVs would have.
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector,
                                     cookie_jar=aiohttp.DummyCookieJar()) as session:
        await Player(session, tally).run(master, watch)


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def trial(master: str, players: int, watch: float, ramp: float) -> dict[str, object]:
    tally = Tally()
    started = time.monotonic()
    await asyncio.gather(*(one_player(master, watch, ramp * i / players, tally)
                           for i in range(players)))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "players": players, "stalls": tally.stalls, "first_stall": tally.first_stall,
        "segments": tally.segments, "bytes": tally.bytes,
        "per_rung": {str(k): v for k, v in sorted(tally.per_rung.items())},
        "fetch_p50": percentile(tally.fetch_times, 0.5),
        "fetch_p99": percentile(tally.fetch_times, 0.99),
        "slack_min": min(tally.slack, default=float("nan")),
        "wall": time.monotonic() - started,
        "cpu": usage.ru_utime + usage.ru_stime,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", required=True, help="master playlist URL, as handed out")
    parser.add_argument("--players", type=int, required=True)
    parser.add_argument("--watch", type=float, default=24.0,
                        help="seconds of video each player fetches")
    parser.add_argument("--ramp", type=float, default=6.0,
                        help="players join evenly over this many seconds")
    args = parser.parse_args()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    result = runner(trial(args.master, args.players, args.watch, args.ramp))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
