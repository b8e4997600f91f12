"""Subscriptions to channels, each with a notification preference (`all` or `none`)."""

from __future__ import annotations

import sqlite3
from typing import Any

from server.db import Database, Row
from server.errors import Conflict, NotFound
from server.social.paging import PageRequest, page_json

NOTIFY = ("all", "none")

_SELECT = (
    "SELECT s.id, s.notify, s.created_at, c.public_id, c.handle, c.display_name,"
    " (SELECT COUNT(*) FROM subscriptions x WHERE x.channel_id = c.id) AS subscriber_count"
    " FROM subscriptions s JOIN channels c ON c.id = s.channel_id"
)


def subscription_json(row: Row) -> dict[str, Any]:
    return {
        "channel": {"id": row["public_id"], "handle": row["handle"],
                    "display_name": row["display_name"],
                    "subscriber_count": row["subscriber_count"]},
        "notify": row["notify"],
        "created_at": row["created_at"],
    }


async def get(db: Database, user_id: int, channel_id: int) -> Row | None:
    return await db.fetch_one(_SELECT + " WHERE s.user_id = ? AND s.channel_id = ?",
                              (user_id, channel_id))


async def subscribe(db: Database, user_id: int, channel: Row,
                    notify: str | None) -> tuple[Row, bool]:
    """Returns the subscription and whether it is new. Re-subscribing keeps the old
    preference unless a new one is given."""
    if channel["owner_id"] == user_id:
        raise Conflict("you cannot subscribe to your own channel", slug="own-channel")
    created = False
    try:
        cursor = await db.write(
            "INSERT INTO subscriptions(user_id, channel_id, notify) VALUES (?, ?, ?)",
            (user_id, channel["id"], notify or "all"))
        created = cursor.rowcount == 1
    except sqlite3.IntegrityError:
        if notify is not None:
            await db.write("UPDATE subscriptions SET notify = ? WHERE user_id = ?"
                           " AND channel_id = ?", (notify, user_id, channel["id"]))
    row = await get(db, user_id, channel["id"])
    assert row is not None
    return row, created


async def set_notify(db: Database, user_id: int, channel: Row, notify: str) -> Row:
    cursor = await db.write(
        "UPDATE subscriptions SET notify = ? WHERE user_id = ? AND channel_id = ?",
        (notify, user_id, channel["id"]))
    if cursor.rowcount == 0:
        raise NotFound(f"you are not subscribed to '{channel['public_id']}'")
    row = await get(db, user_id, channel["id"])
    assert row is not None
    return row


async def unsubscribe(db: Database, user_id: int, channel: Row) -> None:
    cursor = await db.write("DELETE FROM subscriptions WHERE user_id = ? AND channel_id = ?",
                            (user_id, channel["id"]))
    if cursor.rowcount == 0:
        raise NotFound(f"you are not subscribed to '{channel['public_id']}'")


async def listing(db: Database, user_id: int, page: PageRequest) -> dict[str, Any]:
    where, params = "s.user_id = ?", [user_id]
    if page.after is not None:
        where += " AND s.id < ?"
        params.append(page.after[0])
    rows = await db.fetch_all(_SELECT + f" WHERE {where} ORDER BY s.id DESC LIMIT ?",
                              [*params, page.limit + 1])
    return page_json([subscription_json(r) for r in rows], rows, page.limit,
                     lambda r: [r["id"]])
