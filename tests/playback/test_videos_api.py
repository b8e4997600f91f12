"""The video API around playback: metadata with stream URLs, listing with cursors, owner
edits and deletion, resume positions and view counting."""

from __future__ import annotations

import os
from typing import Any

from aiohttp.test_utils import TestClient

from server import keys, storage
from server.playback import watching
from tests.helpers import check_openapi, sign_up
from tests.playback.conftest import Tree, add_video, make_admin


async def test_video_json_lists_every_way_to_play(
    client: TestClient, hls_tree: Tree, openapi: dict[str, Any]
) -> None:
    alice = await sign_up(client, "alice")
    vid = await add_video(client, alice, hls_tree)
    body = await check_openapi(openapi, await client.get(f"/api/videos/{vid}"))
    streams = body["streams"]
    assert streams["hls"] == f"/api/videos/{vid}/hls/master.m3u8"  # public: the same for all
    assert streams["hls_ts"] == f"/api/videos/{vid}/hls-ts/master.m3u8"
    assert [(p["name"], p["height"]) for p in streams["progressive"]] == [
        ("360p", 360), ("240p", 240)]
    assert streams["original"] == f"/api/videos/{vid}/original"
    for url in (body["poster"], body["storyboard"], *(p["url"] for p in streams["progressive"])):
        resp = await client.get(url)
        assert resp.status == 200, url
    vtt = await (await client.get(body["storyboard"])).text()
    assert vtt.startswith("WEBVTT") and "sprite_000.jpg#xywh=" in vtt
    assert body["resume_position"] is None and body["views"] == 0


async def test_listing_filters_and_pages(
    client: TestClient, hls_tree: Tree, openapi: dict[str, Any]
) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    public = [await add_video(client, alice, hls_tree, views=n) for n in (5, 1, 9)]
    hidden = [await add_video(client, alice, hls_tree, privacy=p) for p in ("unlisted",
                                                                            "private")]
    processing = await add_video(client, alice, hls_tree, status="processing")
    bobs = await add_video(client, bob, hls_tree)

    seen, cursor = [], None
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = await check_openapi(openapi, await client.get(f"/api/videos?{query}"))
        seen += [v["id"] for v in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [bobs, *reversed(public)]  # newest first, public and ready only

    by_views = await (await client.get("/api/videos?sort=views")).json()
    assert [v["id"] for v in by_views["items"]] == [public[2], public[0], public[1], bobs]

    mine = await (await client.get(f"/api/videos?channel={alice.channel_id}",
                                   headers=alice.headers)).json()
    assert {v["id"] for v in mine["items"]} == {*public, *hidden, processing}
    theirs = await (await client.get(f"/api/videos?channel={alice.channel_id}",
                                     headers=bob.headers)).json()
    assert {v["id"] for v in theirs["items"]} == set(public)
    for bad in ("sort=best", "limit=0", "limit=x", "cursor=!!", "cursor=WzEsMl0"):
        resp = await client.get(f"/api/videos?{bad}")
        assert resp.status == 400, bad
        await check_openapi(openapi, resp)
    assert (await client.get("/api/videos?channel=nobody")).status == 404


async def test_owner_edits_and_others_cannot(
    client: TestClient, hls_tree: Tree, openapi: dict[str, Any]
) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    vid = await add_video(client, alice, hls_tree)
    resp = await client.patch(f"/api/videos/{vid}", headers=alice.headers, json={
        "title": "Holiday", "description": "sea", "privacy": "unlisted",
        "comments_enabled": False, "allow_download": False})
    body = await check_openapi(openapi, resp)
    assert (body["title"], body["privacy"], body["comments_enabled"],
            body["allow_download"]) == ("Holiday", "unlisted", False, False)
    assert body["published_at"] is None
    body = await (await client.patch(f"/api/videos/{vid}", headers=alice.headers,
                                     json={"privacy": "public"})).json()
    assert body["published_at"] is not None  # announced once made public
    assert (await client.patch(f"/api/videos/{vid}", headers=bob.headers,
                               json={"title": "mine"})).status == 403
    assert (await client.patch(f"/api/videos/{vid}", json={"title": "x"})).status == 401
    for bad in ({}, {"title": ""}, {"privacy": "secret"}, {"views": 9}, {"title": 3}):
        resp = await client.patch(f"/api/videos/{vid}", headers=alice.headers, json=bad)
        assert resp.status == 400, bad
        await check_openapi(openapi, resp)


async def test_delete_removes_row_and_files(
    client: TestClient, hls_tree: Tree, openapi: dict[str, Any]
) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    admin = await make_admin(client, "root")
    vid = await add_video(client, alice, hls_tree)
    other = await add_video(client, alice, hls_tree)
    assert (await client.get(f"/api/videos/{vid}/hls/360p/seg_00000.m4s")).status == 200
    assert (await client.delete(f"/api/videos/{vid}", headers=bob.headers)).status == 403
    resp = await client.delete(f"/api/videos/{vid}", headers=alice.headers)
    assert resp.status == 204
    await check_openapi(openapi, resp)
    media = client.app[keys.CONFIG].media_dir
    assert not storage.video_dir(client.app[keys.CONFIG], vid).exists()
    assert not [p for p in media.iterdir() if p.name.startswith(vid)]
    # No descriptor kept for serving still points into the removed folder.
    links = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
             if os.path.exists(f"/proc/self/fd/{fd}")]
    assert not [link for link in links if vid in link]
    assert (await client.get(f"/api/videos/{vid}")).status == 404
    assert (await client.get(f"/api/videos/{vid}/hls/360p/seg_00000.m4s")).status == 404
    assert (await client.delete(f"/api/videos/{other}", headers=admin.headers)).status == 204


async def _age_reports(client: TestClient, vid: str, seconds: float) -> None:
    """Moves the video's last progress reports back in time, as if the viewer had been
    watching for `seconds` since."""
    await client.app[keys.DB].write(
        "UPDATE watch_positions SET updated_at = updated_at - ?"
        " WHERE video_id = (SELECT id FROM videos WHERE public_id = ?)", (seconds, vid))


async def test_progress_resumes_and_counts_views_after_ten_seconds(
    client: TestClient, hls_tree: Tree, openapi: dict[str, Any]
) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    vid = await add_video(client, alice, hls_tree)
    url = f"/api/videos/{vid}/progress"
    resp = await client.post(url, headers=bob.headers, json={"position": 1.5, "watched": 6})
    body = await check_openapi(openapi, resp)
    assert body == {"position": 1.5, "views": 0, "counted": False}  # a first report: 0 s
    await _age_reports(client, vid, 20)
    resp = await client.post(url, headers=bob.headers, json={"position": 3, "watched": 12})
    assert (await resp.json())["counted"] is True
    resp = await client.post(url, headers=bob.headers, json={"position": 3.5, "watched": 30})
    assert await resp.json() == {"position": 3.5, "views": 1, "counted": False}
    info = await (await client.get(f"/api/videos/{vid}", headers=bob.headers)).json()
    assert info["views"] == 1 and info["resume_position"] == 3.5
    other = await (await client.get(f"/api/videos/{vid}", headers=alice.headers)).json()
    assert other["resume_position"] is None
    for bad in ({}, {"position": -1}, {"position": "x"}, {"position": 1, "extra": 1}):
        resp = await client.post(url, headers=bob.headers, json=bad)
        assert resp.status == 400, bad
    assert (await client.post("/api/videos/nope/progress", json={"position": 1})).status == 404


async def test_anonymous_viewers_are_told_apart_by_cookie(
    client: TestClient, hls_tree: Tree
) -> None:
    alice = await sign_up(client, "alice")
    vid = await add_video(client, alice, hls_tree)
    url = f"/api/videos/{vid}/progress"
    resp = await client.post(url, json={"position": 2, "watched": 12})
    assert "rh_viewer" in resp.cookies
    await _age_reports(client, vid, 20)
    resp = await client.post(url, json={"position": 2.2, "watched": 12})
    assert (await resp.json())["counted"] is True
    await _age_reports(client, vid, 20)
    again = await client.post(url, json={"position": 2.5, "watched": 12})
    assert (await again.json())["counted"] is False  # the same cookie: the same viewer
    info = await (await client.get(f"/api/videos/{vid}")).json()
    assert info["resume_position"] == 2.5 and info["views"] == 1
    client.session.cookie_jar.clear()
    # Without its cookie a client is a new viewer each time, whose first report vouches
    # for no watching: dropping cookies cannot inflate the count.
    for _ in range(3):
        client.session.cookie_jar.clear()
        fresh = await client.post(url, json={"position": 1, "watched": 12})
        assert await fresh.json() == {"position": 1, "views": 1, "counted": False}


async def test_a_view_counts_once_per_hour(client: TestClient, hls_tree: Tree) -> None:
    alice = await sign_up(client, "alice")
    vid = await add_video(client, alice, hls_tree)
    db = client.app[keys.DB]
    key = await db.fetch_value("SELECT id FROM videos WHERE public_id = ?", (vid,))
    start = 1_800_000_000.0
    # No `watched`: the position's advance counts, bounded by the time between reports.
    assert not await watching.record_progress(db, key, "u:9", 0, None, 60, now=start)
    assert not await watching.record_progress(db, key, "u:9", 40, None, 60, now=start + 4)
    assert await watching.record_progress(db, key, "u:9", 48, None, 60, now=start + 12)
    assert not await watching.record_progress(db, key, "u:9", 59, 30, 60, now=start + 1800)
    assert not await watching.record_progress(db, key, "u:9", 1, 5, 60, now=start + 3601)
    assert await watching.record_progress(db, key, "u:9", 8, 5, 60, now=start + 3606)
    assert await db.fetch_value("SELECT views FROM videos WHERE id = ?", (key,)) == 2
    # A report vouches for no more time than passed since the viewer's previous one.
    assert not await watching.record_progress(db, key, "u:7", 0, 3000, 60, now=start)
    assert not await watching.record_progress(db, key, "u:7", 1, 3000, 60, now=start + 2)
    assert not await watching.record_progress(db, key, "u:7", 2, 3000, 60, now=start + 9)
    assert await watching.record_progress(db, key, "u:7", 3, 3000, 60, now=start + 10)
