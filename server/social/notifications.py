"""Notifications: written to SQLite first, then published, so nothing is lost while away.

Each kind follows one switch in the user's preferences (`preferences.notifications`);
the check happens inside the INSERT, so a notification a user turned off is never stored.
"""

from __future__ import annotations

import json
from typing import Any

import aiosqlite

from server.db import Database, Row
from server.errors import NotFound
from server.social.paging import PageRequest, page_json

KINDS = ("new_video", "video_processed", "video_failed", "comment", "reply", "subscriber")
# Which preference switch governs each kind (server.accounts.DEFAULT_PREFERENCES).
PREFERENCE = {"new_video": "new_video", "video_processed": "video_processed",
              "video_failed": "video_processed", "comment": "comment", "reply": "reply",
              "subscriber": "subscriber"}
RESUME_BATCH = 200

_WANTS = ("COALESCE(json_extract(u.preferences, '$.notifications.' || :pref), 1) != 0"
          " AND u.disabled = 0")


def notification_json(row: Row) -> dict[str, Any]:
    return {"id": row["id"], "kind": row["kind"], "read": bool(row["is_read"]),
            "created_at": row["created_at"], "data": json.loads(row["data"])}


def live_json(row: Row, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "kind": kind, "read": False, "created_at": row["created_at"],
            "data": data}


async def create(db: Database, user_id: int, kind: str, data: dict[str, Any],
                 video_id: int | None = None) -> dict[str, Any] | None:
    """Stores one notification unless the user turned that kind off; returns its JSON."""
    rows = await db.write_returning(
        "INSERT INTO notifications(user_id, kind, video_id, data)"
        " SELECT u.id, :kind, :video, :data FROM users u WHERE u.id = :user AND " + _WANTS +
        " RETURNING id, created_at",
        {"user": user_id, "kind": kind, "video": video_id, "data": json.dumps(data),
         "pref": PREFERENCE[kind]},
    )
    return live_json(rows[0], kind, data) if rows else None


async def create_for_subscribers(conn: aiosqlite.Connection, channel_id: int, video_id: int,
                                 data: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """`new_video` for every subscriber asking for it, in ONE statement (a channel with
    10,000 subscribers costs one INSERT ... SELECT, not 10,000 round trips)."""
    async with conn.execute(
        "INSERT INTO notifications(user_id, kind, video_id, data)"
        " SELECT s.user_id, 'new_video', :video, :data FROM subscriptions s"
        " JOIN users u ON u.id = s.user_id"
        " WHERE s.channel_id = :channel AND s.notify = 'all' AND " + _WANTS +
        " RETURNING id, user_id, created_at",
        {"channel": channel_id, "video": video_id, "data": json.dumps(data),
         "pref": "new_video"},
    ) as cursor:
        rows = await cursor.fetchall()
    return [(row["user_id"], live_json(row, "new_video", data)) for row in rows]


async def unread_count(db: Database, user_id: int) -> int:
    value = await db.fetch_value(
        "SELECT COUNT(*) FROM notifications WHERE user_id = ? AND is_read = 0", (user_id,))
    return int(value or 0)


async def inbox(db: Database, user_id: int, page: PageRequest) -> dict[str, Any]:
    """Unread first, newest first within each group; the cursor is (is_read, id)."""
    where, params = "user_id = :user", {"user": user_id, "limit": page.limit + 1}
    if page.after is not None:
        where += (" AND (is_read > :read OR (is_read = :read AND id < :id))")
        params.update(read=page.after[0], id=page.after[1])
    rows = await db.fetch_all(
        f"SELECT * FROM notifications WHERE {where} ORDER BY is_read, id DESC LIMIT :limit",
        params)
    body = page_json([notification_json(r) for r in rows], rows, page.limit,
                     lambda r: [r["is_read"], r["id"]])
    body["unread_count"] = await unread_count(db, user_id)
    return body


async def since(db: Database, user_id: int, last_id: int) -> list[Row]:
    """Notifications newer than `last_id`, oldest first (a reconnecting client's backlog)."""
    return await db.fetch_all(
        "SELECT * FROM notifications WHERE user_id = ? AND id > ? ORDER BY id LIMIT ?",
        (user_id, last_id, RESUME_BATCH))


async def mark_read(db: Database, user_id: int, notification_id: int) -> Row:
    rows = await db.write_returning(
        "UPDATE notifications SET is_read = 1, read_at = COALESCE(read_at,"
        " strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) WHERE id = ? AND user_id = ? RETURNING *",
        (notification_id, user_id))
    if not rows:
        raise NotFound(f"no notification {notification_id}")
    return rows[0]


async def mark_all_read(db: Database, user_id: int) -> int:
    cursor = await db.write(
        "UPDATE notifications SET is_read = 1, read_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
        " WHERE user_id = ? AND is_read = 0", (user_id,))
    return cursor.rowcount
