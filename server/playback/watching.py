"""Resume positions and view counting.

A view is counted once per viewer per video per hour, and only after the viewer has
watched 10 seconds in that hour (the sum of the watched time the player reports). When
the player does not say how long it watched, the advance of the position is taken.
Either way a report vouches for no more than the wall-clock time since the same viewer's
previous report, and a first report for none: a view takes ten
real seconds of one viewer, so a client that drops its cookie on every request, or
claims an hour at once, cannot inflate the count.
"""

from __future__ import annotations

import time

from server.db import Database

VIEW_AFTER_SECONDS = 10.0
VIEW_WINDOW_SECONDS = 3600.0
MAX_REPORT_GAP = 120.0  # a report this late does not vouch for the time in between


async def resume_position(db: Database, video_key: int, viewer: str) -> float | None:
    value = await db.fetch_value(
        "SELECT position FROM watch_positions WHERE video_id = ? AND viewer = ?",
        (video_key, viewer))
    return None if value is None else float(value)


async def record_progress(
    db: Database, video_key: int, viewer: str, position: float, watched: float | None,
    duration: float | None, now: float | None = None,
) -> bool:
    """Saves the position; returns True when this report counted a new view."""
    now = time.time() if now is None else now
    if duration:
        position = min(position, duration)
    async with db.transaction() as conn:
        async with conn.execute(
            "SELECT position, updated_at FROM watch_positions WHERE video_id = ? AND viewer = ?",
            (video_key, viewer)) as cursor:
            previous = await cursor.fetchone()
        vouched = 0.0
        if previous is not None:
            elapsed = now - float(previous["updated_at"])
            vouched = min(elapsed, MAX_REPORT_GAP) if elapsed > 0 else 0.0
            if watched is None:
                watched = position - float(previous["position"])
        watched = min(max(watched or 0.0, 0.0), vouched)
        await conn.execute(
            "INSERT INTO watch_positions(video_id, viewer, position, updated_at)"
            " VALUES (?,?,?,?) ON CONFLICT(video_id, viewer)"
            " DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at",
            (video_key, viewer, position, now))
        async with conn.execute(
            "SELECT window_start, watched, counted FROM view_windows"
            " WHERE video_id = ? AND viewer = ?", (video_key, viewer)) as cursor:
            window = await cursor.fetchone()
        if window is None or now - float(window["window_start"]) >= VIEW_WINDOW_SECONDS:
            start, total, counted = now, 0.0, False
        else:
            start, total = float(window["window_start"]), float(window["watched"])
            counted = bool(window["counted"])
        total += watched
        newly = not counted and total >= VIEW_AFTER_SECONDS
        await conn.execute(
            "INSERT INTO view_windows(video_id, viewer, window_start, watched, counted)"
            " VALUES (?,?,?,?,?) ON CONFLICT(video_id, viewer) DO UPDATE SET"
            " window_start = excluded.window_start, watched = excluded.watched,"
            " counted = excluded.counted",
            (video_key, viewer, start, total, int(counted or newly)))
        if newly:
            await conn.execute("UPDATE videos SET views = views + 1 WHERE id = ?", (video_key,))
    return newly
