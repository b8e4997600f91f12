"""Free disk space for processing: the floor (`min_free_disk_bytes`) that uploads keep is
kept by transcodes too. No job starts while the floor is not met, and a running job
stops when free space falls below it (media.errors.OutOfSpace), to be retried later.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path

from server.config import Config
from server.db import Database
from server.workers import queue


@dataclass(frozen=True)
class DiskSpace:
    free: int  # bytes
    total: int
    floor: int  # free bytes always kept (min_free_disk_bytes)

    @property
    def floor_met(self) -> bool:
        # Strictly above: with a floor of 0, a disk with nothing free is not enough either.
        return self.free > self.floor


def _media_disk(config: Config) -> Path:
    for directory in (config.media_dir, config.data_dir):
        if directory.is_dir():
            return directory
    return Path(".")


def measure(config: Config) -> DiskSpace:
    """Blocking (statvfs)."""
    usage = shutil.disk_usage(_media_disk(config))
    return DiskSpace(usage.free, usage.total, config.min_free_disk_bytes)


async def disk_space(config: Config) -> DiskSpace:
    return await asyncio.to_thread(measure, config)


def describe(space: DiskSpace) -> str:
    return (f"{space.free / (1 << 20):.1f} MiB free, "
            f"{space.floor / (1 << 20):.1f} MiB kept free")


async def storage_report(config: Config, db: Database) -> dict[str, int | bool]:
    """For the admin page: the disk that holds the media, and what waits for room on it."""
    disk = await disk_space(config)
    return {"free_bytes": disk.free, "total_bytes": disk.total,
            "min_free_disk_bytes": disk.floor, "floor_met": disk.floor_met,
            "jobs_waiting_for_space": await queue.waiting_for_space(db)}
