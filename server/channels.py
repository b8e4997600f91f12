"""Channels: a user's default one made at registration, more on demand."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from server import storage
from server.db import Database, Row
from server.errors import Conflict, Forbidden, NotFound
from server.ids import new_public_id
from server.playback.state import PlaybackState
from server.services import Services
from server.workers.jobs import stop_processing
from server.workers.pool import WorkerPool


async def get_channel(db: Database, public_id: str) -> Row:
    row = await db.fetch_one(
        "SELECT c.*, u.disabled AS owner_disabled FROM channels c"
        " JOIN users u ON u.id = c.owner_id WHERE c.public_id = ? OR c.handle = ?",
        (public_id, public_id),
    )
    if row is None or row["owner_disabled"]:
        raise NotFound(f"no channel '{public_id}'")
    return row


async def channel_json(db: Database, row: Row) -> dict[str, Any]:
    counts = await db.fetch_one(
        "SELECT (SELECT COUNT(*) FROM videos WHERE channel_id = :id AND privacy = 'public'"
        "        AND status = 'ready') AS videos,"
        " (SELECT COUNT(*) FROM subscriptions WHERE channel_id = :id) AS subscribers",
        {"id": row["id"]},
    )
    owner = await db.fetch_one("SELECT username FROM users WHERE id = ?", (row["owner_id"],))
    return {
        "id": row["public_id"],
        "handle": row["handle"],
        "display_name": row["display_name"],
        "description": row["description"],
        "owner": owner["username"] if owner else None,
        "avatar": None,
        "video_count": counts["videos"] if counts else 0,
        "subscriber_count": counts["subscribers"] if counts else 0,
        "created_at": row["created_at"],
    }


async def create_channel(
    db: Database, owner_id: int, handle: str, display_name: str, description: str
) -> Row:
    public_id = new_public_id()
    try:
        await db.write(
            "INSERT INTO channels(public_id, owner_id, handle, display_name, description)"
            " VALUES (?, ?, ?, ?, ?)",
            (public_id, owner_id, handle, display_name, description),
        )
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"the handle '{handle}' is taken", slug="handle-taken") from exc
    return await get_channel(db, public_id)


async def owned_channel(db: Database, public_id: str, user_id: int, is_admin: bool) -> Row:
    row = await get_channel(db, public_id)
    if row["owner_id"] != user_id and not is_admin:
        raise Forbidden("only the channel's owner may change it")
    return row


async def update_channel(db: Database, row: Row, changes: dict[str, Any]) -> None:
    try:
        async with db.transaction() as conn:
            for column in ("handle", "display_name", "description"):
                if column in changes:
                    # The column name comes from the fixed tuple above, never from the request.
                    await conn.execute(f"UPDATE channels SET {column} = ? WHERE id = ?",
                                       (changes[column], row["id"]))
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"the handle '{changes.get('handle')}' is taken",
                       slug="handle-taken") from exc


async def delete_channel(services: Services, pool: WorkerPool | None,
                         playback: PlaybackState, row: Row) -> None:
    """The channel and its videos go; running transcodes are stopped and media removed."""
    if row["is_default"]:
        raise Conflict("a user's default channel cannot be deleted")
    db = services.db
    doomed = await db.fetch_all(
        "SELECT * FROM videos WHERE channel_id = ? ORDER BY id", (row["id"],))
    for video in doomed:
        await stop_processing(services, pool, video)
    await db.write("DELETE FROM channels WHERE id = ?", (row["id"],))  # videos cascade
    for video in doomed:
        directory = storage.video_dir(services.config, video["public_id"])
        playback.forget_video(video["public_id"], directory)
        await asyncio.to_thread(storage.remove_tree, directory)
