"""Channels: public pages, create, rename, delete, ownership."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from server import keys, storage
from server.videos import create_video
from tests.helpers import check_openapi, sign_up
from tests.server.support import database_dump


async def test_channel_lifecycle(client: TestClient, openapi: dict[str, Any]) -> None:
    alice = await sign_up(client, "alice")
    resp = await client.post("/api/channels", headers=alice.headers, json={
        "handle": "cooking", "display_name": "Alice Cooks 🍳", "description": "Recipes."})
    assert resp.status == 201
    created = await check_openapi(openapi, resp)
    assert created["handle"] == "cooking" and created["owner"] == "alice"
    assert created["video_count"] == 0 and created["subscriber_count"] == 0

    # Public: by id or by handle, without signing in.
    for key in (created["id"], "cooking", "COOKING"):
        resp = await client.get(f"/api/channels/{key}")
        assert resp.status == 200, key
        assert (await check_openapi(openapi, resp))["id"] == created["id"]

    resp = await client.get("/api/users/me", headers=alice.headers)
    assert [c["handle"] for c in (await resp.json())["channels"]] == ["alice", "cooking"]

    resp = await client.patch(f"/api/channels/{created['id']}", headers=alice.headers,
                              json={"handle": "baking", "display_name": "Alice Bakes"})
    assert resp.status == 200
    renamed = await check_openapi(openapi, resp)
    assert (renamed["handle"], renamed["display_name"]) == ("baking", "Alice Bakes")
    assert renamed["description"] == "Recipes."
    assert (await client.get("/api/channels/cooking")).status == 404

    resp = await client.delete(f"/api/channels/{created['id']}", headers=alice.headers)
    assert resp.status == 204
    await check_openapi(openapi, resp)
    resp = await client.get(f"/api/channels/{created['id']}")
    assert resp.status == 404
    await check_openapi(openapi, resp)


async def test_handles_are_unique(client: TestClient, openapi: dict[str, Any]) -> None:
    alice = await sign_up(client, "alice")
    bob = await sign_up(client, "bob")
    resp = await client.post("/api/channels", headers=alice.headers,
                             json={"handle": "music", "display_name": "Music"})
    music = await resp.json()
    before = database_dump(client)
    for handle in ("music", "MUSIC", "bob"):
        resp = await client.post("/api/channels", headers=alice.headers,
                                 json={"handle": handle, "display_name": "Again"})
        assert resp.status == 409, handle
        assert (await check_openapi(openapi, resp))["type"].endswith("/handle-taken")
    # A rename onto a taken handle fails whole: the display name does not change either.
    resp = await client.patch(f"/api/channels/{music['id']}", headers=alice.headers,
                              json={"display_name": "Renamed", "handle": "bob"})
    assert resp.status == 409
    await check_openapi(openapi, resp)
    assert database_dump(client) == before
    resp = await client.get(f"/api/channels/{bob.channel_id}")
    assert (await resp.json())["owner"] == "bob"


async def test_default_channel_cannot_be_deleted(
    client: TestClient, openapi: dict[str, Any]
) -> None:
    alice = await sign_up(client, "alice")
    resp = await client.delete(f"/api/channels/{alice.channel_id}", headers=alice.headers)
    assert resp.status == 409
    await check_openapi(openapi, resp)
    assert (await client.get(f"/api/channels/{alice.channel_id}")).status == 200


async def test_others_cannot_change_my_channel(
    client: TestClient, openapi: dict[str, Any]
) -> None:
    await sign_up(client, "admin")
    alice = await sign_up(client, "alice")
    bob = await sign_up(client, "bob")
    resp = await client.post("/api/channels", headers=alice.headers,
                             json={"handle": "garden", "display_name": "Garden"})
    garden = await resp.json()
    before = database_dump(client)
    for method, body in (("PATCH", {"display_name": "Bob was here"}), ("DELETE", None)):
        resp = await client.request(method, f"/api/channels/{garden['id']}",
                                    headers=bob.headers, json=body)
        assert resp.status == 403, method
        await check_openapi(openapi, resp)
        resp = await client.request(method, f"/api/channels/{garden['id']}", json=body)
        assert resp.status == 401, method
    assert database_dump(client) == before
    resp = await client.get(f"/api/channels/{garden['id']}")
    assert (await resp.json())["display_name"] == "Garden"


async def test_unknown_channel(client: TestClient, openapi: dict[str, Any]) -> None:
    alice = await sign_up(client, "alice")
    for method in ("GET", "PATCH", "DELETE"):
        resp = await client.request(method, "/api/channels/nope-nope", headers=alice.headers,
                                    json={"display_name": "x"} if method == "PATCH" else None)
        assert resp.status == 404, method
        await check_openapi(openapi, resp)


async def test_deleting_a_channel_removes_its_videos_and_media(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    resp = await client.post("/api/channels", headers=alice.headers,
                             json={"handle": "trips", "display_name": "Trips"})
    trips = await resp.json()
    db = client.app[keys.DB]
    channel_key = await db.fetch_value("SELECT id FROM channels WHERE public_id = ?",
                                       (trips["id"],))
    video = await create_video(db, alice.id, channel_key, "Beach", status="ready")
    kept = await create_video(db, alice.id, await db.fetch_value(
        "SELECT id FROM channels WHERE public_id = ?", (alice.channel_id,)), "Home",
        status="ready")
    config = client.app[keys.CONFIG]
    for row in (video, kept):
        directory = storage.video_dir(config, row["public_id"])
        directory.mkdir(parents=True)
        (directory / "original").write_bytes(b"not really a video")
    assert (await client.get(f"/api/videos/{video['public_id']}")).status == 200

    resp = await client.delete(f"/api/channels/{trips['id']}", headers=alice.headers)
    assert resp.status == 204
    assert (await client.get(f"/api/videos/{video['public_id']}")).status == 404
    assert not storage.video_dir(config, video["public_id"]).exists()
    assert not list(config.media_dir.glob(video["public_id"] + "*"))
    # The other channel's video is untouched.
    assert (await client.get(f"/api/videos/{kept['public_id']}")).status == 200
    assert (storage.video_dir(config, kept["public_id"]) / "original").exists()
