from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from server import keys
from tests.helpers import check_openapi, sign_up
from tests.social.util import app_of, new_video


async def _post(client: TestClient, openapi: dict[str, Any], user: Any, video: str,
                body: Any, parent: int | None = None, status: int = 201) -> Any:
    payload: dict[str, Any] = {"body": body}
    if parent is not None:
        payload["parent_id"] = parent
    resp = await client.post(f"/api/videos/{video}/comments", json=payload,
                             headers=user.headers)
    assert resp.status == status, await resp.text()
    return await check_openapi(openapi, resp)


async def test_threads_pagination_and_notifications(client: TestClient,
                                                    openapi: dict[str, Any]) -> None:
    alice, bob, carol = [await sign_up(client, n) for n in ("alice", "bob", "carol")]
    video = await new_video(client, alice, status="ready")
    top = [await _post(client, openapi, bob, video, f"  comment {i}  ") for i in range(3)]
    assert top[0]["body"] == "comment 0" and top[0]["author"]["username"] == "bob"
    reply = await _post(client, openapi, carol, video, "a reply", parent=top[0]["id"])
    assert reply["parent_id"] == top[0]["id"]
    resp = await client.get(f"/api/videos/{video}/comments?limit=2")
    page = await check_openapi(openapi, resp)
    assert [c["id"] for c in page["items"]] == [top[2]["id"], top[1]["id"]]
    resp = await client.get(f"/api/videos/{video}/comments?limit=2"
                            f"&cursor={page['next_cursor']}")
    page = await check_openapi(openapi, resp)
    assert [c["id"] for c in page["items"]] == [top[0]["id"]]
    assert page["items"][0]["reply_count"] == 1 and page["next_cursor"] is None
    resp = await client.get(f"/api/videos/{video}/comments?parent_id={top[0]['id']}")
    assert [c["body"] for c in (await check_openapi(openapi, resp))["items"]] == ["a reply"]
    # alice (owner) heard of every comment; bob of carol's reply; nobody of their own.
    resp = await client.get("/api/notifications", headers=alice.headers)
    kinds = [n["kind"] for n in (await check_openapi(openapi, resp))["items"]]
    assert kinds == ["comment"] * 4
    resp = await client.get("/api/notifications", headers=bob.headers)
    notes = (await check_openapi(openapi, resp))["items"]
    assert [n["kind"] for n in notes] == ["reply"]
    assert notes[0]["data"]["actor"] == "carol"
    resp = await client.get("/api/notifications", headers=carol.headers)
    assert (await resp.json())["items"] == []


async def test_edit_and_delete_rules(client: TestClient, openapi: dict[str, Any]) -> None:
    admin, alice, bob, carol = [await sign_up(client, n)
                                for n in ("admin", "alice", "bob", "carol")]
    video = await new_video(client, alice, status="ready")
    mine = await _post(client, openapi, bob, video, "original")
    url = f"/api/videos/{video}/comments/{mine['id']}"
    resp = await client.patch(url, json={"body": "hijacked"}, headers=alice.headers)
    assert resp.status == 403
    await check_openapi(openapi, resp)
    resp = await client.patch(url, json={"body": "edited"}, headers=bob.headers)
    edited = await check_openapi(openapi, resp)
    assert edited["body"] == "edited" and edited["edited_at"] and edited["can_edit"]
    resp = await client.delete(url, headers=carol.headers)
    assert resp.status == 403
    # The video's owner may delete others' comments; an admin too.
    resp = await client.delete(url, headers=alice.headers)
    assert resp.status == 204
    other = await _post(client, openapi, carol, video, "by carol")
    resp = await client.delete(f"/api/videos/{video}/comments/{other['id']}",
                               headers=admin.headers)
    assert resp.status == 204
    # A deleted comment with replies stays as a placeholder; it goes with its last reply.
    parent = await _post(client, openapi, bob, video, "parent")
    child = await _post(client, openapi, carol, video, "child", parent=parent["id"])
    resp = await client.delete(f"/api/videos/{video}/comments/{parent['id']}",
                               headers=bob.headers)
    assert resp.status == 204
    resp = await client.get(f"/api/videos/{video}/comments")
    items = (await check_openapi(openapi, resp))["items"]
    assert [(c["body"], c["deleted"], c["author"]) for c in items] == \
        [("[deleted]", True, None)]
    await _post(client, openapi, carol, video, "to a ghost", parent=parent["id"], status=409)
    resp = await client.patch(f"/api/videos/{video}/comments/{parent['id']}",
                              json={"body": "back"}, headers=bob.headers)
    assert resp.status == 409
    resp = await client.delete(f"/api/videos/{video}/comments/{child['id']}",
                               headers=carol.headers)
    assert resp.status == 204
    resp = await client.get(f"/api/videos/{video}/comments")
    assert (await resp.json())["items"] == []


async def test_bad_comments_get_clear_4xx(client: TestClient, openapi: dict[str, Any]) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    video = await new_video(client, alice, status="ready")
    for body in ("", "   \n\t ", "x" * 100_000, "x" * 10_001):
        problem = await _post(client, openapi, bob, video, body, status=400)
        assert problem["errors"][0]["field"] == "body", problem
    assert (await _post(client, openapi, bob, video, " " + "y" * 10_000 + " "))["body"]
    problem = await _post(client, openapi, bob, video, "hi", parent=999_999, status=404)
    assert "999999" in problem["detail"]
    problem = await _post(client, openapi, bob, video, 5, status=400)
    resp = await client.post(f"/api/videos/{video}/comments", data="not json",
                             headers={**bob.headers, "Content-Type": "application/json"})
    assert resp.status == 400
    await check_openapi(openapi, resp)
    resp = await client.post(f"/api/videos/{video}/comments", json={"body": "anon"})
    assert resp.status == 401
    resp = await client.get(f"/api/videos/{video}/comments?parent_id=abc")
    assert resp.status == 400
    # A video with comments turned off (the column the video settings PATCH sets).
    await app_of(client)[keys.DB].write(
        "UPDATE videos SET comments_enabled = 0 WHERE public_id = ?", (video,))
    problem = await _post(client, openapi, bob, video, "hello?", status=403)
    assert "turned off" in problem["detail"]


async def test_private_video_comments_are_hidden(client: TestClient,
                                                 openapi: dict[str, Any]) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    video = await new_video(client, alice, privacy="private", status="ready")
    await _post(client, openapi, alice, video, "note to self")
    for headers in ({}, bob.headers):
        resp = await client.get(f"/api/videos/{video}/comments", headers=headers)
        assert resp.status == 404
    await _post(client, openapi, bob, video, "sneaky", status=404)
    resp = await client.put(f"/api/videos/{video}/rating", json={"rating": "like"},
                            headers=bob.headers)
    assert resp.status == 404


async def test_ratings_one_per_user(client: TestClient, openapi: dict[str, Any]) -> None:
    alice, bob, carol = [await sign_up(client, n) for n in ("alice", "bob", "carol")]
    video = await new_video(client, alice, status="ready")
    url = f"/api/videos/{video}/rating"

    async def rate(user: Any, rating: str) -> Any:
        resp = await client.put(url, json={"rating": rating}, headers=user.headers)
        assert resp.status == 200, await resp.text()
        return await check_openapi(openapi, resp)

    assert await rate(bob, "like") == {"rating": "like", "likes": 1, "dislikes": 0}
    assert await rate(bob, "like") == {"rating": "like", "likes": 1, "dislikes": 0}
    assert await rate(carol, "dislike") == {"rating": "dislike", "likes": 1, "dislikes": 1}
    assert await rate(bob, "dislike") == {"rating": "dislike", "likes": 0, "dislikes": 2}
    assert await rate(carol, "none") == {"rating": "none", "likes": 0, "dislikes": 1}
    resp = await client.get(url, headers=bob.headers)
    assert await check_openapi(openapi, resp) == {"rating": "dislike", "likes": 0,
                                                  "dislikes": 1}
    resp = await client.get(f"/api/videos/{video}")
    assert (await resp.json())["dislikes"] == 1
    resp = await client.put(url, json={"rating": "love"}, headers=bob.headers)
    assert resp.status == 400
    await check_openapi(openapi, resp)
