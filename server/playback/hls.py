"""HLS playlists as served: the stored fMP4 playlists, or their MPEG-TS flavour, with the
request's query (its generation, the viewer's media grant) carried down to every URI
(RFC 8216 4.3.2.5 `URI=` attributes and plain URI lines), gzip-compressed when the client
accepts it.

Playlists are small and requested often, so each rendered body (and its gzip form) is kept
in memory, checked against the file's modification time at most once a second.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import re
import time
from dataclasses import dataclass

from server.playback.ranges import Validators

CONTENT_TYPE = "application/vnd.apple.mpegurl"
RECHECK_SECONDS = 1.0
MAX_ENTRIES = 2048
_URI_ATTR = re.compile(r'URI="([^"]*)"')
_FMP4_SEGMENT = re.compile(r"^(seg_\d{5})\.m4s$")


@dataclass(frozen=True)
class Rendered:
    body: bytes
    gzipped: bytes
    validators: Validators
    gzip_validators: Validators


def _with_query(uri: str, query: str | None) -> str:
    """`query` is already encoded (`g=2&sig=...`)."""
    if not query:
        return uri
    return f"{uri}{'&' if '?' in uri else '?'}{query}"


def _to_ts(line: str) -> str | None:
    """The TS flavour of one playlist line; None drops it: the fMP4 init map, and the
    I-frame playlists, whose byte ranges point into fMP4 segments."""
    if line.startswith(("#EXT-X-MAP", "#EXT-X-I-FRAME-STREAM-INF")):
        return None
    if line.startswith("#EXT-X-VERSION:"):
        # Without EXT-X-MAP nothing here needs more than version 3 (RFC 8216 section 7),
        # which the older TV players that want TS understand.
        return "#EXT-X-VERSION:3"
    match = _FMP4_SEGMENT.match(line)
    return f"{match.group(1)}.ts" if match else line


def rewrite_vtt(text: str, query: str | None) -> str:
    """Storyboard cues name sprite images (`sprite_000.jpg#xywh=...`): the query goes
    before the fragment."""
    if not query:
        return text
    out = []
    for line in text.splitlines():
        if not line.startswith(("WEBVTT", "NOTE")) and "-->" not in line and line.strip():
            uri, hash_, fragment = line.strip().partition("#")
            line = _with_query(uri, query) + hash_ + fragment
        out.append(line)
    return "\n".join(out) + "\n"


def rewrite(text: str, query: str | None, flavour: str) -> str:
    """flavour: "fmp4" (as stored), "ts" (MPEG-TS segments, no init map) or "vtt"."""
    if flavour == "vtt":
        return rewrite_vtt(text, query)
    ts = flavour == "ts"
    out: list[str] = []
    for line in text.splitlines():
        if ts:
            converted = _to_ts(line)
            if converted is None:
                continue
            line = converted
        if line.startswith("#"):
            line = _URI_ATTR.sub(lambda m: f'URI="{_with_query(m.group(1), query)}"', line)
        elif line.strip():
            line = _with_query(line.strip(), query)
        out.append(line)
    return "\n".join(out) + "\n"


def _read(path: str) -> tuple[int, str]:
    with open(path, encoding="utf-8") as fh:
        mtime = os.fstat(fh.fileno()).st_mtime_ns
        return mtime, fh.read()


def _render(text: str, mtime_ns: int, query: str | None, flavour: str) -> Rendered:
    body = rewrite(text, query, flavour).encode()
    digest = hashlib.blake2b(body, digest_size=12).hexdigest()
    seconds = mtime_ns // 1_000_000_000
    return Rendered(
        body, gzip.compress(body, 6, mtime=0),
        Validators(f'"{digest}"', seconds), Validators(f'"{digest}-gz"', seconds),
    )


class PlaylistCache:
    def __init__(self) -> None:
        self._sources: dict[str, tuple[float, int, str]] = {}
        self._rendered: dict[tuple[str, str, str | None], tuple[int, Rendered]] = {}

    async def _source(self, path: str) -> tuple[int, str]:
        now = time.monotonic()
        hit = self._sources.get(path)
        if hit is not None:
            if hit[0] > now:
                return hit[1], hit[2]
            # One request re-reads; the others meanwhile answer with what was true a moment
            # ago instead of each sending its own read to a thread.
            self._sources[path] = (now + RECHECK_SECONDS, hit[1], hit[2])
        try:
            mtime, text = await asyncio.to_thread(_read, path)  # FileNotFoundError -> 404
        except BaseException:
            self._sources.pop(path, None)
            raise
        if len(self._sources) > MAX_ENTRIES:
            self._sources.clear()
        self._sources[path] = (now + RECHECK_SECONDS, mtime, text)
        return mtime, text

    def fresh(self, path: str, query: str | None, flavour: str) -> Rendered | None:
        """The rendered playlist when nothing needs checking (no await on the hot path)."""
        source = self._sources.get(path)
        if source is None or source[0] <= time.monotonic():
            return None
        hit = self._rendered.get((path, flavour, query))
        return hit[1] if hit is not None and hit[0] == source[1] else None

    async def get(self, path: str, query: str | None, flavour: str) -> Rendered:
        mtime, text = await self._source(path)
        key = (path, flavour, query)
        hit = self._rendered.get(key)
        if hit is not None and hit[0] == mtime:
            return hit[1]
        rendered = _render(text, mtime, query, flavour)
        if len(self._rendered) > MAX_ENTRIES:
            self._rendered.clear()
        self._rendered[key] = (mtime, rendered)
        return rendered

    def forget(self, prefix: str) -> None:
        prefix = prefix.rstrip("/") + "/"
        for path in [k for k in self._sources if k.startswith(prefix)]:
            del self._sources[path]
        for key in [k for k in self._rendered if k[0].startswith(prefix)]:
            del self._rendered[key]
