"""The progressive MP4 of each rendition (media/progressive.py) as parts to send, cached:
working it out reads the init and every segment's `moof` boxes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from media import progressive
from server.playback.files import FilePart, Part
from server.playback.ranges import Validators

UNSETTLED_SECONDS = 5.0  # layouts of renditions still being written are re-read this often
SETTLED_SECONDS = 3600.0


@dataclass(frozen=True)
class Layout:
    parts: tuple[Part, ...]
    validators: Validators
    duration: float


def build_layout(directory: Path, duration: float) -> Layout:
    """Blocking: run in a thread."""
    built = progressive.build(directory, duration)
    parts: list[Part] = [built.head]
    parts += [FilePart(str(path), 0, size) for path, size in built.segments]
    return Layout(tuple(parts), Validators(f'"p-{built.tag}"', built.modified_ns // 10**9),
                  duration)


class LayoutCache:
    def __init__(self) -> None:
        self._layouts: dict[str, tuple[float, Layout]] = {}

    async def get(self, directory: str, duration: Callable[[], Awaitable[float]],
                  settled: bool) -> Layout:
        """`duration` (a database look-up) is only awaited when the layout is built."""
        now = time.monotonic()
        hit = self._layouts.get(directory)
        if hit is not None and hit[0] > now:
            return hit[1]
        seconds = await duration()
        layout = await asyncio.to_thread(build_layout, Path(directory), seconds)
        if len(self._layouts) > 1024:
            self._layouts.clear()
        expires = now + (SETTLED_SECONDS if settled else UNSETTLED_SECONDS)
        self._layouts[directory] = (expires, layout)
        return layout

    def forget(self, prefix: str) -> None:
        prefix = prefix.rstrip("/") + "/"
        for key in [k for k in self._layouts if k.startswith(prefix)]:
            del self._layouts[key]
