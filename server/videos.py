"""Videos: creation, lookup, who may see them, and their JSON form.

Privacy (PeerTube's meaning): public videos are listed and playable by anyone; unlisted
ones are playable by anyone who has the id but never listed; private ones only by their
owner and administrators. Anyone else gets a 404, so a private id cannot be probed.
"""

from __future__ import annotations

import json
from typing import Any

from server.db import Database, Row
from server.errors import Forbidden, NotFound
from server.identity import Viewer
from server.ids import new_public_id

PRIVACY = ("public", "unlisted", "private")
STATUSES = ("uploading", "uploaded", "processing", "ready", "failed")


async def create_video(
    db: Database,
    owner_id: int,
    channel_id: int,
    title: str,
    *,
    description: str = "",
    privacy: str = "public",
    size: int = 0,
    original_filename: str = "",
    original_mime: str = "",
    status: str = "uploading",
) -> Row:
    public_id = new_public_id()
    await db.write(
        "INSERT INTO videos(public_id, owner_id, channel_id, title, description, privacy,"
        " status, size, original_filename, original_mime) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (public_id, owner_id, channel_id, title, description, privacy, status, size,
         original_filename, original_mime),
    )
    return await get_video(db, public_id)


async def get_video(db: Database, public_id: str) -> Row:
    row = await db.fetch_one("SELECT * FROM videos WHERE public_id = ?", (public_id,))
    if row is None:
        raise NotFound(f"no video '{public_id}'")
    return row


async def get_video_by_key(db: Database, video_id: int) -> Row:
    row = await db.fetch_one("SELECT * FROM videos WHERE id = ?", (video_id,))
    if row is None:
        raise NotFound("no such video")
    return row


def can_view(viewer: Viewer | None, video: Row) -> bool:
    if video["privacy"] in ("public", "unlisted"):
        return True
    return viewer is not None and (viewer.user_id == video["owner_id"] or viewer.is_admin)


def can_manage(viewer: Viewer | None, video: Row) -> bool:
    return viewer is not None and (viewer.user_id == video["owner_id"] or viewer.is_admin)


async def visible_video(db: Database, public_id: str, viewer: Viewer | None) -> Row:
    row = await get_video(db, public_id)
    if not can_view(viewer, row):
        raise NotFound(f"no video '{public_id}'")
    return row


async def managed_video(db: Database, public_id: str, viewer: Viewer | None) -> Row:
    row = await visible_video(db, public_id, viewer)
    if not can_manage(viewer, row):
        raise Forbidden("only the video's owner or an administrator may do this")
    return row


async def resolve_upload_channel(db: Database, user_id: int, wanted: str | None) -> Row:
    """The channel named by id or handle (it must be the user's), else their default one."""
    if wanted:
        row = await db.fetch_one(
            "SELECT * FROM channels WHERE (public_id = ? OR handle = ?) AND owner_id = ?",
            (wanted, wanted, user_id),
        )
        if row is None:
            raise NotFound(f"you have no channel '{wanted}'")
        return row
    row = await db.fetch_one(
        "SELECT * FROM channels WHERE owner_id = ? ORDER BY is_default DESC, id LIMIT 1",
        (user_id,),
    )
    if row is None:
        raise NotFound("you have no channel to upload to")
    return row


async def video_json(db: Database, video: Row, viewer: Viewer | None) -> dict[str, Any]:
    channel = await db.fetch_one(
        "SELECT public_id, handle, display_name FROM channels WHERE id = ?",
        (video["channel_id"],),
    )
    owner = await db.fetch_one("SELECT username FROM users WHERE id = ?", (video["owner_id"],))
    return {
        "id": video["public_id"],
        "title": video["title"],
        "description": video["description"],
        "privacy": video["privacy"],
        "status": video["status"],
        "error": video["error"],
        "duration": video["duration"],
        "size": video["size"],
        "bytes_received": video["bytes_received"],
        "width": video["width"],
        "height": video["height"],
        "views": video["views"],
        "likes": video["likes"],
        "dislikes": video["dislikes"],
        "comments_enabled": bool(video["comments_enabled"]),
        "allow_download": bool(video["allow_download"]),
        "created_at": video["created_at"],
        "published_at": video["published_at"],
        "owner": owner["username"] if owner else None,
        "channel": {
            "id": channel["public_id"], "handle": channel["handle"],
            "display_name": channel["display_name"],
        } if channel else None,
        "progress": json.loads(video["progress"]) if video["progress"] else None,
        "can_manage": can_manage(viewer, video),
    }
