"""The job queue: rows in the `jobs` table, picked up by the transcoding worker pool."""

from __future__ import annotations

from aiohttp import web

from server import events, keys
from server.db import Row


async def enqueue_transcode(app: web.Application, video: Row) -> int:
    """Called when an upload is complete and its bytes are at storage.original_path."""
    db = app[keys.DB]
    config = app[keys.CONFIG]
    async with db.transaction() as conn:
        await conn.execute("UPDATE videos SET status = 'uploaded', updated_at ="
                           " strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?", (video["id"],))
        cursor = await conn.execute(
            "INSERT INTO jobs(video_id, kind, max_attempts) VALUES (?, 'transcode', ?)",
            (video["id"], config.job_max_attempts),
        )
    job_id = cursor.lastrowid
    assert job_id is not None
    await events.upload_completed(app, video["owner_id"], video["public_id"])
    return job_id
