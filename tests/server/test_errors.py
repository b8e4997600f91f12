"""Every wrong input gets a 4xx problem+json and changes nothing; errors never leak traces."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from aiohttp import web
from aiohttp.pytest_plugin import AiohttpClient
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.config import Config
from tests.helpers import PASSWORD, User, check_openapi, sign_up
from tests.server.support import database_dump

PROBLEM_KEYS = {"type", "title", "status", "detail"}
SQL = "'; DROP TABLE users;--"


def raw(text: str | bytes, content_type: str = "application/json") -> tuple[bytes, str]:
    return (text.encode() if isinstance(text, str) else text), content_type


def body(value: Any) -> tuple[bytes, str]:
    return json.dumps(value).encode(), "application/json"


def signup(**fields: Any) -> tuple[bytes, str]:
    return body({"username": "carol", "password": PASSWORD, **fields})


# (name, method, path, (bytes, content type), expected status). `{channel}` is alice's
# default channel. Each must answer 4xx problem+json and leave the database as it was.
CASES: list[tuple[str, str, str, tuple[bytes, str], int]] = [
    # Malformed bodies
    ("truncated json", "POST", "/api/users", raw('{"username": "carol",'), 400),
    ("empty body", "POST", "/api/users", raw(""), 400),
    ("not utf-8", "POST", "/api/users", raw(b'{"username": "\xff\xfe"}'), 400),
    ("array body", "POST", "/api/users", raw("[1, 2]"), 400),
    ("string body", "POST", "/api/users", raw('"carol"'), 400),
    ("null body", "POST", "/api/users", raw("null"), 400),
    ("NaN", "POST", "/api/users", raw('{"username": "carol", "password": NaN}'), 400),
    ("Infinity", "POST", "/api/users",
     raw('{"username": "carol", "password": "x", "email": Infinity}'), 400),
    ("huge integer", "POST", "/api/users",
     raw('{"username": "carol", "password": ' + "9" * 5000 + "}"), 400),
    ("deep nesting", "POST", "/api/users", raw("[" * 100_000 + "]" * 100_000), 400),
    ("deep nesting in a field", "PATCH", "/api/users/me",
     raw('{"preferences": ' + "[" * 900 + "]" * 900 + "}"), 400),
    ("text/plain", "POST", "/api/users", raw("username=carol", "text/plain"), 415),
    ("form encoded", "POST", "/api/auth/login",
     raw("username=alice&password=x", "application/x-www-form-urlencoded"), 415),
    ("10 MB body", "POST", "/api/users",
     raw('{"username": "carol", "password": "' + "x" * (10 << 20) + '"}'), 413),
    # Wrong types and missing or unknown fields
    ("username is a number", "POST", "/api/users", signup(username=123), 400),
    ("password is a bool", "POST", "/api/users", signup(password=True), 400),
    ("email is a list", "POST", "/api/users", signup(email=["a@b.c"]), 400),
    ("missing password", "POST", "/api/users", body({"username": "carol"}), 400),
    ("missing everything", "POST", "/api/users", body({}), 400),
    ("unknown field is_admin", "POST", "/api/users", signup(is_admin=True), 400),
    ("login missing password", "POST", "/api/auth/login", body({"username": "alice"}), 400),
    ("login wrong type", "POST", "/api/auth/login",
     body({"username": ["alice"], "password": PASSWORD}), 400),
    ("login unknown field", "POST", "/api/auth/login",
     body({"username": "alice", "password": PASSWORD, "remember": True}), 400),
    ("refresh wrong type", "POST", "/api/auth/refresh", body({"refresh_token": 5}), 400),
    ("profile unknown field", "PATCH", "/api/users/me", body({"is_admin": True}), 400),
    ("display name null", "PATCH", "/api/users/me", body({"display_name": None}), 400),
    ("display name empty", "PATCH", "/api/users/me", body({"display_name": ""}), 400),
    ("preference wrong type", "PATCH", "/api/users/me",
     body({"preferences": {"autoplay": "yes"}}), 400),
    ("unknown preference", "PATCH", "/api/users/me",
     body({"preferences": {"theme": "dark"}}), 400),
    ("bad email", "PATCH", "/api/users/me", body({"email": "not an email"}), 400),
    ("password change missing", "POST", "/api/users/me/password",
     body({"new_password": "long enough"}), 400),
    ("channel missing name", "POST", "/api/channels", body({"handle": "newone"}), 400),
    ("admin disable wrong type", "PATCH", "/api/admin/users/2", body({"disabled": "yes"}), 400),
    ("registration switch missing", "PATCH", "/api/admin/settings", body({}), 400),
    # Unicode edge cases
    ("NUL in username", "POST", "/api/users", signup(username="car\x00ol"), 400),
    ("NUL in password", "POST", "/api/users", signup(password="long enough\x00"), 400),
    ("NUL in bio", "PATCH", "/api/users/me", body({"bio": "hello\x00world"}), 400),
    ("NUL in a key", "PATCH", "/api/users/me", body({"bio\x00": "x"}), 400),
    ("NUL in display name", "PATCH", "/api/users/me", body({"display_name": "a\x00b"}), 400),
    ("lone surrogate", "PATCH", "/api/users/me", raw('{"bio": "\\ud800 alone"}'), 400),
    ("lone low surrogate", "POST", "/api/channels",
     raw('{"handle": "surr", "display_name": "x\\udc00"}'), 400),
    ("RTL override in username", "POST", "/api/users", signup(username="caro\u202elx"), 400),
    ("RTL override in display name", "PATCH", "/api/users/me",
     body({"display_name": "admin\u202egnp.exe"}), 400),
    ("bidi isolate in channel name", "POST", "/api/channels",
     body({"handle": "isolate", "display_name": "a\u2066b\u2069"}), 400),
    ("newline in display name", "PATCH", "/api/users/me", body({"display_name": "a\nb"}), 400),
    ("DEL in token name", "POST", "/api/users/me/tokens", body({"name": "tv\x7f"}), 400),
    ("emoji username", "POST", "/api/users", signup(username="carol🎬"), 400),
    ("combining chars username", "POST", "/api/users", signup(username="ca\u0301rol"), 400),
    ("zero-width space username", "POST", "/api/users", signup(username="ca\u200brol"), 400),
    ("fullwidth username", "POST", "/api/users",
     signup(username="\uff43\uff41\uff52\uff4f\uff4c"), 400),
    ("emoji channel handle", "POST", "/api/channels",
     body({"handle": "🎬🎬🎬", "display_name": "Films"}), 400),
    # Overlong strings
    ("overlong username", "POST", "/api/users", signup(username="c" * 10_000), 400),
    ("overlong password", "POST", "/api/users", signup(password="p" * 100_000), 400),
    ("overlong display name", "PATCH", "/api/users/me", body({"display_name": "d" * 81}), 400),
    ("overlong bio", "PATCH", "/api/users/me", body({"bio": "b" * 2001}), 400),
    ("overlong channel description", "POST", "/api/channels",
     body({"handle": "longdesc", "display_name": "x", "description": "d" * 5001}), 400),
    ("overlong refresh token", "POST", "/api/auth/refresh",
     body({"refresh_token": "r" * 10_000}), 400),
    # SQL metacharacters
    ("SQL in username", "POST", "/api/users", signup(username=SQL), 400),
    ("SQL in login", "POST", "/api/auth/login",
     body({"username": "alice' OR '1'='1", "password": "' OR '1'='1"}), 401),
    ("SQL in login comment", "POST", "/api/auth/login",
     body({"username": "alice'--", "password": "x"}), 401),
    ("SQL in handle", "POST", "/api/channels", body({"handle": SQL, "display_name": "x"}), 400),
    ("SQL in channel path", "GET", "/api/channels/x' OR 1=1--", raw(b"", ""), 404),
    ("SQL in channel rename", "PATCH", "/api/channels/{channel}", body({"handle": SQL}), 400),
    ("SQL in session id", "DELETE", "/api/users/me/sessions/1 OR 1=1", raw(b"", ""), 404),
    ("SQL in token id", "DELETE", "/api/users/me/tokens/' OR ''='", raw(b"", ""), 404),
    ("SQL in user id", "PATCH", "/api/admin/users/1 OR 1=1", body({"disabled": True}), 400),
    ("SQL in refresh token", "POST", "/api/auth/refresh", body({"refresh_token": SQL}), 401),
]


@pytest.fixture
async def alice(client: TestClient) -> User:
    admin = await sign_up(client, "alice")
    await sign_up(client, "bob")
    return admin


@pytest.mark.parametrize(("name", "method", "path", "payload", "status"), CASES,
                         ids=[c[0] for c in CASES])
async def test_bad_input_is_refused_and_changes_nothing(
    client: TestClient, openapi: dict[str, Any], alice: User,
    name: str, method: str, path: str, payload: tuple[bytes, str], status: int,
) -> None:
    data, content_type = payload
    headers = dict(alice.headers)
    if content_type:
        headers["Content-Type"] = content_type
    before = database_dump(client)
    users_before = await user_count(client, alice)
    resp = await client.request(method, path.format(channel=alice.channel_id),
                                data=data or None, headers=headers)
    assert resp.status == status, (name, await resp.text())
    problem = await check_openapi(openapi, resp)
    assert PROBLEM_KEYS <= set(problem)
    assert problem["status"] == status
    assert "Traceback" not in problem["detail"]
    assert database_dump(client) == before
    assert await user_count(client, alice) == users_before
    # The server is still well: the same user reads their profile.
    assert (await client.get("/api/users/me", headers=alice.headers)).status == 200


async def user_count(client: TestClient, admin: User) -> int:
    resp = await client.get("/api/admin/users", headers=admin.headers)
    return len((await resp.json())["items"])


async def test_field_errors_name_the_field(client: TestClient, openapi: dict[str, Any]) -> None:
    resp = await client.post("/api/users", json={"username": 5, "extra": 1})
    assert resp.status == 400
    problem = await check_openapi(openapi, resp)
    fields = {e["field"]: e["message"] for e in problem["errors"]}
    assert fields == {"username": "must be of type string", "password": "is required",
                      "extra": "is not a known field"}
    assert problem["type"].endswith("/validation")


async def test_wrong_method_is_405_with_allow(
    client: TestClient, openapi: dict[str, Any]
) -> None:
    for method, path, allowed in [("PUT", "/api/users/me", {"GET", "PATCH"}),
                                  ("DELETE", "/api/auth/login", {"POST"}),
                                  ("GET", "/api/auth/refresh", {"POST"})]:
        resp = await client.request(method, path)
        assert resp.status == 405, path
        assert resp.content_type == "application/problem+json"
        problem = await resp.json()
        assert PROBLEM_KEYS <= set(problem) and problem["status"] == 405
        assert allowed <= {m.strip() for m in resp.headers["Allow"].split(",")}


async def test_unknown_api_route_is_404_problem(client: TestClient) -> None:
    for path in ("/api/nope", "/api/users/me/nope", "/api/"):
        resp = await client.get(path)
        assert resp.status == 404, path
        assert resp.content_type == "application/problem+json"
        problem = await resp.json()
        assert PROBLEM_KEYS <= set(problem) and problem["status"] == 404


async def test_unexpected_exception_is_500_without_a_trace(
    aiohttp_client: AiohttpClient, config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals: /srv/reelhouse/db password=hunter2")

    app = create_app(config)
    # Only this test's app has the route, so the OpenAPI coverage test never sees it.
    app.router.add_get("/api/test-boom", boom)
    client = await aiohttp_client(app)
    with caplog.at_level(logging.ERROR):
        resp = await client.get("/api/test-boom")
    assert resp.status == 500
    assert resp.content_type == "application/problem+json"
    text = await resp.text()
    problem = json.loads(text)
    assert PROBLEM_KEYS <= set(problem) and problem["status"] == 500
    for leak in ("Traceback", "RuntimeError", "hunter2", "secret internals", 'File "'):
        assert leak not in text
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    # The trace goes to the log instead.
    logged = [r for r in caplog.records if r.exc_info]
    assert logged and "hunter2" in str(logged[0].exc_info[1])  # type: ignore[index]
    # And the server carries on.
    assert (await client.get("/healthz")).status == 200

