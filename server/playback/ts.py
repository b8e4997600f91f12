"""MPEG-TS segments made on demand (media/ts.py) and kept next to the video: concurrent
first requests for one segment share one remux, and at most MAX_CONCURRENT run at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from media.ts import remux_segment

MAX_CONCURRENT = 2


class TsCache:
    """A remux runs as its own task, so a client that goes away does not cancel it for the
    others."""

    def __init__(self) -> None:
        self._pending: dict[Path, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(MAX_CONCURRENT)
        self.remuxes = 0  # how many remuxes ran, for tests and metrics

    async def ensure(self, init: Path, segment: Path, out: Path) -> None:
        task = self._pending.get(out)
        if task is None:
            if await asyncio.to_thread(out.exists):
                return
            task = self._pending.get(out)  # another request may have started meanwhile
            if task is None:
                task = asyncio.create_task(self._run(init, segment, out))
                self._pending[out] = task
                task.add_done_callback(lambda _t: self._pending.pop(out, None))
        await asyncio.shield(task)

    async def _run(self, init: Path, segment: Path, out: Path) -> None:
        async with self._slots:
            if not await asyncio.to_thread(out.exists):
                self.remuxes += 1
                await asyncio.to_thread(remux_segment, init, segment, out)
