from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.helpers import check_openapi, sign_up
from tests.social.util import make_ready, new_video, subscribe


async def test_inbox_unread_first_and_marking(client: TestClient,
                                              openapi: dict[str, Any]) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    await subscribe(client, bob, alice.channel_id)
    videos = []
    for i in range(4):
        video = await new_video(client, alice, f"v{i}")
        await make_ready(client, alice, video)
        videos.append(video)
    resp = await client.get("/api/notifications", headers=bob.headers)
    inbox = await check_openapi(openapi, resp)
    assert inbox["unread_count"] == 4
    ids = [n["id"] for n in inbox["items"]]
    resp = await client.post(f"/api/notifications/{ids[0]}/read", headers=bob.headers)
    assert (await check_openapi(openapi, resp))["read"] is True
    resp = await client.get("/api/notifications?limit=2", headers=bob.headers)
    page = await check_openapi(openapi, resp)
    assert page["unread_count"] == 3
    assert [n["id"] for n in page["items"]] == ids[1:3]
    resp = await client.get(f"/api/notifications?limit=2&cursor={page['next_cursor']}",
                            headers=bob.headers)
    page = await check_openapi(openapi, resp)
    assert [(n["id"], n["read"]) for n in page["items"]] == [(ids[3], False), (ids[0], True)]
    assert page["next_cursor"] is None
    # Someone else's notification is not there for alice.
    resp = await client.post(f"/api/notifications/{ids[1]}/read", headers=alice.headers)
    assert resp.status == 404
    await check_openapi(openapi, resp)
    resp = await client.post("/api/notifications/abc/read", headers=bob.headers)
    assert resp.status == 404
    resp = await client.post("/api/notifications/read-all", headers=bob.headers)
    assert await check_openapi(openapi, resp) == {"marked": 3, "unread_count": 0}
    resp = await client.get("/api/notifications")
    assert resp.status == 401


async def test_kinds_follow_preferences(client: TestClient, openapi: dict[str, Any]) -> None:
    alice, bob, carol = [await sign_up(client, n) for n in ("alice", "bob", "carol")]
    await subscribe(client, bob, alice.channel_id)
    await subscribe(client, carol, alice.channel_id)
    resp = await client.get("/api/notifications", headers=alice.headers)
    notes = (await check_openapi(openapi, resp))["items"]
    assert [(n["kind"], n["data"]["actor"]) for n in notes] == \
        [("subscriber", "carol"), ("subscriber", "bob")]
    # Re-subscribing is not a new subscriber.
    await subscribe(client, bob, alice.channel_id, notify="all")
    resp = await client.patch("/api/users/me", headers=carol.headers,
                              json={"preferences": {"notifications": {"new_video": False}}})
    assert resp.status == 200, await resp.text()
    resp = await client.patch("/api/users/me", headers=alice.headers,
                              json={"preferences": {"notifications": {"video_processed": False}}})
    assert resp.status == 200
    video = await new_video(client, alice)
    await make_ready(client, alice, video)
    resp = await client.get("/api/notifications", headers=bob.headers)
    assert [n["kind"] for n in (await resp.json())["items"]] == ["new_video"]
    resp = await client.get("/api/notifications", headers=carol.headers)
    assert (await resp.json())["items"] == []
    resp = await client.get("/api/notifications", headers=alice.headers)
    assert [n["kind"] for n in (await resp.json())["items"]] == ["subscriber", "subscriber"]


async def test_private_and_unlisted_videos_are_not_announced(client: TestClient) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    await subscribe(client, bob, alice.channel_id)
    for privacy in ("private", "unlisted"):
        video = await new_video(client, alice, privacy=privacy)
        await make_ready(client, alice, video)
    resp = await client.get("/api/notifications", headers=bob.headers)
    assert (await resp.json())["items"] == []
    resp = await client.get("/api/notifications", headers=alice.headers)
    kinds = [n["kind"] for n in (await resp.json())["items"]]
    assert kinds == ["video_processed", "video_processed", "subscriber"]


async def test_video_made_public_later_is_announced_once(client: TestClient) -> None:
    from server import events, keys
    from tests.social.util import app_of

    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    await subscribe(client, bob, alice.channel_id)
    video = await new_video(client, alice, privacy="private")
    await make_ready(client, alice, video)
    app = app_of(client)
    await app[keys.DB].write("UPDATE videos SET privacy = 'public' WHERE public_id = ?",
                             (video,))
    for _ in range(2):
        await events.video_visibility_changed(app[keys.SERVICES], video)
    resp = await client.get("/api/notifications", headers=bob.headers)
    assert [n["kind"] for n in (await resp.json())["items"]] == ["new_video"]
    resp = await client.get("/api/notifications", headers=alice.headers)
    assert [n["kind"] for n in (await resp.json())["items"]] == ["video_processed",
                                                                 "subscriber"]
