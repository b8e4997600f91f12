"""Password change, open sessions and personal API tokens."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.tokens import token_hash
from tests.helpers import PASSWORD, check_openapi, sign_up
from tests.server.support import bearer, database_dump, login, me_status, refresh


async def test_password_change_revokes_the_other_sessions(
    client: TestClient, openapi: dict[str, Any]
) -> None:
    alice = await sign_up(client, "alice")
    other = await login(client, "alice")
    new_password = "a much better passphrase"

    resp = await client.post("/api/users/me/password", headers=alice.headers,
                             json={"current_password": "wrong one", "new_password": new_password})
    assert resp.status == 400
    assert (await check_openapi(openapi, resp))["errors"][0]["field"] == "current_password"
    resp = await client.post("/api/users/me/password", headers=alice.headers,
                             json={"current_password": PASSWORD, "new_password": "short"})
    assert resp.status == 400
    assert await me_status(client, other) == 200  # nothing happened yet

    resp = await client.post("/api/users/me/password", headers=alice.headers,
                             json={"current_password": PASSWORD, "new_password": new_password})
    assert resp.status == 204
    await check_openapi(openapi, resp)
    assert await me_status(client, alice.tokens) == 200
    assert (await refresh(client, alice.tokens["refresh_token"])).status == 200
    assert await me_status(client, other) == 401
    assert (await refresh(client, other["refresh_token"])).status == 401

    resp = await client.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
    assert resp.status == 401
    await login(client, "alice", new_password)


async def test_list_and_revoke_sessions(client: TestClient, openapi: dict[str, Any]) -> None:
    alice = await sign_up(client, "alice")
    other = await login(client, "alice")
    bob = await sign_up(client, "bob")

    resp = await client.get("/api/users/me/sessions", headers=alice.headers)
    items = (await check_openapi(openapi, resp))["items"]
    assert {s["id"] for s in items} == {alice.tokens["session_id"], other["session_id"]}
    assert [s["current"] for s in items if s["id"] == alice.tokens["session_id"]] == [True]

    # Someone else's session is not found, not revoked.
    resp = await client.delete(f"/api/users/me/sessions/{other['session_id']}",
                               headers=bob.headers)
    assert resp.status == 404
    await check_openapi(openapi, resp)
    assert await me_status(client, other) == 200

    resp = await client.delete(f"/api/users/me/sessions/{other['session_id']}",
                               headers=alice.headers)
    assert resp.status == 204
    assert await me_status(client, other) == 401
    assert (await refresh(client, other["refresh_token"])).status == 401
    resp = await client.get("/api/users/me/sessions", headers=alice.headers)
    assert [s["id"] for s in (await resp.json())["items"]] == [alice.tokens["session_id"]]


# --- personal API tokens ----------------------------------------------------------------


async def test_api_tokens_are_shown_once_and_stored_hashed(
    client: TestClient, openapi: dict[str, Any]
) -> None:
    alice = await sign_up(client, "alice")
    resp = await client.post("/api/users/me/tokens", headers=alice.headers,
                             json={"name": "living-room TV", "scopes": ["read"]})
    assert resp.status == 201
    assert resp.headers["Cache-Control"] == "no-store"
    created = await check_openapi(openapi, resp)
    secret = created["token"]
    assert secret.startswith("rh_") and len(secret) > 40
    assert created["scopes"] == ["read"]

    resp = await client.get("/api/users/me/tokens", headers=alice.headers)
    listed = (await check_openapi(openapi, resp))["items"]
    assert [t["id"] for t in listed] == [created["id"]]
    assert "token" not in listed[0]

    dump = database_dump(client)
    assert secret not in dump
    assert secret[3:] not in dump
    assert token_hash(secret) in dump


async def test_scopes_limit_what_a_token_may_do(
    client: TestClient, openapi: dict[str, Any]
) -> None:
    alice = await sign_up(client, "alice")

    async def make(scopes: list[str]) -> str:
        resp = await client.post("/api/users/me/tokens", headers=alice.headers,
                                 json={"name": "script", "scopes": scopes})
        return str((await resp.json())["token"])

    read_only = await make(["read"])
    resp = await client.get("/api/users/me", headers=bearer(read_only))
    assert resp.status == 200
    assert (await check_openapi(openapi, resp))["username"] == "alice"
    resp = await client.get(f"/api/channels/{alice.channel_id}", headers=bearer(read_only))
    assert resp.status == 200
    for method, path, body in [
        ("PATCH", "/api/users/me", {"display_name": "Mallory"}),
        ("POST", "/api/channels", {"handle": "sneaky", "display_name": "Sneaky"}),
        ("DELETE", f"/api/channels/{alice.channel_id}", None),
        ("POST", "/api/auth/logout", None),
    ]:
        resp = await client.request(method, path, json=body, headers=bearer(read_only))
        assert resp.status == 403, (method, path)
        assert (await check_openapi(openapi, resp))["type"].endswith("/scope")
    assert (await (await client.get("/api/users/me", headers=alice.headers)).json())[
        "display_name"] == "alice"

    writer = await make(["read", "write"])
    resp = await client.post("/api/channels", headers=bearer(writer),
                             json={"handle": "scripted", "display_name": "Scripted"})
    assert resp.status == 201
    # A token cannot mint tokens, see sessions or change the password: that needs a login.
    for method, path in [("POST", "/api/users/me/tokens"), ("GET", "/api/users/me/sessions"),
                         ("POST", "/api/users/me/password")]:
        resp = await client.request(method, path, headers=bearer(writer),
                                    json={"name": "x", "current_password": "x",
                                          "new_password": "y" * 10}
                                    if method == "POST" else None)
        assert resp.status == 403, path
    resp = await client.get("/api/users/me/tokens", headers=alice.headers)
    items = (await resp.json())["items"]
    assert len(items) == 2
    assert all(t["last_used_at"] for t in items)


async def test_api_tokens_can_be_revoked(client: TestClient, openapi: dict[str, Any]) -> None:
    alice = await sign_up(client, "alice")
    bob = await sign_up(client, "bob")
    resp = await client.post("/api/users/me/tokens", headers=alice.headers, json={"name": "s"})
    created = await resp.json()
    assert sorted(created["scopes"]) == ["read", "upload", "write"]
    assert await me_status(client, created["token"]) == 200

    resp = await client.delete(f"/api/users/me/tokens/{created['id']}", headers=bob.headers)
    assert resp.status == 404
    await check_openapi(openapi, resp)
    assert await me_status(client, created["token"]) == 200

    resp = await client.delete(f"/api/users/me/tokens/{created['id']}", headers=alice.headers)
    assert resp.status == 204
    await check_openapi(openapi, resp)
    assert await me_status(client, created["token"]) == 401
    resp = await client.delete(f"/api/users/me/tokens/{created['id']}", headers=alice.headers)
    assert resp.status == 404


@pytest.mark.parametrize("body", [
    {"name": "x", "scopes": ["admin"]},
    {"name": "x", "scopes": []},
    {"name": "x", "scopes": ["read", "read"]},
    {"name": "", "scopes": ["read"]},
    {"scopes": ["read"]},
    {"name": "x", "scopes": "read"},
])
async def test_bad_token_requests(client: TestClient, openapi: dict[str, Any],
                                  body: dict[str, Any]) -> None:
    alice = await sign_up(client, "alice")
    before = database_dump(client)
    resp = await client.post("/api/users/me/tokens", headers=alice.headers, json=body)
    assert resp.status == 400
    await check_openapi(openapi, resp)
    assert database_dump(client) == before


async def test_last_use_is_recorded_without_a_write_per_request(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    resp = await client.post("/api/users/me/tokens", headers=alice.headers, json={"name": "tv"})
    secret = (await resp.json())["token"]

    async def last_used() -> str | None:
        resp = await client.get("/api/users/me/tokens", headers=alice.headers)
        return (await resp.json())["items"][0]["last_used_at"]  # type: ignore[no-any-return]

    assert await last_used() is None
    assert await me_status(client, secret) == 200
    first = await last_used()
    assert first is not None
    for _ in range(3):
        assert await me_status(client, secret) == 200
    assert await last_used() == first  # within the minute: not rewritten
