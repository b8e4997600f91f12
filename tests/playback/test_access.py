"""Who may fetch each kind of media URL: every actor against every URL kind, for public,
unlisted and private videos. Hidden videos answer 404 (a private id cannot be probed);
bad signatures on a private video answer 403 problem+json; on a public or unlisted video
a signature is not even read (their URLs are the same for everyone, for good)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from server import keys
from tests.helpers import PASSWORD, User, sign_up
from tests.playback.conftest import Tree, add_video, make_admin

KINDS = [
    "hls/master.m3u8", "hls/360p/index.m3u8", "hls/360p/init.mp4", "hls/audio/seg_00000.m4s",
    "hls-ts/master.m3u8", "hls-ts/240p/index.m3u8", "hls-ts/240p/seg_00000.ts",
    "progressive/240p.mp4", "original", "poster.jpg", "storyboard/storyboard.vtt",
    "storyboard/sprite_000.jpg",
]
ACTORS = ["owner", "other", "anonymous", "admin", "signed", "expired", "tampered",
          "other-video"]
ALLOWED = {
    "public": set(ACTORS),
    "unlisted": set(ACTORS),
    "private": {"owner", "admin", "signed"},
}


class _OldSigner(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 10 * 24 * 3600


def _expired_grant(client: TestClient, vid: str, viewer: str) -> str:
    secret = (client.app[keys.CONFIG].data_dir / "secret.key").read_text().strip()
    serializer = URLSafeTimedSerializer(secret, salt="media-grant", signer=_OldSigner)
    return str(serializer.dumps({"v": vid, "w": viewer}))


def _with(path: str, sig: str) -> str:
    return f"{path}?sig={sig}"


async def _request(client: TestClient, vid: str, kind: str, actor: str,
                   people: dict[str, User], grants: dict[str, str]) -> tuple[int, Any]:
    path = f"/api/videos/{vid}/{kind}"
    headers = {}
    if actor in ("owner", "other", "admin"):
        headers = people[actor].headers
    elif actor != "anonymous":
        path = _with(path, grants[actor])
    resp = await client.get(path, headers=headers)
    body = await resp.read()
    return resp.status, (resp.content_type, body)


@pytest.mark.parametrize("privacy", ["public", "unlisted", "private"])
async def test_access_matrix(client: TestClient, hls_tree: Tree, privacy: str) -> None:
    owner = await sign_up(client, "owner")
    people = {"owner": owner, "other": await sign_up(client, "other"),
              "admin": await make_admin(client, "root")}
    vid = await add_video(client, owner, hls_tree, privacy=privacy)
    elsewhere = await add_video(client, owner, hls_tree, privacy="private")
    # The owner's signed URL, used with no header at all (as a TV or <video> would).
    signer = client.app[keys.SIGNER]
    signed = await (await client.get(f"/api/videos/{vid}", headers=owner.headers)).json()
    if privacy == "private":
        grant = signed["streams"]["hls"].split("sig=")[1]
    else:
        assert "sig=" not in signed["streams"]["hls"]
        grant = signer.media_grant(vid, f"u:{owner.id}", "s:any")
    other_video = (await (await client.get(f"/api/videos/{elsewhere}", headers=owner.headers)
                          ).json())["streams"]["hls"].split("sig=")[1]
    grants = {
        "signed": grant,
        "expired": _expired_grant(client, vid, f"u:{owner.id}"),
        "tampered": grant[:-3] + ("AAA" if not grant.endswith("AAA") else "BBB"),
        "other-video": other_video,
    }
    failures = []
    for kind in KINDS:
        for actor in ACTORS:
            status, (ctype, body) = await _request(client, vid, kind, actor, people, grants)
            if actor in ALLOWED[privacy]:
                want = 200
            elif actor in ("expired", "tampered", "other-video"):
                want = 403
            else:
                want = 404
            if status != want:
                failures.append(f"{kind} as {actor}: {status}, wanted {want}")
            elif status >= 400 and ctype != "application/problem+json":
                failures.append(f"{kind} as {actor}: {ctype}")
            elif status == 200 and not body:
                failures.append(f"{kind} as {actor}: empty body")
    assert not failures, "\n".join(failures)


async def test_making_a_video_private_stops_its_public_urls_at_once(
    client: TestClient, hls_tree: Tree
) -> None:
    owner = await sign_up(client, "owner")
    vid = await add_video(client, owner, hls_tree, privacy="unlisted")
    anon = (await (await client.get(f"/api/videos/{vid}")).json())["streams"]["hls"]
    assert (await client.get(anon)).status == 200
    resp = await client.patch(f"/api/videos/{vid}", json={"privacy": "private"},
                              headers=owner.headers)
    assert resp.status == 200
    denied = await client.get(anon)
    assert denied.status == 404 and denied.content_type == "application/problem+json"
    mine = (await (await client.get(f"/api/videos/{vid}", headers=owner.headers)).json())[
        "streams"]["hls"]
    assert "sig=" in mine and (await client.get(mine)).status == 200


async def test_public_media_urls_are_the_same_for_every_viewer(
    client: TestClient, hls_tree: Tree
) -> None:
    owner, other = await sign_up(client, "owner"), await sign_up(client, "other")
    vid = await add_video(client, owner, hls_tree, privacy="public")
    seen = []
    for headers in ({}, other.headers, owner.headers):
        body = await (await client.get(f"/api/videos/{vid}", headers=headers)).json()
        seen.append((body["streams"]["hls"], body["streams"]["hls_ts"], body["poster"],
                     body["storyboard"], [p["url"] for p in body["streams"]["progressive"]]))
        client.session.cookie_jar.clear()  # the anonymous viewer cookie plays no part
    assert seen[0] == seen[1] and seen[1][:4] == seen[2][:4]
    assert all("?" not in url for url in seen[0][:4])
    master = await (await client.get(seen[0][0])).text()
    media = await (await client.get(f"/api/videos/{vid}/hls/360p/index.m3u8")).text()
    assert "sig=" not in master + media


async def test_media_cache_headers(client: TestClient, hls_tree: Tree) -> None:
    owner = await sign_up(client, "owner")
    public = await add_video(client, owner, hls_tree, privacy="public")
    private = await add_video(client, owner, hls_tree, privacy="private")
    segment = await client.get(f"/api/videos/{public}/hls/360p/seg_00000.m4s")
    assert segment.headers["Cache-Control"] == (
        "public, max-age=31536000, immutable, s-maxage=300")
    etag = segment.headers["ETag"]
    assert etag.startswith('"')  # strong
    again = await client.get(f"/api/videos/{public}/hls/360p/seg_00000.m4s",
                             headers={"If-None-Match": etag})
    assert again.status == 304
    playlist = await client.get(f"/api/videos/{public}/hls/360p/index.m3u8")
    assert playlist.headers["Cache-Control"] == "public, max-age=60"
    assert "ETag" in playlist.headers and "Last-Modified" in playlist.headers
    mine = await client.get(f"/api/videos/{private}/hls/360p/seg_00000.m4s",
                            headers=owner.headers)
    assert mine.headers["Cache-Control"].startswith("private")
    # What one client may have, or one client's numbers, is never marked for sharing.
    assert not any(h.startswith("RateLimit") for h in playlist.headers)
    kept = await add_video(client, owner, hls_tree, privacy="public", allow_download=0)
    original = await client.get(f"/api/videos/{kept}/original", headers=owner.headers)
    assert original.status == 200 and original.headers["Cache-Control"].startswith("private")
    missing = await client.get(f"/api/videos/{public}/hls/360p/seg_00099.m4s")
    assert missing.status == 404 and missing.headers["Cache-Control"] == "no-store"


async def test_media_cors_on_every_answer_and_preflight(client: TestClient,
                                                        hls_tree: Tree) -> None:
    owner = await sign_up(client, "owner")
    vid = await add_video(client, owner, hls_tree, privacy="private")
    origin = {"Origin": "http://tv.local"}
    for path in (f"/api/videos/{vid}/hls/master.m3u8", "/api/videos/nope/poster.jpg",
                 f"/api/videos/{vid}/hls/360p/seg_00000.m4s?sig=forged"):
        resp = await client.get(path, headers=origin)
        assert resp.status in (403, 404), path
        assert resp.headers["Access-Control-Allow-Origin"] == "*", path
    ok = await client.get(f"/api/videos/{vid}/hls/360p/seg_00000.m4s",
                          headers={**owner.headers, "Range": "bytes=0-9"})
    assert ok.status == 206 and ok.headers["Access-Control-Allow-Origin"] == "*"
    preflight = await client.options(
        f"/api/videos/{vid}/hls/360p/seg_00000.m4s",
        headers={**origin, "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "range, authorization"})
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "range" in allowed and "authorization" in allowed
    plain = await client.options(f"/api/videos/{vid}/poster.jpg")
    assert plain.status == 204 and "GET" in plain.headers["Allow"]


async def test_original_needs_allow_download_unless_owner(
    client: TestClient, hls_tree: Tree
) -> None:
    owner = await sign_up(client, "owner")
    vid = await add_video(client, owner, hls_tree, allow_download=0)
    body = await (await client.get(f"/api/videos/{vid}")).json()
    assert body["streams"]["original"] is None
    assert (await client.get(f"/api/videos/{vid}/original")).status == 404
    resp = await client.get(f"/api/videos/{vid}/original?download=1", headers=owner.headers)
    assert resp.status == 200
    assert resp.headers["Content-Disposition"] == (
        "attachment; filename=\"holiday.mp4\"; filename*=UTF-8''holiday.mp4")


async def test_bad_names_are_404(client: TestClient, hls_tree: Tree) -> None:
    owner = await sign_up(client, "owner")
    vid = await add_video(client, owner, hls_tree)
    for path in ("hls/..%2F..%2Foriginal/index.m3u8",
                 "hls/360p/seg_1.m4s", "hls/nope/index.m3u8", "hls-ts/360p/seg_00099.ts",
                 "progressive/nope.mp4", "storyboard/secret.key", "hls/360p/index.m3u8x"):
        resp = await client.get(f"/api/videos/{vid}/{path}")
        assert resp.status == 404, path
    assert (await client.get("/api/videos/nope/hls/master.m3u8")).status == 404


async def test_media_responses_allow_other_origins(client: TestClient, hls_tree: Tree) -> None:
    owner = await sign_up(client, "owner")
    vid = await add_video(client, owner, hls_tree)
    resp = await client.get(f"/api/videos/{vid}/hls/360p/init.mp4",
                            headers={"Origin": "http://tv.local"})
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "Content-Range" in resp.headers["Access-Control-Expose-Headers"]


async def _signed_segment(client: TestClient, vid: str, headers: dict[str, str]) -> str:
    body = await (await client.get(f"/api/videos/{vid}", headers=headers)).json()
    master = body["streams"]["hls"]
    assert "sig=" in master
    return f"/api/videos/{vid}/hls/360p/seg_00000.m4s?" + master.split("?", 1)[1]


async def test_grants_end_with_their_session(client: TestClient, hls_tree: Tree) -> None:
    owner = await sign_up(client, "owner")
    vid = await add_video(client, owner, hls_tree, privacy="private")
    # A second sign-in of the same person (another device) and an API token.
    login = await client.post("/api/auth/login",
                              json={"username": "owner", "password": PASSWORD})
    phone = {"Authorization": f"Bearer {(await login.json())['access_token']}"}
    client.session.cookie_jar.clear()
    made = await client.post("/api/users/me/tokens", headers=owner.headers,
                             json={"name": "tv", "scopes": ["read"]})
    token = await made.json()
    tv = {"Authorization": f"Bearer {token['token']}"}
    urls = {name: await _signed_segment(client, vid, headers)
            for name, headers in (("laptop", owner.headers), ("phone", phone), ("tv", tv))}
    for url in urls.values():  # no header at all, as a TV's player fetches
        assert (await client.get(url)).status == 200

    # Revoking the TV's token ends its grant, and only its.
    assert (await client.delete(f"/api/users/me/tokens/{token['id']}",
                                headers=owner.headers)).status == 204
    assert (await client.get(urls["tv"])).status == 403
    assert (await client.get(urls["phone"])).status == 200
    # Changing the password on the laptop signs the phone out: its grant ends too.
    resp = await client.post("/api/users/me/password", headers=owner.headers, json={
        "current_password": PASSWORD, "new_password": PASSWORD + "!"})
    assert resp.status == 204
    denied = await client.get(urls["phone"])
    assert denied.status == 403 and denied.content_type == "application/problem+json"
    assert (await client.get(urls["laptop"])).status == 200
    # Signing out ends the laptop's own.
    refresh = owner.tokens["refresh_token"]
    assert (await client.post("/api/auth/logout", headers=owner.headers,
                              json={"refresh_token": refresh})).status == 204
    assert (await client.get(urls["laptop"])).status == 403
