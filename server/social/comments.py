"""Threaded comments on videos.

Top-level comments list newest first; the replies under one comment list oldest first
(a conversation reads downwards). Deleting a comment that has replies keeps a
"[deleted]" placeholder so the thread still makes sense; a placeholder whose last reply
goes is removed with it.
"""

from __future__ import annotations

from typing import Any

import aiosqlite

from server.db import Database, Row
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed, field_error
from server.social.paging import PageRequest, page_json
from server.videos import can_manage
from server.viewer import Viewer

MAX_LENGTH = 10_000
PLACEHOLDER = "[deleted]"
_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
_SELECT = ("SELECT c.*, u.username, u.display_name FROM comments c"
           " LEFT JOIN users u ON u.id = c.author_id")


def clean_body(text: str) -> str:
    body = text.strip()
    if not body:
        raise ValidationFailed([field_error("body", "must not be empty")])
    if len(body) > MAX_LENGTH:
        raise ValidationFailed([field_error("body", f"must be at most {MAX_LENGTH} characters")])
    if "\x00" in body:
        raise ValidationFailed([field_error("body", "contains characters that are not allowed")])
    return body


def comment_json(row: Row, video: Row, viewer: Viewer | None) -> dict[str, Any]:
    deleted = bool(row["deleted"])
    mine = viewer is not None and row["author_id"] == viewer.user_id
    return {
        "id": row["id"],
        "video_id": video["public_id"],
        "parent_id": row["parent_id"],
        "author": None if deleted or row["username"] is None else {
            "username": row["username"], "display_name": row["display_name"]},
        "body": PLACEHOLDER if deleted else row["body"],
        "deleted": deleted,
        "reply_count": row["reply_count"],
        "created_at": row["created_at"],
        "edited_at": row["edited_at"],
        "can_edit": mine and not deleted,
        "can_delete": not deleted and (mine or can_manage(viewer, video)),
    }


async def get_comment(db: Database, video: Row, comment_id: int) -> Row:
    row = await db.fetch_one(_SELECT + " WHERE c.id = ? AND c.video_id = ?",
                             (comment_id, video["id"]))
    if row is None:
        raise NotFound(f"no comment {comment_id} on this video")
    return row


async def post(db: Database, video: Row, author_id: int, text: str,
               parent_id: int | None) -> tuple[Row, Row | None]:
    """Returns the new comment and the parent it answers (if any)."""
    if not video["comments_enabled"]:
        raise Forbidden("comments are turned off for this video", slug="comments-disabled")
    body = clean_body(text)
    parent = None
    if parent_id is not None:
        parent = await get_comment(db, video, parent_id)
        if parent["deleted"]:
            raise Conflict("that comment was deleted; it cannot be answered",
                           slug="comment-deleted")
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "INSERT INTO comments(video_id, author_id, parent_id, body) VALUES (?, ?, ?, ?)",
            (video["id"], author_id, parent_id, body))
        if parent_id is not None:
            await conn.execute("UPDATE comments SET reply_count = reply_count + 1 WHERE id = ?",
                               (parent_id,))
    assert cursor.lastrowid is not None
    return await get_comment(db, video, cursor.lastrowid), parent


async def listing(db: Database, video: Row, parent_id: int | None,
                  page: PageRequest) -> list[Row]:
    if parent_id is None:
        where, order, op = "c.video_id = ? AND c.parent_id IS NULL", "DESC", "<"
        params: list[Any] = [video["id"]]
    else:
        await get_comment(db, video, parent_id)
        where, order, op = "c.video_id = ? AND c.parent_id = ?", "ASC", ">"
        params = [video["id"], parent_id]
    if page.after is not None:
        where += f" AND c.id {op} ?"
        params.append(page.after[0])
    return await db.fetch_all(_SELECT + f" WHERE {where} ORDER BY c.id {order} LIMIT ?",
                              [*params, page.limit + 1])


def listing_json(rows: list[Row], video: Row, viewer: Viewer | None,
                 page: PageRequest) -> dict[str, Any]:
    return page_json([comment_json(r, video, viewer) for r in rows[:page.limit]], rows,
                     page.limit, lambda r: [r["id"]])


async def edit(db: Database, video: Row, comment: Row, viewer: Viewer, text: str) -> Row:
    if comment["author_id"] != viewer.user_id:
        raise Forbidden("only the author may edit a comment")
    if comment["deleted"]:
        raise Conflict("a deleted comment cannot be edited", slug="comment-deleted")
    await db.write(f"UPDATE comments SET body = ?, edited_at = {_NOW} WHERE id = ?",
                   (clean_body(text), comment["id"]))
    return await get_comment(db, video, comment["id"])


async def delete(db: Database, video: Row, comment: Row, viewer: Viewer) -> None:
    """The author, the video's owner or an administrator may delete a comment."""
    if comment["author_id"] != viewer.user_id and not can_manage(viewer, video):
        raise Forbidden("only the author, the video's owner or an administrator may delete "
                        "this comment")
    if comment["deleted"]:
        raise NotFound(f"comment {comment['id']} is already deleted")
    async with db.transaction() as conn:
        if comment["reply_count"] > 0:
            await conn.execute("UPDATE comments SET deleted = 1, body = '' WHERE id = ?",
                               (comment["id"],))
            return
        await _remove(conn, comment["id"], comment["parent_id"])


async def _remove(conn: aiosqlite.Connection, comment_id: int, parent_id: int | None) -> None:
    await conn.execute("DELETE FROM comments WHERE id = ?", (comment_id,))
    while parent_id is not None:
        async with conn.execute(
            "UPDATE comments SET reply_count = reply_count - 1 WHERE id = ?"
            " RETURNING reply_count, deleted, parent_id", (parent_id,),
        ) as cursor:
            parent = await cursor.fetchone()
        # A placeholder that no longer holds a reply has nothing left to show.
        if parent is None or not (parent["deleted"] and parent["reply_count"] == 0):
            return
        await conn.execute("DELETE FROM comments WHERE id = ?", (parent_id,))
        parent_id = parent["parent_id"]
