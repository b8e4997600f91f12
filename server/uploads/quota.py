"""Per-user caps on uploads: the byte quotas (user_quota_bytes, user_daily_quota_bytes) and
how many uploads may be unfinished at once (unfinished_uploads_per_user).

Quotas are counted as PeerTube counts them: the sizes of the user's videos plus the
declared lengths of unfinished uploads, so a declared length holds its room from the
creation on, before a byte is sent. An upload of deferred length holds what it has on
disk. A multipart upload being received has no row: it holds its Content-Length here
(`UserUploads`) while it streams. Administrators have no quota.

An unfinished upload is one that can still go on: receiving and not expired, or a
finished partial waiting for its final (tus concatenation). One whose video was deleted
answers 410 and counts for nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from server.config import Config
from server.db import Database
from server.errors import PayloadTooLarge, TooManyRequests
from server.uploads import store

_OPEN = ("owner_id = ? AND expires_at >= ? AND (video_id IS NOT NULL OR concat = 'partial')"
         " AND (state = 'receiving' OR (state = 'complete' AND concat = 'partial'))")
_VIDEOS = "SELECT COALESCE(SUM(size), 0) FROM videos WHERE owner_id = ? AND status != 'failed'"
# Finals are left out: their length is the sum of partials already counted.
_DECLARED = ("SELECT COALESCE(SUM(length), 0) FROM uploads WHERE " + _OPEN
             + " AND (concat IS NULL OR concat = 'partial')")
_DEFERRED = ("SELECT public_id FROM uploads WHERE " + _OPEN
             + " AND length IS NULL AND (concat IS NULL OR concat = 'partial')")
_COUNT = "SELECT COUNT(*) FROM uploads WHERE " + _OPEN
_VIDEOS_TODAY = " AND created_at >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 day')"
_UPLOADS_TODAY = " AND created_at >= ?"
DAY = 86400.0


@dataclass(eq=False)
class _UserLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


@dataclass(eq=False)
class UserUploads:
    """Per process (in UploadState): each user's multipart uploads being received now,
    with the bytes each holds, and a lock per user so that checking the caps and creating
    an upload are one step."""

    held: dict[int, dict[int, int]] = field(default_factory=dict)
    locks: dict[int, _UserLock] = field(default_factory=dict)
    ids: Iterator[int] = field(default_factory=itertools.count)

    def count(self, user_id: int) -> int:
        return len(self.held.get(user_id, ()))

    def held_bytes(self, user_id: int) -> int:
        return sum(self.held.get(user_id, {}).values())

    def hold(self, user_id: int, size: int) -> int:
        """Count a multipart upload of the user, holding `size` bytes, until `release`."""
        key = next(self.ids)
        self.held.setdefault(user_id, {})[key] = size
        return key

    def release(self, user_id: int, key: int) -> None:
        mine = self.held.get(user_id, {})
        mine.pop(key, None)
        if not mine:
            self.held.pop(user_id, None)

    @asynccontextmanager
    async def creating(self, user_id: int) -> AsyncIterator[None]:
        """Without it, a burst of parallel creations would each pass the checks before any
        of them is recorded (issue 22: 254 uploads in 4 s)."""
        entry = self.locks.setdefault(user_id, _UserLock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if not entry.users:
                self.locks.pop(user_id, None)


async def _is_admin(db: Database, user_id: int) -> bool:
    return bool(await db.fetch_value("SELECT is_admin FROM users WHERE id = ?", (user_id,)))


def _on_disk(config: Config, upload_ids: list[str]) -> int:
    return sum(store.size_on_disk(store.upload_path(config, u)) for u in upload_ids)


async def _used_bytes(db: Database, config: Config, owner_id: int, *, daily: bool) -> int:
    now = time.time()
    videos, declared, deferred = _VIDEOS, _DECLARED, _DEFERRED
    params: tuple[float | int, ...] = (owner_id, now)
    if daily:
        videos += _VIDEOS_TODAY
        declared += _UPLOADS_TODAY
        deferred += _UPLOADS_TODAY
        params += (now - DAY,)
    used = await db.fetch_value(f"SELECT ({videos}) + ({declared})", (owner_id, *params))
    rows = await db.fetch_all(deferred, params)
    growing = await asyncio.to_thread(_on_disk, config, [r["public_id"] for r in rows])
    return int(used or 0) + growing


async def remaining_quota(db: Database, config: Config, owner_id: int, held: int = 0
                          ) -> int | None:
    """Bytes the user may still add, or None when no quota applies. `held`: the bytes of
    the user's multipart uploads being received (UserUploads.held_bytes)."""
    quotas = [(q, daily) for q, daily in ((config.user_quota_bytes, False),
                                          (config.user_daily_quota_bytes, True)) if q > 0]
    if not quotas or await _is_admin(db, owner_id):
        return None
    remaining = [quota - held - await _used_bytes(db, config, owner_id, daily=daily)
                 for quota, daily in quotas]
    return max(0, min(remaining))


def _mib(count: int) -> str:
    return f"{count / (1 << 20):.1f} MiB"


async def check_quota(db: Database, config: Config, owner_id: int, extra: int,
                      held: int = 0) -> None:
    """Refuse `extra` more bytes for this user when that would exceed a quota."""
    left = await remaining_quota(db, config, owner_id, held)
    if left is not None and extra > left:
        raise PayloadTooLarge(
            f"this upload needs {_mib(extra)} but your quota leaves {_mib(left)} "
            "(unfinished uploads count at their declared length)",
            slug="quota-exceeded",
        )


async def unfinished_count(db: Database, owner_id: int) -> int:
    return int(await db.fetch_value(_COUNT, (owner_id, time.time())) or 0)


async def check_unfinished(db: Database, config: Config, users: UserUploads, owner_id: int,
                           replacing: int = 0) -> None:
    """429 (RFC 6585 section 4) when the user already has as many unfinished uploads as
    allowed: finishing or terminating one (tus DELETE) makes room, waiting does not (no
    Retry-After). `replacing`: the partials a new final will join (and so remove), so
    that a user at the limit can still finish a concatenation."""
    limit = config.unfinished_uploads_per_user
    if limit <= 0:
        return
    count = users.count(owner_id) + await unfinished_count(db, owner_id)
    if count - replacing >= limit:
        raise TooManyRequests(
            f"you have {limit} unfinished uploads, the most allowed "
            "(unfinished_uploads_per_user); finish or delete one first",
            slug="too-many-uploads")
