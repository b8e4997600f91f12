from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.helpers import check_openapi, sign_up


async def test_register_login_me(client: TestClient, openapi: dict[str, Any]) -> None:
    alice = await sign_up(client, "alice")
    assert alice.profile["is_admin"] is True
    resp = await client.get("/api/users/me", headers=alice.headers)
    assert resp.status == 200
    body = await check_openapi(openapi, resp)
    assert body["username"] == "alice"
    bob = await sign_up(client, "bob")
    assert bob.profile["is_admin"] is False
