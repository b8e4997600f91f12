"""Videos: creation, lookup, who may see them, and their JSON form.

Privacy (PeerTube's meaning): public videos are listed and playable by anyone; unlisted
ones are playable by anyone who has the id but never listed; private ones only by their
owner and administrators. Anyone else gets a 404, so a private id cannot be probed.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import quote

from server.db import Database, Row
from server.errors import BadRequest, Forbidden, NotFound
from server.ids import new_public_id
from server.viewer import Viewer

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


GENERATION_PARAM = "g"


def _media_url(public_id: str, tail: str, grant: str | None, generation: int) -> str:
    """A generation past the first is named in the query (media/layout.py: a video
    processed again has new URLs, so no cache serves an old file for a new one)."""
    query = [f"{GENERATION_PARAM}={generation}"] if generation else []
    if grant:
        query.append(f"sig={quote(grant, safe='')}")
    url = f"/api/videos/{public_id}/{tail}"
    return f"{url}?{'&'.join(query)}" if query else url


async def media_links(
    db: Database, video: Row, viewer: Viewer | None, grant: str | None
) -> dict[str, Any]:
    """Every way to play the video; URLs carry the viewer's media grant when given."""
    public_id, generation = video["public_id"], video["generation"]

    def url(tail: str) -> str:
        return _media_url(public_id, tail, grant, generation)

    rows = await db.fetch_all(
        "SELECT name, kind, width, height FROM renditions WHERE video_id = ?"
        " ORDER BY kind DESC, height DESC, name", (video["id"],))
    playable = bool(rows)
    progressive = [
        {"name": r["name"], "url": url(f"progressive/{r['name']}.mp4"),
         "width": r["width"], "height": r["height"]}
        for r in rows if r["kind"] == "video"
    ]
    offer_original = video["status"] != "uploading" and (
        bool(video["allow_download"]) or can_manage(viewer, video))
    # The pipeline makes thumbnails after the renditions, for sources with a picture.
    has_thumbs = video["status"] == "ready" and any(r["kind"] == "video" for r in rows)
    return {
        "streams": {
            "hls": url("hls/master.m3u8") if playable else None,
            "hls_ts": url("hls-ts/master.m3u8") if playable else None,
            "progressive": progressive,
            # The original is the same file in every generation.
            "original": _media_url(public_id, "original", grant, 0) if offer_original else None,
        },
        "poster": url("poster.jpg") if has_thumbs else None,
        "storyboard": url("storyboard/storyboard.vtt") if has_thumbs else None,
    }


async def video_json(
    db: Database, video: Row, viewer: Viewer | None, *,
    grant: str | None = None, viewer_key: str | None = None,
) -> dict[str, Any]:
    """`grant` signs the media URLs; `viewer_key` ('u:1', 'anon:x') finds the resume point."""
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
        # The uploaded file's name, as given: its owner's business (it names the download
        # of the original too, for whoever may have that).
        "original_filename": (video["original_filename"] or None)
        if can_manage(viewer, video) else None,
        # A ready video being processed again (its owner's business too).
        "processing_again": can_manage(viewer, video) and video["status"] == "ready"
        and await _processing_again(db, video["id"]),
        **await media_links(db, video, viewer, grant),
        "resume_position": await _resume(db, video["id"], viewer_key),
    }


async def _processing_again(db: Database, video_key: int) -> bool:
    return await db.fetch_value(
        "SELECT 1 FROM jobs j JOIN videos v ON v.id = j.video_id WHERE j.video_id = ?"
        " AND j.status IN ('queued', 'running') AND j.generation > v.generation",
        (video_key,)) is not None


async def _resume(db: Database, video_key: int, viewer_key: str | None) -> float | None:
    if viewer_key is None or viewer_key == "anon":
        return None
    value = await db.fetch_value(
        "SELECT position FROM watch_positions WHERE video_id = ? AND viewer = ?",
        (video_key, viewer_key))
    return None if value is None else float(value)


def _encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise BadRequest("the cursor is not one this server gave out") from exc
    kinds = (str, int) if sort == "newest" else (int, int)
    if (not isinstance(values, list) or len(values) != 2
            or not all(isinstance(v, k) for v, k in zip(values, kinds, strict=True))):
        raise BadRequest("the cursor is not one this server gave out")
    return values


async def list_videos(
    db: Database, viewer: Viewer | None, *, channel: str | None, sort: str,
    cursor: str | None, limit: int,
) -> tuple[list[Row], str | None]:
    """Public, ready videos; a channel's owner also sees all of that channel's videos.
    Keyset pagination on (created_at, id) or (views, id), newest or most viewed first."""
    where, params = ["1 = 1"], []  # type: list[str], list[Any]
    visible = "(v.privacy = 'public' AND v.status = 'ready')"
    if channel is not None:
        row = await db.fetch_one(
            "SELECT id, owner_id FROM channels WHERE public_id = ? OR handle = ?",
            (channel, channel))
        if row is None:
            raise NotFound(f"no channel '{channel}'")
        where.append("v.channel_id = ?")
        params.append(row["id"])
        if viewer is not None and viewer.user_id == row["owner_id"]:
            visible = "1 = 1"
    where.append(visible)
    column = "v.created_at" if sort == "newest" else "v.views"
    if cursor:
        after = _decode_cursor(cursor, sort)
        where.append(f"({column} < ? OR ({column} = ? AND v.id < ?))")
        params += [after[0], after[0], after[1]]
    rows = await db.fetch_all(
        f"SELECT v.* FROM videos v WHERE {' AND '.join(where)}"
        f" ORDER BY {column} DESC, v.id DESC LIMIT ?", (*params, limit + 1))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        key = last["created_at"] if sort == "newest" else last["views"]
        next_cursor = _encode_cursor([key, last["id"]])
    return rows, next_cursor


EDITABLE = ("title", "description", "privacy", "comments_enabled", "allow_download")


async def update_video(db: Database, video: Row, changes: dict[str, Any]) -> Row:
    fields = [k for k in EDITABLE if k in changes]
    if fields:
        values = [int(changes[k]) if isinstance(changes[k], bool) else changes[k]
                  for k in fields]
        assignments = ", ".join(f"{k} = ?" for k in fields)
        await db.write(
            f"UPDATE videos SET {assignments},"
            " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?",
            (*values, video["id"]))
    return await get_video_by_key(db, video["id"])


async def delete_video(db: Database, video: Row) -> None:
    """The row goes (renditions, jobs, positions cascade); the caller removes the files."""
    await db.write("DELETE FROM videos WHERE id = ?", (video["id"],))
