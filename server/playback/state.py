"""Per-process playback state: small caches and the TS remux single-flight table."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from server.playback.access import MediaCaching, VideoCache
from server.playback.files import OpenFiles, file_validators
from server.playback.hls import PlaylistCache
from server.playback.progressive import LayoutCache
from server.playback.ranges import Validators
from server.playback.ts import TsCache

STAT_SECONDS = 2.0


@dataclass(frozen=True)
class FileInfo:
    size: int
    validators: Validators


class StatCache:
    """Media files are written once and renamed into place, so a stat stays true for a
    while; this keeps busy segments from costing a stat(2) per request."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, FileInfo]] = {}

    async def get(self, path: str) -> FileInfo:
        now = time.monotonic()
        hit = self._entries.get(path)
        if hit is not None and hit[0] > now:
            return hit[1]
        st = await asyncio.to_thread(os.stat, path)  # FileNotFoundError -> 404
        if not stat.S_ISREG(st.st_mode):
            raise FileNotFoundError(path)
        info = FileInfo(st.st_size, file_validators(st.st_size, st.st_mtime_ns))
        if len(self._entries) > 20_000:
            self._entries.clear()
        self._entries[path] = (now + STAT_SECONDS, info)
        return info

    def forget(self, prefix: str) -> None:
        prefix = prefix.rstrip("/") + "/"
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]


@dataclass
class PlaybackState:
    caching: MediaCaching
    videos: VideoCache = field(default_factory=VideoCache)
    playlists: PlaylistCache = field(default_factory=PlaylistCache)
    layouts: LayoutCache = field(default_factory=LayoutCache)
    stats: StatCache = field(default_factory=StatCache)
    ts: TsCache = field(default_factory=TsCache)
    files: OpenFiles = field(default_factory=OpenFiles)

    def forget_video(self, public_id: str, directory: Path) -> None:
        """Called when a video changes (privacy) or goes away (files removed)."""
        self.videos.forget(public_id)
        prefix = str(directory)
        self.playlists.forget(prefix)
        self.layouts.forget(prefix)
        self.stats.forget(prefix)
        self.files.forget(prefix)
