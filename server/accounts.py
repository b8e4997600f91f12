"""Users, their channels and the instance-wide registration switch."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from server.db import Database, Row
from server.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from server.ids import new_public_id
from server.passwords import hash_password, verify_password

DEFAULT_PREFERENCES: dict[str, Any] = {
    "default_quality": "auto",
    "autoplay": True,
    "notifications": {
        "new_video": True,
        "video_processed": True,
        "comment": True,
        "reply": True,
        "subscriber": True,
    },
}


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


async def registration_open(db: Database, default: bool) -> bool:
    value = await db.fetch_value("SELECT value FROM settings WHERE key = 'open_registration'")
    return default if value is None else value == "1"


async def set_registration_open(db: Database, is_open: bool) -> None:
    await db.write(
        "INSERT INTO settings(key, value) VALUES ('open_registration', ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        ("1" if is_open else "0",),
    )


async def register(
    db: Database, username: str, password: str, email: str | None, open_by_default: bool
) -> int:
    password_hash = await hash_password(password)
    async with db.transaction() as conn:
        async with conn.execute("SELECT COUNT(*) FROM users") as cursor:
            row = await cursor.fetchone()
        first_user = row is not None and row[0] == 0
        if not first_user:
            async with conn.execute(
                "SELECT value FROM settings WHERE key = 'open_registration'"
            ) as cursor:
                setting = await cursor.fetchone()
            is_open = open_by_default if setting is None else setting[0] == "1"
            if not is_open:
                raise Forbidden("registration is closed on this server", slug="registration-closed")
        try:
            cursor = await conn.execute(
                "INSERT INTO users(username, email, password_hash, display_name, is_admin)"
                " VALUES (?, ?, ?, ?, ?)",
                (username, email, password_hash, username, int(first_user)),
            )
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"the username '{username}' is taken", slug="username-taken") from exc
        user_id = cursor.lastrowid
        assert user_id is not None
        handle = await _free_handle(conn, username)
        await conn.execute(
            "INSERT INTO channels(public_id, owner_id, handle, display_name, is_default)"
            " VALUES (?, ?, ?, ?, 1)",
            (new_public_id(), user_id, handle, username),
        )
    return user_id


async def _free_handle(conn: Any, wanted: str) -> str:
    candidate, n = wanted, 1
    while True:
        async with conn.execute("SELECT 1 FROM channels WHERE handle = ?", (candidate,)) as cur:
            if await cur.fetchone() is None:
                return candidate
        n += 1
        candidate = f"{wanted}_{n}"


async def authenticate(db: Database, username: str, password: str) -> Row:
    row = await db.fetch_one("SELECT * FROM users WHERE username = ?", (username,))
    ok = await verify_password(password, row["password_hash"] if row else None)
    # One answer for an unknown name and a wrong password: no way to probe usernames.
    if row is None or not ok:
        raise Unauthorized("the username or password is wrong")
    if row["disabled"]:
        raise Forbidden("this account is disabled", slug="account-disabled")
    return row


async def get_user(db: Database, user_id: int) -> Row:
    row = await db.fetch_one("SELECT * FROM users WHERE id = ?", (user_id,))
    if row is None:
        raise NotFound("no such user")
    return row


async def user_channels(db: Database, user_id: int) -> list[Row]:
    return await db.fetch_all(
        "SELECT * FROM channels WHERE owner_id = ? ORDER BY is_default DESC, id", (user_id,)
    )


def channel_brief(row: Row) -> dict[str, Any]:
    return {"id": row["public_id"], "handle": row["handle"], "display_name": row["display_name"]}


async def user_json(db: Database, user_id: int) -> dict[str, Any]:
    row = await get_user(db, user_id)
    channels = await user_channels(db, user_id)
    return {
        "id": row["id"],
        "username": row["username"],
        "display_name": row["display_name"],
        "email": row["email"],
        "bio": row["bio"],
        "is_admin": bool(row["is_admin"]),
        "disabled": bool(row["disabled"]),
        "created_at": row["created_at"],
        "preferences": _merge(DEFAULT_PREFERENCES, json.loads(row["preferences"])),
        "channels": [channel_brief(c) for c in channels],
    }


async def update_profile(db: Database, user_id: int, changes: dict[str, Any]) -> None:
    async with db.transaction() as conn:
        for column in ("display_name", "bio", "email"):
            if column in changes:
                # The column name comes from the fixed tuple above, never from the request.
                await conn.execute(f"UPDATE users SET {column} = ? WHERE id = ?",
                                   (changes[column], user_id))
        if "preferences" in changes:
            # Read inside the write transaction: two concurrent PATCHes both land.
            async with conn.execute("SELECT preferences FROM users WHERE id = ?",
                                    (user_id,)) as cursor:
                row = await cursor.fetchone()
            if row is None:
                raise NotFound("no such user")
            merged = _merge(json.loads(row[0]), changes["preferences"])
            await conn.execute("UPDATE users SET preferences = ? WHERE id = ?",
                               (json.dumps(merged), user_id))


async def change_password(
    db: Database, user_id: int, current: str, new: str, keep_session: str | None
) -> None:
    row = await get_user(db, user_id)
    if not await verify_password(current, row["password_hash"]):
        raise ValidationFailed([{"field": "current_password", "message": "is wrong"}])
    new_hash = await hash_password(new)
    async with db.transaction() as conn:
        await conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (new_hash, user_id))
        # A new password ends every other session: a thief's stolen refresh token dies here.
        await conn.execute(
            "UPDATE sessions SET revoked = 1 WHERE user_id = ? AND public_id IS NOT ?",
            (user_id, keep_session),
        )


async def list_users(db: Database) -> list[dict[str, Any]]:
    rows = await db.fetch_all(
        "SELECT id, username, display_name, is_admin, disabled, created_at FROM users ORDER BY id"
    )
    return [
        {"id": r["id"], "username": r["username"], "display_name": r["display_name"],
         "is_admin": bool(r["is_admin"]), "disabled": bool(r["disabled"]),
         "created_at": r["created_at"]}
        for r in rows
    ]


async def set_disabled(db: Database, admin_id: int, user_id: int, disabled: bool) -> None:
    if user_id == admin_id and disabled:
        raise Conflict("an administrator cannot disable their own account")
    await get_user(db, user_id)
    async with db.transaction() as conn:
        await conn.execute("UPDATE users SET disabled = ? WHERE id = ?", (int(disabled), user_id))
        if disabled:
            await conn.execute("UPDATE sessions SET revoked = 1 WHERE user_id = ?", (user_id,))
