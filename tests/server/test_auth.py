"""Sign-in, tokens, refresh rotation, sign-out and the browser cookie session."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp.pytest_plugin import AiohttpClient
from aiohttp.test_utils import TestClient

from server.app import create_app
from tests.conftest import make_config
from tests.helpers import PASSWORD, check_openapi, sign_up
from tests.server.support import bearer, database_dump, login, me_status, refresh


async def test_login_returns_a_bearer_token_pair(
    client: TestClient, openapi: dict[str, Any]
) -> None:
    await sign_up(client, "alice")
    resp = await client.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-store"
    body = await check_openapi(openapi, resp)
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["access_token"] and body["refresh_token"]
    assert body["access_token"] != body["refresh_token"]
    client.session.cookie_jar.clear()
    me = await client.get("/api/users/me", headers=bearer(body))
    assert (await me.json())["username"] == "alice"


async def test_login_does_not_reveal_whether_a_username_exists(
    client: TestClient, openapi: dict[str, Any]
) -> None:
    await sign_up(client, "alice")
    unknown = await client.post("/api/auth/login",
                                json={"username": "nobody", "password": PASSWORD})
    wrong = await client.post("/api/auth/login",
                              json={"username": "alice", "password": "wrong password"})
    assert unknown.status == wrong.status == 401
    unknown_body = await check_openapi(openapi, unknown)
    wrong_body = await check_openapi(openapi, wrong)
    assert unknown_body == wrong_body
    assert unknown.headers.get("WWW-Authenticate") == wrong.headers.get("WWW-Authenticate")
    assert "alice" not in str(wrong_body) and "nobody" not in str(unknown_body)


async def test_login_is_case_insensitive_on_username(client: TestClient) -> None:
    await sign_up(client, "Alice")
    tokens = await login(client, "aLiCe")
    assert await me_status(client, tokens) == 200


async def test_access_tokens_are_short_lived(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(make_config(tmp_path, access_token_seconds=1)))
    alice = await sign_up(client, "alice")
    assert alice.tokens["expires_in"] == 1
    assert await me_status(client, alice.tokens) == 200
    await asyncio.sleep(2.2)  # itsdangerous timestamps have one-second resolution
    resp = await client.get("/api/users/me", headers=alice.headers)
    assert resp.status == 401
    assert resp.content_type == "application/problem+json"
    # The refresh token outlives it and yields a fresh access token.
    resp = await refresh(client, alice.tokens["refresh_token"])
    assert resp.status == 200
    assert await me_status(client, await resp.json()) == 200


async def test_tampered_and_garbage_tokens_are_refused(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    access = alice.tokens["access_token"]
    tampered = access[:-2] + ("AA" if not access.endswith("AA") else "BB")
    for header in (f"Bearer {tampered}", "Bearer x", "Basic YWxpY2U6cHc=", "Bearer ",
                   "Bearer rh_notatoken"):
        resp = await client.get("/api/users/me", headers={"Authorization": header})
        assert resp.status == 401, header
        assert resp.content_type == "application/problem+json"


async def test_refresh_rotates_and_reuse_revokes_the_session(
    client: TestClient, openapi: dict[str, Any]
) -> None:
    alice = await sign_up(client, "alice")
    first = alice.tokens
    resp = await refresh(client, first["refresh_token"])
    assert resp.status == 200
    second = await check_openapi(openapi, resp)
    assert second["refresh_token"] != first["refresh_token"]
    assert second["session_id"] == first["session_id"]
    assert await me_status(client, second) == 200
    resp = await refresh(client, second["refresh_token"])
    assert resp.status == 200
    third = await resp.json()
    assert await me_status(client, third) == 200

    # A rotated token presented again: theft or replay, so the whole family dies.
    replay = await refresh(client, first["refresh_token"])
    assert replay.status == 401
    assert "already used" in (await check_openapi(openapi, replay))["detail"]
    assert await me_status(client, third) == 401
    assert (await refresh(client, third["refresh_token"])).status == 401
    assert (await refresh(client, "not-a-token")).status == 401

    # Other sessions of the same user are untouched.
    other = await login(client, "alice")
    assert await me_status(client, other) == 200


async def test_refresh_tokens_are_stored_hashed(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    dump = database_dump(client)
    assert alice.tokens["refresh_token"] not in dump
    assert alice.tokens["access_token"] not in dump


async def test_logout_revokes_the_session(client: TestClient, openapi: dict[str, Any]) -> None:
    alice = await sign_up(client, "alice")
    other = await login(client, "alice")
    resp = await client.post("/api/auth/logout", headers=alice.headers)
    assert resp.status == 204
    await check_openapi(openapi, resp)
    assert await me_status(client, alice.tokens) == 401
    assert (await refresh(client, alice.tokens["refresh_token"])).status == 401
    assert await me_status(client, other) == 200
    # Nothing to sign out of.
    resp = await client.post("/api/auth/logout")
    assert resp.status == 401
    await check_openapi(openapi, resp)


async def test_logout_by_refresh_token_with_an_expired_access_token(
    client: TestClient,
) -> None:
    alice = await sign_up(client, "alice")
    resp = await client.post("/api/auth/logout", json={"refresh_token":
                                                       alice.tokens["refresh_token"]},
                             headers={"Authorization": "Bearer expired.garbage"})
    assert resp.status == 204
    assert await me_status(client, alice.tokens) == 401


async def test_browser_session_uses_httponly_samesite_cookies_and_csrf(
    client: TestClient, openapi: dict[str, Any]
) -> None:
    await sign_up(client, "alice")
    resp = await client.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
    assert resp.status == 200
    tokens = await resp.json()
    cookies = {c.key: c for c in resp.cookies.values()}
    assert set(cookies) == {"rh_access", "rh_refresh", "rh_csrf"}
    for name in ("rh_access", "rh_refresh"):
        assert cookies[name]["httponly"], name
        assert cookies[name]["samesite"] in {"Lax", "Strict"}, name
    assert cookies["rh_refresh"]["path"] == "/api/auth"
    # The page's script must read the CSRF cookie to echo it.
    assert not cookies["rh_csrf"]["httponly"]
    assert cookies["rh_csrf"].value == tokens["csrf_token"]

    # Safe methods ride on the cookie alone.
    resp = await client.get("/api/users/me")
    assert resp.status == 200
    assert (await check_openapi(openapi, resp))["username"] == "alice"

    # Unsafe methods without the header, or with a wrong one, are refused and change nothing.
    for headers in ({}, {"X-CSRF-Token": "0" * 64}, {"X-CSRF-Token": ""}):
        resp = await client.patch("/api/users/me", json={"display_name": "Mallory"},
                                  headers=headers)
        assert resp.status == 403
        body = await check_openapi(openapi, resp)
        assert body["type"].endswith("/csrf")
    assert (await (await client.get("/api/users/me")).json())["display_name"] == "alice"

    resp = await client.patch("/api/users/me", json={"display_name": "Alice A."},
                              headers={"X-CSRF-Token": tokens["csrf_token"]})
    assert resp.status == 200
    assert (await check_openapi(openapi, resp))["display_name"] == "Alice A."


async def test_cookie_refresh_needs_the_csrf_header(
    client: TestClient, openapi: dict[str, Any]
) -> None:
    await sign_up(client, "alice")
    resp = await client.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
    csrf = (await resp.json())["csrf_token"]
    old_refresh = resp.cookies["rh_refresh"].value

    resp = await client.post("/api/auth/refresh")
    assert resp.status == 403
    await check_openapi(openapi, resp)
    # A matching pair planted by someone else (cookie and header both "forged") is not
    # enough: the header must be the signature of this refresh cookie's session.
    client.session.cookie_jar.update_cookies({"rh_csrf": "forged"})
    resp = await client.post("/api/auth/refresh", headers={"X-CSRF-Token": "forged"})
    assert resp.status == 403

    resp = await client.post("/api/auth/refresh", headers={"X-CSRF-Token": csrf})
    assert resp.status == 200
    body = await check_openapi(openapi, resp)
    assert resp.cookies["rh_refresh"].value == body["refresh_token"] != old_refresh
    new_csrf = resp.cookies["rh_csrf"].value
    assert (await client.get("/api/users/me")).status == 200

    # Cookie sign-out also needs the header, then clears the cookies.
    resp = await client.post("/api/auth/logout")
    assert resp.status == 403
    resp = await client.post("/api/auth/logout", headers={"X-CSRF-Token": new_csrf})
    assert resp.status == 204
    assert resp.cookies["rh_access"].value == ""
    assert (await client.get("/api/users/me")).status == 401


async def test_a_stale_cookie_does_not_block_signing_in_again(client: TestClient) -> None:
    await sign_up(client, "alice")
    resp = await client.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
    assert resp.status == 200
    # Logged in by cookie, no CSRF header: login and registration stand on their own.
    resp = await client.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
    assert resp.status == 200
    resp = await client.post("/api/users", json={"username": "bob", "password": PASSWORD},
                             headers={"Authorization": "Bearer stale"})
    assert resp.status == 201


async def test_concurrent_refreshes_with_one_token(client: TestClient) -> None:
    # Two uses of one refresh token race: one wins, the other is a reuse, so the session
    # ends (RFC 9700 section 4.14.2 prefers that to leaving a replayed token usable).
    alice = await sign_up(client, "alice")
    results = await asyncio.gather(*(refresh(client, alice.tokens["refresh_token"])
                                     for _ in range(2)))
    assert sorted(r.status for r in results) == [200, 401]
    winner = next(r for r in results if r.status == 200)
    assert await me_status(client, await winner.json()) == 401
