"""Login sessions with rotating refresh tokens, and personal API tokens.

A session is a refresh-token family: each refresh marks the presented token used and
issues a new one. Presenting a used token again means it was stolen or replayed, so the
whole family is revoked (OAuth 2.0 Security BCP, RFC 9700 section 4.14.2).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from server.db import Database
from server.errors import NotFound, Unauthorized
from server.ids import new_public_id, now
from server.tokens import API_TOKEN_PREFIX, new_opaque_token, token_hash


@dataclass(frozen=True)
class IssuedSession:
    session_id: str
    user_id: int
    refresh_token: str


async def start_session(
    db: Database, user_id: int, lifetime_seconds: int, user_agent: str, ip: str
) -> IssuedSession:
    public_id = new_public_id()
    refresh = new_opaque_token()
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "INSERT INTO sessions(public_id, user_id, user_agent, ip, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (public_id, user_id, user_agent[:200], ip, now() + lifetime_seconds),
        )
        await conn.execute(
            "INSERT INTO refresh_tokens(token_hash, session_id, created_at) VALUES (?, ?, ?)",
            (token_hash(refresh), cursor.lastrowid, now()),
        )
    return IssuedSession(public_id, user_id, refresh)


async def rotate(db: Database, refresh_token: str, lifetime_seconds: int) -> IssuedSession:
    hashed = token_hash(refresh_token)
    new_refresh = new_opaque_token()
    reused = False
    async with db.transaction() as conn:
        async with conn.execute(
            "SELECT r.used, s.id, s.public_id, s.user_id, s.revoked, s.expires_at, u.disabled"
            " FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id"
            " JOIN users u ON u.id = s.user_id WHERE r.token_hash = ?",
            (hashed,),
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            raise Unauthorized("the refresh token is not known")
        if row["used"]:
            await conn.execute("UPDATE sessions SET revoked = 1 WHERE id = ?", (row["id"],))
            reused = True
        elif row["revoked"] or row["disabled"] or row["expires_at"] < now():
            raise Unauthorized("the session has ended; sign in again")
        else:
            await conn.execute("UPDATE refresh_tokens SET used = 1 WHERE token_hash = ?",
                               (hashed,))
            await conn.execute(
                "INSERT INTO refresh_tokens(token_hash, session_id, created_at) VALUES (?, ?, ?)",
                (token_hash(new_refresh), row["id"], now()),
            )
            await conn.execute(
                "UPDATE sessions SET last_used_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),"
                " expires_at = ? WHERE id = ?",
                (now() + lifetime_seconds, row["id"]),
            )
    if reused:
        raise Unauthorized("this refresh token was already used; the session is revoked")
    return IssuedSession(row["public_id"], row["user_id"], new_refresh)


async def revoke_session(db: Database, user_id: int, session_id: str) -> None:
    cursor = await db.write(
        "UPDATE sessions SET revoked = 1 WHERE public_id = ? AND user_id = ?",
        (session_id, user_id),
    )
    if cursor.rowcount == 0:
        raise NotFound("no such session")


async def session_of_refresh_token(db: Database, refresh_token: str) -> str | None:
    return await db.fetch_value(  # type: ignore[no-any-return]
        "SELECT s.public_id FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id"
        " WHERE r.token_hash = ?",
        (token_hash(refresh_token),),
    )


async def revoke_by_refresh_token(db: Database, refresh_token: str) -> None:
    """Sign-out by refresh token (a client whose access token has expired); unknown is fine."""
    await db.write(
        "UPDATE sessions SET revoked = 1 WHERE id ="
        " (SELECT session_id FROM refresh_tokens WHERE token_hash = ?)",
        (token_hash(refresh_token),),
    )


async def list_sessions(db: Database, user_id: int, current: str | None) -> list[dict[str, Any]]:
    rows = await db.fetch_all(
        "SELECT public_id, user_agent, ip, created_at, last_used_at FROM sessions"
        " WHERE user_id = ? AND revoked = 0 AND expires_at > ? ORDER BY id DESC",
        (user_id, now()),
    )
    return [
        {"id": r["public_id"], "user_agent": r["user_agent"], "ip": r["ip"],
         "created_at": r["created_at"], "last_used_at": r["last_used_at"],
         "current": r["public_id"] == current}
        for r in rows
    ]


async def create_api_token(
    db: Database, user_id: int, name: str, scopes: list[str]
) -> dict[str, Any]:
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    public_id = new_public_id()
    await db.write(
        "INSERT INTO api_tokens(public_id, user_id, name, token_hash, scopes)"
        " VALUES (?, ?, ?, ?, ?)",
        (public_id, user_id, name, token_hash(token), ",".join(sorted(set(scopes)))),
    )
    row = await db.fetch_one("SELECT * FROM api_tokens WHERE public_id = ?", (public_id,))
    assert row is not None
    return {**_token_json(row), "token": token}


def _token_json(row: Any) -> dict[str, Any]:
    return {"id": row["public_id"], "name": row["name"],
            "scopes": [s for s in row["scopes"].split(",") if s],
            "created_at": row["created_at"], "last_used_at": row["last_used_at"]}


async def list_api_tokens(db: Database, user_id: int) -> list[dict[str, Any]]:
    rows = await db.fetch_all("SELECT * FROM api_tokens WHERE user_id = ? ORDER BY id", (user_id,))
    return [_token_json(r) for r in rows]


async def revoke_api_token(db: Database, user_id: int, public_id: str) -> None:
    cursor = await db.write("DELETE FROM api_tokens WHERE public_id = ? AND user_id = ?",
                            (public_id, user_id))
    if cursor.rowcount == 0:
        raise NotFound("no such API token")
