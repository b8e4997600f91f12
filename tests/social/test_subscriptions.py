from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.helpers import check_openapi, sign_up
from tests.social.util import make_ready, new_video


async def test_subscribe_patch_list_delete(client: TestClient, openapi: dict[str, Any]) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    resp = await client.post(f"/api/subscriptions/{alice.channel_id}", headers=bob.headers)
    assert resp.status == 201
    body = await check_openapi(openapi, resp)
    assert body["notify"] == "all" and body["channel"]["id"] == alice.channel_id
    resp = await client.post(f"/api/subscriptions/{alice.channel_id}", headers=bob.headers,
                             json={"notify": "none"})
    assert resp.status == 200
    assert (await check_openapi(openapi, resp))["notify"] == "none"
    resp = await client.patch(f"/api/subscriptions/{alice.channel_id}", headers=bob.headers,
                              json={"notify": "all"})
    assert (await check_openapi(openapi, resp))["notify"] == "all"
    resp = await client.get("/api/subscriptions", headers=bob.headers)
    page = await check_openapi(openapi, resp)
    assert [s["channel"]["id"] for s in page["items"]] == [alice.channel_id]
    assert page["items"][0]["channel"]["subscriber_count"] == 1
    resp = await client.get(f"/api/channels/{alice.channel_id}")
    assert (await check_openapi(openapi, resp))["subscriber_count"] == 1
    resp = await client.delete(f"/api/subscriptions/{alice.channel_id}", headers=bob.headers)
    assert resp.status == 204
    resp = await client.delete(f"/api/subscriptions/{alice.channel_id}", headers=bob.headers)
    assert resp.status == 404
    await check_openapi(openapi, resp)
    resp = await client.patch(f"/api/subscriptions/{alice.channel_id}", headers=bob.headers,
                              json={"notify": "none"})
    assert resp.status == 404


async def test_subscription_errors(client: TestClient, openapi: dict[str, Any]) -> None:
    alice = await sign_up(client, "alice")
    resp = await client.post(f"/api/subscriptions/{alice.channel_id}", headers=alice.headers)
    assert resp.status == 409
    assert "own channel" in (await check_openapi(openapi, resp))["detail"]
    resp = await client.post("/api/subscriptions/nope-nope", headers=alice.headers)
    assert resp.status == 404
    await check_openapi(openapi, resp)
    bob = await sign_up(client, "bob")
    resp = await client.post(f"/api/subscriptions/{alice.channel_id}", headers=bob.headers,
                             json={"notify": "sometimes"})
    assert resp.status == 400
    assert (await check_openapi(openapi, resp))["errors"][0]["field"] == "notify"
    resp = await client.post(f"/api/subscriptions/{alice.channel_id}")
    assert resp.status == 401
    resp = await client.get("/api/subscriptions?limit=0", headers=bob.headers)
    assert resp.status == 400
    resp = await client.get("/api/subscriptions?cursor=!!", headers=bob.headers)
    assert resp.status == 400
    assert (await check_openapi(openapi, resp))["errors"][0]["field"] == "cursor"


async def test_feed_pages_public_ready_videos(client: TestClient,
                                              openapi: dict[str, Any]) -> None:
    alice, bob, carol = [await sign_up(client, n) for n in ("alice", "bob", "carol")]
    for who in (alice, carol):
        resp = await client.post(f"/api/subscriptions/{who.channel_id}", headers=bob.headers)
        assert resp.status == 201
    made = []
    for i in range(5):
        owner = alice if i % 2 else carol
        video = await new_video(client, owner, f"v{i}")
        await make_ready(client, owner, video)
        made.append(video)
    await new_video(client, alice, "still processing")
    private = await new_video(client, alice, "secret", privacy="private")
    await make_ready(client, alice, private)
    seen: list[str] = []
    cursor = None
    while True:
        url = "/api/feed?limit=2" + (f"&cursor={cursor}" if cursor else "")
        resp = await client.get(url, headers=bob.headers)
        page = await check_openapi(openapi, resp)
        seen += [v["id"] for v in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))


async def test_channel_videos_visibility(client: TestClient, openapi: dict[str, Any]) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    public = await new_video(client, alice, "public")
    await make_ready(client, alice, public)
    unlisted = await new_video(client, alice, "unlisted", privacy="unlisted", status="ready")
    private = await new_video(client, alice, "private", privacy="private", status="ready")
    url = f"/api/channels/{alice.channel_id}/videos"
    for headers in ({}, bob.headers):
        resp = await client.get(url, headers=headers)
        page = await check_openapi(openapi, resp)
        assert [v["id"] for v in page["items"]] == [public]
    resp = await client.get(url + "?limit=2", headers=alice.headers)
    page = await check_openapi(openapi, resp)
    assert [v["id"] for v in page["items"]] == [private, unlisted]
    resp = await client.get(url + f"?limit=2&cursor={page['next_cursor']}",
                            headers=alice.headers)
    page = await check_openapi(openapi, resp)
    assert [v["id"] for v in page["items"]] == [public] and page["next_cursor"] is None
    resp = await client.get("/api/channels/missing/videos")
    assert resp.status == 404
