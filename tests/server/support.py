"""Helpers shared by the server tests: sign-in shortcuts and a snapshot of the database."""

from __future__ import annotations

import sqlite3
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from server import keys
from tests.helpers import PASSWORD


async def login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, Any]:
    """A new session for `username`; the cookies it sets are dropped (tests use Bearer)."""
    resp = await client.post("/api/auth/login", json={"username": username, "password": password})
    assert resp.status == 200, await resp.text()
    client.session.cookie_jar.clear()
    return dict(await resp.json())


def bearer(tokens: dict[str, Any] | str) -> dict[str, str]:
    token = tokens if isinstance(tokens, str) else tokens["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def me_status(client: TestClient, tokens: dict[str, Any] | str) -> int:
    resp = await client.get("/api/users/me", headers=bearer(tokens))
    return resp.status


async def refresh(client: TestClient, refresh_token: str) -> ClientResponse:
    return await client.post("/api/auth/refresh", json={"refresh_token": refresh_token})


def database_dump(client: TestClient) -> str:
    """Every row of the real SQLite file as SQL text, read through a second connection."""
    conn = sqlite3.connect(client.app[keys.CONFIG].db_path)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()
