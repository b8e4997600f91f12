"""Registration, the signed-in user's profile and preferences, admin actions."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp.pytest_plugin import AiohttpClient
from aiohttp.test_utils import TestClient

from server.app import create_app
from tests.conftest import make_config
from tests.helpers import PASSWORD, check_openapi, sign_up
from tests.server.support import database_dump, login, me_status, refresh


async def register(client: TestClient, username: str, password: str = PASSWORD,
                   **extra: Any) -> Any:
    return await client.post("/api/users",
                             json={"username": username, "password": password, **extra})


# --- registration -----------------------------------------------------------------------


async def test_first_user_is_admin_and_gets_a_default_channel(
    client: TestClient, openapi: dict[str, Any]
) -> None:
    resp = await register(client, "alice", email="alice@example.org")
    assert resp.status == 201
    alice = await check_openapi(openapi, resp)
    assert alice["is_admin"] is True
    assert alice["username"] == "alice" and alice["display_name"] == "alice"
    assert alice["email"] == "alice@example.org"
    assert [c["handle"] for c in alice["channels"]] == ["alice"]
    resp = await client.get(f"/api/channels/{alice['channels'][0]['id']}")
    assert resp.status == 200
    channel = await check_openapi(openapi, resp)
    assert channel["owner"] == "alice" and channel["handle"] == "alice"

    resp = await register(client, "bob")
    bob = await check_openapi(openapi, resp)
    assert bob["is_admin"] is False
    assert len(bob["channels"]) == 1


async def test_default_channel_handle_avoids_a_taken_handle(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    resp = await client.post("/api/channels", headers=alice.headers,
                             json={"handle": "bob", "display_name": "Bob fan club"})
    assert resp.status == 201
    bob = await sign_up(client, "bob")
    assert bob.profile["channels"][0]["handle"] == "bob_2"


@pytest.mark.parametrize("username", [
    "ab",                      # too short
    "a" * 33,                  # too long
    "-dash", ".dot", "_under",  # must start with a letter or digit
    "has space", "tab\tname", "sl/ash", "at@sign",
    "émile", "名前名前", "smile🎬",
    "'; DROP TABLE users;--",
])
async def test_username_rules(client: TestClient, openapi: dict[str, Any],
                              username: str) -> None:
    resp = await register(client, username)
    assert resp.status == 400
    body = await check_openapi(openapi, resp)
    assert body["errors"][0]["field"] == "username"
    assert (await register(client, "fine.name-1_x")).status == 201


async def test_passwords_are_stored_with_scrypt(client: TestClient) -> None:
    await sign_up(client, "alice")
    await sign_up(client, "bob")
    dump = database_dump(client)
    assert PASSWORD not in dump
    hashes = [line for line in dump.splitlines() if "scrypt$16384$8$1$" in line]
    assert len(hashes) == 2
    # Same password, different salts.
    assert len({line.split("scrypt$")[1][:60] for line in hashes}) == 2


async def test_password_length(client: TestClient, openapi: dict[str, Any]) -> None:
    resp = await register(client, "alice", password="short")
    assert resp.status == 400
    body = await check_openapi(openapi, resp)
    assert body["errors"] == [{"field": "password", "message": "must be at least 8 characters"}]
    assert (await register(client, "alice", password="x" * 1025)).status == 400
    assert (await register(client, "alice", password="x" * 8)).status == 201


async def test_password_length_follows_the_setting(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(make_config(tmp_path, password_min_length=12)))
    assert (await register(client, "alice", password="elevenchars")).status == 400
    assert (await register(client, "alice", password="twelve chars")).status == 201


async def test_duplicate_username_is_a_conflict(
    client: TestClient, openapi: dict[str, Any]
) -> None:
    assert (await register(client, "alice")).status == 201
    for name in ("alice", "ALICE", "Alice"):
        resp = await register(client, name)
        assert resp.status == 409
        body = await check_openapi(openapi, resp)
        assert body["type"].endswith("/username-taken")
    assert database_dump(client).count("INSERT INTO \"users\"") == 1


async def test_admin_can_close_registration(
    client: TestClient, openapi: dict[str, Any]
) -> None:
    admin = await sign_up(client, "admin")
    bob = await sign_up(client, "bob")
    resp = await client.patch("/api/admin/settings", headers=bob.headers,
                              json={"open_registration": False})
    assert resp.status == 403
    await check_openapi(openapi, resp)

    resp = await client.patch("/api/admin/settings", headers=admin.headers,
                              json={"open_registration": False})
    assert resp.status == 200
    assert await check_openapi(openapi, resp) == {"open_registration": False}
    resp = await client.get("/api/admin/settings", headers=admin.headers)
    assert await check_openapi(openapi, resp) == {"open_registration": False}

    resp = await register(client, "carol")
    assert resp.status == 403
    assert (await check_openapi(openapi, resp))["type"].endswith("/registration-closed")

    await client.patch("/api/admin/settings", headers=admin.headers,
                       json={"open_registration": True})
    assert (await register(client, "carol")).status == 201


async def test_closed_by_configuration_still_admits_the_first_user(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(make_config(tmp_path, open_registration=False)))
    assert (await register(client, "admin")).status == 201
    assert (await register(client, "bob")).status == 403


# --- the signed-in user ---------------------------------------------------------------------


async def test_me_requires_a_user(client: TestClient, openapi: dict[str, Any]) -> None:
    resp = await client.get("/api/users/me")
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    await check_openapi(openapi, resp)


async def test_me_profile_and_preferences(client: TestClient, openapi: dict[str, Any]) -> None:
    alice = await sign_up(client, "alice")
    resp = await client.get("/api/users/me", headers=alice.headers)
    me = await check_openapi(openapi, resp)
    assert me["preferences"] == {
        "default_quality": "auto", "autoplay": True,
        "notifications": {"new_video": True, "video_processed": True, "comment": True,
                          "reply": True, "subscriber": True},
    }
    assert me["channels"] == [{"id": alice.channel_id, "handle": "alice",
                               "display_name": "alice"}]

    resp = await client.patch("/api/users/me", headers=alice.headers, json={
        "display_name": "Ålice 🎬 Liddell", "bio": "Line one\nLine two — ok",
        "preferences": {"autoplay": False, "default_quality": "720p"}})
    assert resp.status == 200
    me = await check_openapi(openapi, resp)
    assert me["display_name"] == "Ålice 🎬 Liddell"
    assert me["bio"] == "Line one\nLine two — ok"

    # Preferences merge: a nested change keeps every other key.
    resp = await client.patch("/api/users/me", headers=alice.headers,
                              json={"preferences": {"notifications": {"comment": False}}})
    me = await check_openapi(openapi, resp)
    assert me["preferences"]["autoplay"] is False
    assert me["preferences"]["default_quality"] == "720p"
    assert me["preferences"]["notifications"] == {
        "new_video": True, "video_processed": True, "comment": False, "reply": True,
        "subscriber": True}
    resp = await client.get("/api/users/me", headers=alice.headers)
    assert (await resp.json())["preferences"] == me["preferences"]

    resp = await client.patch("/api/users/me", headers=alice.headers, json={"email": None})
    assert (await check_openapi(openapi, resp))["email"] is None


async def test_text_with_sql_metacharacters_is_stored_verbatim(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    name = "Robert'); DROP TABLE users;--"
    resp = await client.patch("/api/users/me", headers=alice.headers,
                              json={"display_name": name, "bio": '" OR 1=1 --'})
    assert resp.status == 200
    resp = await client.get("/api/users/me", headers=alice.headers)
    body = await resp.json()
    assert body["display_name"] == name and body["bio"] == '" OR 1=1 --'
    await sign_up(client, "bob")  # the users table is still there


# --- admin ----------------------------------------------------------------------------------


async def test_admin_disables_a_user(client: TestClient, openapi: dict[str, Any]) -> None:
    admin = await sign_up(client, "admin")
    bob = await sign_up(client, "bob")
    resp = await client.post("/api/users/me/tokens", headers=bob.headers, json={"name": "s"})
    bob_api_token = (await resp.json())["token"]

    resp = await client.get("/api/admin/users", headers=bob.headers)
    assert resp.status == 403
    resp = await client.patch(f"/api/admin/users/{admin.id}", headers=bob.headers,
                              json={"disabled": True})
    assert resp.status == 403
    await check_openapi(openapi, resp)

    resp = await client.patch(f"/api/admin/users/{bob.id}", headers=admin.headers,
                              json={"disabled": True})
    assert resp.status == 200
    assert (await check_openapi(openapi, resp))["disabled"] is True
    resp = await client.get("/api/admin/users", headers=admin.headers)
    users = (await check_openapi(openapi, resp))["items"]
    assert {u["username"]: u["disabled"] for u in users} == {"admin": False, "bob": True}

    assert await me_status(client, bob.tokens) == 401
    assert await me_status(client, bob_api_token) == 401
    assert (await refresh(client, bob.tokens["refresh_token"])).status == 401
    resp = await client.post("/api/auth/login", json={"username": "bob", "password": PASSWORD})
    assert resp.status == 403
    assert (await check_openapi(openapi, resp))["type"].endswith("/account-disabled")
    # A wrong password still says only "wrong": the account's state is not revealed.
    resp = await client.post("/api/auth/login", json={"username": "bob", "password": "nope1234"})
    assert resp.status == 401
    assert (await client.get(f"/api/channels/{bob.channel_id}")).status == 404

    resp = await client.patch(f"/api/admin/users/{bob.id}", headers=admin.headers,
                              json={"disabled": False})
    assert resp.status == 200
    again = await login(client, "bob")
    assert await me_status(client, again) == 200
    assert await me_status(client, bob_api_token) == 200
    assert (await client.get(f"/api/channels/{bob.channel_id}")).status == 200


async def test_admin_cannot_disable_themselves_or_unknown_users(
    client: TestClient, openapi: dict[str, Any]
) -> None:
    admin = await sign_up(client, "admin")
    for user_id, status in [(admin.id, 409), (9999, 404), ("abc", 400)]:
        resp = await client.patch(f"/api/admin/users/{user_id}", headers=admin.headers,
                                  json={"disabled": True})
        assert resp.status == status, user_id
        await check_openapi(openapi, resp)
    assert await me_status(client, admin.tokens) == 200


async def test_concurrent_registrations(client: TestClient) -> None:
    # One serialised writer: exactly one admin, exactly one owner of a name, never a 500.
    names = ["ann", "ben", "cat", "dan", "eve"]
    results = await asyncio.gather(*(register(client, n) for n in names))
    bodies = [await r.json() for r in results]
    assert [r.status for r in results] == [201] * 5
    assert sum(b["is_admin"] for b in bodies) == 1
    results = await asyncio.gather(*(register(client, "same") for _ in range(5)))
    assert sorted(r.status for r in results) == [201, 409, 409, 409, 409]
