"""What schemathesis found (tests/server/test_schemathesis.py), each pinned by a plain test:
ids beyond SQLite's 64 bits, and places where the document and the server disagreed."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.api.users import EMAIL_PATTERN
from server.openapi import NOT_BLANK
from server.validation import MAX_ID, parse_id
from tests.helpers import check_openapi, sign_up
from tests.social.util import new_video

HUGE = "161188548639819825152"  # the notification id that answered 500


@pytest.mark.parametrize(("raw", "value"), [
    ("1", 1), (str(MAX_ID), MAX_ID), (str(MAX_ID + 1), None), (HUGE, None), ("0", None),
    ("-3", None), ("+3", None), (" 3", None), ("3_0", None), ("٣", None), ("", None),
])
def test_parse_id(raw: str, value: int | None) -> None:
    assert parse_id(raw) == value


async def test_ids_past_64_bits_are_4xx(client: TestClient, openapi: dict[str, Any]) -> None:
    alice = await sign_up(client, "alice")  # the first account: an admin
    video = await new_video(client, alice, status="ready")
    for method, path, status in [
        ("POST", f"/api/notifications/{HUGE}/read", 404),
        ("POST", f"/api/notifications/{MAX_ID}/read", 404),
        ("PATCH", f"/api/videos/{video}/comments/{HUGE}", 400),
        ("DELETE", f"/api/videos/{video}/comments/{MAX_ID}", 404),
        ("GET", f"/api/videos/{video}/comments?parent_id={HUGE}", 400),
        ("PATCH", f"/api/admin/users/{HUGE}", 400),
    ]:
        resp = await client.request(method, path, headers=alice.headers,
                                    json={"body": "edit", "disabled": True})
        assert resp.status == status, (method, path, await resp.text())
        await check_openapi(openapi, resp)
    resp = await client.post(f"/api/videos/{video}/comments", headers=alice.headers,
                             json={"body": "a reply", "parent_id": int(HUGE)})
    assert resp.status == 400
    assert (await resp.json())["errors"][0]["field"] == "parent_id"


@pytest.mark.parametrize(("email", "valid"), [
    ("ana@example.org", True), ("名前@例え.jp", True), ("a\x1eb@example.org", False),
    ("a b@example.org", False), ("a\u3000b@example.org", False), ("a@b@c", False),
])
async def test_email_pattern_reads_the_same_everywhere(client: TestClient, email: str,
                                                       valid: bool) -> None:
    """The document's pattern spells its classes out: `\\s` in Python (the server's
    validator) takes \\x1c-\\x1f, which ECMA-262 (clients, generators) does not."""
    assert bool(re.search(EMAIL_PATTERN, email)) is valid
    alice = await sign_up(client, "alice")
    resp = await client.patch("/api/users/me", json={"email": email}, headers=alice.headers)
    assert resp.status == (200 if valid else 400), email


@pytest.mark.parametrize("text", ["", " ", "\t\n", "\x1e\u3000", "\u2028"])
async def test_blank_comment_is_what_the_document_calls_blank(client: TestClient,
                                                              text: str) -> None:
    assert re.search(NOT_BLANK, text) is None
    alice = await sign_up(client, "alice")
    video = await new_video(client, alice, status="ready")
    resp = await client.post(f"/api/videos/{video}/comments", json={"body": text},
                             headers=alice.headers)
    assert resp.status == 400


async def test_document_matches_what_was_found(openapi: dict[str, Any]) -> None:
    original = openapi["paths"]["/api/videos/{video_id}/original"]
    assert "video/mp4" in original["get"]["responses"]["200"]["content"]
    assert original["get"]["parameters"][1]["schema"] == {"type": "string"}  # ?download
    assert [p["in"] for p in original["options"]["parameters"]] == ["path"]
    post = openapi["paths"]["/api/uploads/{upload_id}"]["post"]
    override = next(p for p in post["parameters"] if p["name"] == "X-HTTP-Method-Override")
    assert override["required"] and override["schema"]["enum"] == ["PATCH", "DELETE", "HEAD"]
    comment = openapi["paths"]["/api/videos/{video_id}/comments/{comment_id}"]["patch"]
    assert comment["parameters"][1]["schema"]["type"] == "integer"
