"""Test hooks for benchmarks, refused unless the `test_hooks` setting is on.

`publish_now` does what the pipeline does when a video turns ready (write the status,
then call `events.video_status_changed`), without transcoding anything, so a benchmark
measures the notification path alone.
"""

from __future__ import annotations

from aiohttp import web

from server import events, keys
from server.db import Row
from server.errors import NotFound
from server.ids import utc_now_iso
from server.videos import create_video, get_video, resolve_upload_channel


def check_enabled(app: web.Application) -> None:
    if not app[keys.CONFIG].test_hooks:
        raise NotFound("test hooks are off on this server")


async def publish_now(app: web.Application, user_id: int, title: str) -> Row:
    db = app[keys.DB]
    channel = await resolve_upload_channel(db, user_id, None)
    video = await create_video(db, user_id, channel["id"], title, status="processing")
    await db.write("UPDATE videos SET status = 'ready', published_at = ? WHERE id = ?",
                   (utc_now_iso(), video["id"]))
    await events.video_status_changed(app[keys.SERVICES], user_id, video["public_id"], "ready")
    return await get_video(db, video["public_id"])
