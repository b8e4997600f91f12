"""Size limits: the largest upload, per-user total and daily quotas (as PeerTube counts
them: the sizes of the user's videos plus the declared lengths of unfinished uploads) and
the free disk space that must always remain.
"""

from __future__ import annotations

import asyncio

from server.config import Config
from server.db import Database
from server.errors import InsufficientStorage, PayloadTooLarge
from server.uploads import store

_VIDEOS = ("SELECT COALESCE(SUM(size), 0) FROM videos WHERE owner_id = ? AND status != 'failed'")
# Finals are left out: their length is the sum of partials already counted.
_UPLOADS = ("SELECT COALESCE(SUM(COALESCE(length, 0)), 0) FROM uploads WHERE owner_id = ?"
            " AND state = 'receiving' AND (concat IS NULL OR concat = 'partial')")
_DAY_AGO = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 day')"


def _mib(count: int) -> str:
    return f"{count / (1 << 20):.1f} MiB"


async def used_bytes(db: Database, owner_id: int, *, daily: bool) -> int:
    videos_sql, uploads_sql = _VIDEOS, _UPLOADS
    if daily:
        videos_sql += f" AND created_at >= {_DAY_AGO}"
        uploads_sql += " AND created_at >= unixepoch('now', '-1 day')"
    used = await db.fetch_value(f"SELECT ({videos_sql}) + ({uploads_sql})", (owner_id, owner_id))
    return int(used or 0)


async def remaining_quota(db: Database, config: Config, owner_id: int) -> int | None:
    """Bytes the user may still add, or None when no quota is set."""
    remaining: list[int] = []
    if config.user_quota_bytes > 0:
        remaining.append(config.user_quota_bytes - await used_bytes(db, owner_id, daily=False))
    if config.user_daily_quota_bytes > 0:
        remaining.append(config.user_daily_quota_bytes
                         - await used_bytes(db, owner_id, daily=True))
    return max(0, min(remaining)) if remaining else None


def check_max_size(config: Config, length: int) -> None:
    if length > config.max_upload_bytes:
        raise PayloadTooLarge(
            f"the upload is {length} bytes; the largest accepted is {config.max_upload_bytes}",
            headers={"Tus-Max-Size": str(config.max_upload_bytes)},
        )


async def check_quota(db: Database, config: Config, owner_id: int, extra: int) -> None:
    """Refuse `extra` more bytes for this user when that would exceed a quota."""
    left = await remaining_quota(db, config, owner_id)
    if left is not None and extra > left:
        raise PayloadTooLarge(
            f"this upload needs {_mib(extra)} but your quota leaves {_mib(left)}",
            slug="quota-exceeded",
        )


def disk_problem(free: int, incoming: int, reserve: int) -> InsufficientStorage | None:
    """507 (RFC 4918 section 11.5) when storing `incoming` bytes would eat the reserve."""
    if free - incoming >= reserve:
        return None
    return InsufficientStorage(
        f"the server is short of disk space ({_mib(free)} free, {_mib(incoming)} needed, "
        f"{_mib(reserve)} kept in reserve); try again later")


async def check_free_disk(config: Config, incoming: int) -> None:
    free = await asyncio.to_thread(store.free_bytes, config.uploads_dir)
    problem = disk_problem(free, incoming, config.min_free_disk_bytes)
    if problem is not None:
        raise problem
