"""Likes and dislikes: one rating per user and video, totals kept on the video row."""

from __future__ import annotations

from typing import Any

from server.db import Database, Row

RATINGS = ("like", "dislike", "none")
_VALUE = {"like": 1, "dislike": -1, "none": 0}
_NAME = {1: "like", -1: "dislike", 0: "none"}


async def get_rating(db: Database, video: Row, user_id: int | None) -> dict[str, Any]:
    value = 0
    if user_id is not None:
        value = int(await db.fetch_value(
            "SELECT rating FROM video_ratings WHERE user_id = ? AND video_id = ?",
            (user_id, video["id"])) or 0)
    counts = await db.fetch_one("SELECT likes, dislikes FROM videos WHERE id = ?",
                                (video["id"],))
    assert counts is not None
    return {"rating": _NAME[value], "likes": counts["likes"], "dislikes": counts["dislikes"]}


async def set_rating(db: Database, video: Row, user_id: int, rating: str) -> dict[str, Any]:
    new = _VALUE[rating]
    async with db.transaction() as conn:
        async with conn.execute(
            "SELECT rating FROM video_ratings WHERE user_id = ? AND video_id = ?",
            (user_id, video["id"]),
        ) as cursor:
            found = await cursor.fetchone()
        old = int(found[0]) if found else 0
        if new == 0:
            await conn.execute("DELETE FROM video_ratings WHERE user_id = ? AND video_id = ?",
                               (user_id, video["id"]))
        else:
            await conn.execute(
                "INSERT INTO video_ratings(user_id, video_id, rating) VALUES (?, ?, ?)"
                " ON CONFLICT(user_id, video_id) DO UPDATE SET rating = excluded.rating",
                (user_id, video["id"], new))
        # Counters move by the difference, inside the same transaction as the rating row.
        async with conn.execute(
            "UPDATE videos SET likes = likes + ?, dislikes = dislikes + ? WHERE id = ?"
            " RETURNING likes, dislikes",
            ((new == 1) - (old == 1), (new == -1) - (old == -1), video["id"]),
        ) as cursor:
            counts = await cursor.fetchone()
    assert counts is not None
    return {"rating": rating, "likes": counts[0], "dislikes": counts[1]}
