"""The tus 1.0.0 protocol over raw HTTP: every status code the protocol text asks for."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

from aiohttp.test_utils import TestClient

from server.config import Config
from tests.helpers import check_openapi, sign_up
from tests.uploads.tushelp import OCTETS, TUS, create, metadata, patch, path_of, tus_headers


async def test_options_discovery(client: TestClient, config: Config) -> None:
    resp = await client.options("/api/uploads")
    assert resp.status == 204
    assert resp.headers["Tus-Version"] == "1.0.0"
    extensions = set(resp.headers["Tus-Extension"].split(","))
    assert extensions == {"creation", "creation-with-upload", "creation-defer-length",
                          "checksum", "expiration", "termination", "concatenation",
                          "concatenation-unfinished"}
    assert set(resp.headers["Tus-Checksum-Algorithm"].split(",")) == {"sha1", "md5", "sha256"}
    assert resp.headers["Tus-Max-Size"] == str(config.max_upload_bytes)
    # Not required of an OPTIONS request, but carried by its answer, as in the spec's example.
    assert resp.headers["Tus-Resumable"] == "1.0.0"


async def test_unsupported_version_412(client: TestClient, openapi: dict[str, Any]) -> None:
    alice = await sign_up(client, "alice")
    headers = {**alice.headers, "Tus-Resumable": "0.2.2", "Upload-Length": "10"}
    resp = await client.post("/api/uploads", headers=headers)
    assert resp.status == 412
    assert resp.headers["Tus-Version"] == "1.0.0"
    assert resp.headers["Tus-Resumable"] == "1.0.0"
    await check_openapi(openapi, resp)
    resp = await client.post("/api/uploads", headers={**alice.headers, "Upload-Length": "10"})
    assert resp.status == 412


async def test_creation_needs_a_user(client: TestClient) -> None:
    resp = await client.post("/api/uploads", headers={**TUS, "Upload-Length": "10"})
    assert resp.status == 401
    assert resp.content_type == "application/problem+json"


async def test_create_head_patch_offsets(client: TestClient, openapi: dict[str, Any],
                                         clip_bytes: bytes) -> None:
    alice = await sign_up(client, "alice")
    resp = await create(client, alice, len(clip_bytes), filename="a.mp4", title="First",
                        privacy="private")
    await check_openapi(openapi, resp)
    assert resp.headers["Tus-Resumable"] == "1.0.0"
    assert "Upload-Expires" in resp.headers
    video_id = resp.headers["Video-Id"]
    path = path_of(resp.headers["Location"])
    video = await (await client.get(f"/api/videos/{video_id}", headers=alice.headers)).json()
    assert video["status"] == "uploading" and video["title"] == "First"
    assert video["privacy"] == "private" and video["bytes_received"] == 0

    head = await client.head(path, headers=tus_headers(alice))
    assert head.status == 200
    assert head.headers["Upload-Offset"] == "0"
    assert head.headers["Upload-Length"] == str(len(clip_bytes))
    assert head.headers["Cache-Control"] == "no-store"
    assert head.headers["Upload-Metadata"] == metadata(filename="a.mp4", title="First",
                                                       privacy="private")

    half = len(clip_bytes) // 2
    resp = await patch(client, alice, path, 0, clip_bytes[:half])
    assert resp.status == 204, await resp.text()
    assert resp.headers["Upload-Offset"] == str(half)
    assert "Upload-Expires" in resp.headers
    video = await (await client.get(f"/api/videos/{video_id}", headers=alice.headers)).json()
    assert video["bytes_received"] == half and video["status"] == "uploading"

    stale = await patch(client, alice, path, 0, clip_bytes[:10])
    assert stale.status == 409
    assert stale.headers["Tus-Resumable"] == "1.0.0"
    await check_openapi(openapi, stale)

    wrong_type = await client.patch(path, data=clip_bytes[half:], headers={
        **tus_headers(alice), "Upload-Offset": str(half), "Content-Type": "text/plain"})
    assert wrong_type.status == 415

    resp = await patch(client, alice, path, half, clip_bytes[half:])
    assert resp.status == 204
    assert resp.headers["Upload-Offset"] == str(len(clip_bytes))
    video = await (await client.get(f"/api/videos/{video_id}", headers=alice.headers)).json()
    assert video["status"] in ("uploaded", "processing", "ready")
    assert video["size"] == len(clip_bytes)
    head = await client.head(path, headers=tus_headers(alice))
    assert head.headers["Upload-Offset"] == str(len(clip_bytes))


async def test_bad_metadata_names_the_key(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    for header, key in [
        (metadata(privacy="secret"), "privacy"),
        ("title !!!notbase64", "title"),
        (metadata(channel="nobody-has-this"), "channel"),
        (metadata(title="x" * 300), "title"),
    ]:
        resp = await client.post("/api/uploads", headers={
            **tus_headers(alice), "Upload-Length": "100", "Upload-Metadata": header})
        assert resp.status == 400, header
        body = await resp.json()
        assert key in body["detail"]
        assert body["errors"][0]["field"] == key


async def test_metadata_channel_by_handle(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    handle = alice.profile["channels"][0]["handle"]
    resp = await create(client, alice, 100, channel=handle, title="On my channel")
    video = await (await client.get(f"/api/videos/{resp.headers['Video-Id']}")).json()
    assert video["channel"]["handle"] == handle


async def test_checksum_mismatch_460(client: TestClient, clip_bytes: bytes,
                                     openapi: dict[str, Any]) -> None:
    alice = await sign_up(client, "alice")
    path = path_of((await create(client, alice, len(clip_bytes))).headers["Location"])
    chunk = clip_bytes[:5000]
    wrong = base64.b64encode(hashlib.sha1(b"other").digest()).decode()
    resp = await patch(client, alice, path, 0, chunk, Upload_Checksum=f"sha1 {wrong}")
    assert resp.status == 460
    assert resp.headers["Tus-Resumable"] == "1.0.0"
    await check_openapi(openapi, resp)
    head = await client.head(path, headers=tus_headers(alice))
    assert head.headers["Upload-Offset"] == "0"
    for name in ("sha1", "md5", "sha256"):
        digest = base64.b64encode(hashlib.new(name, chunk).digest()).decode()
        offset = int(head.headers["Upload-Offset"])
        resp = await patch(client, alice, path, offset, chunk,
                           Upload_Checksum=f"{name} {digest}")
        assert resp.status == 204
        head = await client.head(path, headers=tus_headers(alice))
        assert head.headers["Upload-Offset"] == str(offset + len(chunk))
    resp = await patch(client, alice, path, 15000, chunk, Upload_Checksum="crc32 AAAA")
    assert resp.status == 400


async def test_too_large_413(client: TestClient, config: Config,
                             openapi: dict[str, Any]) -> None:
    alice = await sign_up(client, "alice")
    resp = await client.post("/api/uploads", headers={
        **tus_headers(alice), "Upload-Length": str(config.max_upload_bytes + 1)})
    assert resp.status == 413
    assert resp.headers["Tus-Resumable"] == "1.0.0"
    await check_openapi(openapi, resp)
    path = path_of((await create(client, alice, 10)).headers["Location"])
    resp = await patch(client, alice, path, 0, b"\x00\x00\x00\x18ftypisom" + b"\x00" * 20)
    assert resp.status == 413


async def test_unknown_404_and_other_user_403(client: TestClient, clip_bytes: bytes) -> None:
    alice = await sign_up(client, "alice")
    mallory = await sign_up(client, "mallory")
    resp = await client.head("/api/uploads/nope", headers=tus_headers(alice))
    assert resp.status == 404 and resp.headers["Tus-Resumable"] == "1.0.0"
    resp = await patch(client, alice, "/api/uploads/nope", 0, b"x")
    assert resp.status == 404
    path = path_of((await create(client, alice, len(clip_bytes))).headers["Location"])
    for method in ("HEAD", "DELETE"):
        resp = await client.request(method, path, headers=tus_headers(mallory))
        assert resp.status == 403, method
    resp = await patch(client, mallory, path, 0, clip_bytes[:1000])
    assert resp.status == 403
    head = await client.head(path, headers=tus_headers(alice))
    assert head.headers["Upload-Offset"] == "0"


async def test_expired_410_and_sweep(client: TestClient, config: Config,
                                     clip_bytes: bytes) -> None:
    from server import keys
    from server.uploads.sweeper import sweep_once

    alice = await sign_up(client, "alice")
    resp = await create(client, alice, len(clip_bytes))
    path, video_id = path_of(resp.headers["Location"]), resp.headers["Video-Id"]
    assert (await patch(client, alice, path, 0, clip_bytes[:4096])).status == 204
    app = client.server.app
    db = app[keys.DB]
    await db.write("UPDATE uploads SET expires_at = ?", (time.time() - 1,))
    resp = await patch(client, alice, path, 4096, clip_bytes[4096:8192])
    assert resp.status == 410
    file = config.uploads_dir / path.rsplit("/", 1)[1]
    assert file.exists()
    assert await sweep_once(app[keys.SERVICES], app[keys.UPLOADS]) == 1
    assert not file.exists()
    assert (await client.head(path, headers=tus_headers(alice))).status == 410
    assert (await client.get(f"/api/videos/{video_id}", headers=alice.headers)).status == 404


async def test_termination(client: TestClient, config: Config, clip_bytes: bytes) -> None:
    alice = await sign_up(client, "alice")
    resp = await create(client, alice, len(clip_bytes))
    path, video_id = path_of(resp.headers["Location"]), resp.headers["Video-Id"]
    assert (await patch(client, alice, path, 0, clip_bytes[:5000])).status == 204
    resp = await client.delete(path, headers=tus_headers(alice))
    assert resp.status == 204 and resp.headers["Tus-Resumable"] == "1.0.0"
    assert not (config.uploads_dir / path.rsplit("/", 1)[1]).exists()
    assert (await client.head(path, headers=tus_headers(alice))).status == 404
    assert (await patch(client, alice, path, 5000, b"x")).status == 404
    assert (await client.get(f"/api/videos/{video_id}", headers=alice.headers)).status == 404


async def test_method_override(client: TestClient, clip_bytes: bytes) -> None:
    alice = await sign_up(client, "alice")
    path = path_of((await create(client, alice, len(clip_bytes))).headers["Location"])
    resp = await client.post(path, data=clip_bytes[:1000], headers={
        **tus_headers(alice), "X-HTTP-Method-Override": "PATCH", "Upload-Offset": "0",
        "Content-Type": OCTETS})
    assert resp.status == 204
    assert resp.headers["Upload-Offset"] == "1000"
    resp = await client.post(path, headers={**tus_headers(alice),
                                            "X-HTTP-Method-Override": "HEAD"})
    assert resp.status == 200 and resp.headers["Upload-Offset"] == "1000"
    resp = await client.post(path, headers={**tus_headers(alice),
                                            "X-HTTP-Method-Override": "DELETE"})
    assert resp.status == 204
    assert (await client.head(path, headers=tus_headers(alice))).status == 404


async def test_deferred_length(client: TestClient, clip_bytes: bytes) -> None:
    alice = await sign_up(client, "alice")
    resp = await create(client, alice, None, filename="later.mp4")
    path, video_id = path_of(resp.headers["Location"]), resp.headers["Video-Id"]
    head = await client.head(path, headers=tus_headers(alice))
    assert head.headers["Upload-Defer-Length"] == "1"
    assert "Upload-Length" not in head.headers
    assert (await patch(client, alice, path, 0, clip_bytes[:6000])).status == 204
    size = str(len(clip_bytes))
    resp = await patch(client, alice, path, 6000, clip_bytes[6000:], Upload_Length=size)
    assert resp.status == 204
    head = await client.head(path, headers=tus_headers(alice))
    assert head.headers["Upload-Length"] == size == head.headers["Upload-Offset"]
    video = await (await client.get(f"/api/videos/{video_id}", headers=alice.headers)).json()
    assert video["status"] != "uploading" and video["size"] == len(clip_bytes)


async def test_creation_with_upload(client: TestClient, clip_bytes: bytes) -> None:
    alice = await sign_up(client, "alice")
    resp = await client.post("/api/uploads", data=clip_bytes, headers={
        **tus_headers(alice), "Upload-Length": str(len(clip_bytes)), "Content-Type": OCTETS,
        "Upload-Metadata": metadata(filename="one-shot.mp4")})
    assert resp.status == 201
    assert resp.headers["Upload-Offset"] == str(len(clip_bytes))
    video = await (await client.get(f"/api/videos/{resp.headers['Video-Id']}",
                                    headers=alice.headers)).json()
    assert video["title"] == "one-shot" and video["status"] != "uploading"


async def test_final_concatenation_refuses_patch_403(client: TestClient,
                                                    clip_bytes: bytes) -> None:
    alice = await sign_up(client, "alice")
    parts = []
    for _ in range(2):
        resp = await client.post("/api/uploads", headers={
            **tus_headers(alice), "Upload-Length": "100", "Upload-Concat": "partial"})
        assert resp.status == 201 and "Video-Id" not in resp.headers
        parts.append(resp.headers["Location"])
    resp = await client.post("/api/uploads", headers={
        **tus_headers(alice), "Upload-Concat": "final;" + " ".join(parts),
        "Upload-Metadata": metadata(filename="joined.mp4")})
    assert resp.status == 201
    final = path_of(resp.headers["Location"])
    head = await client.head(final, headers=tus_headers(alice))
    assert "Upload-Offset" not in head.headers  # concatenation-unfinished
    assert head.headers["Upload-Concat"].startswith("final;")
    resp = await patch(client, alice, final, 0, b"x" * 10)
    assert resp.status == 403 and resp.headers["Tus-Resumable"] == "1.0.0"


async def test_api_token_scope_and_cookie_csrf(client: TestClient) -> None:
    from tests.helpers import PASSWORD

    alice = await sign_up(client, "alice")
    tokens = {}
    for scope in ("read", "upload"):
        resp = await client.post("/api/users/me/tokens", headers=alice.headers,
                                 json={"name": scope, "scopes": [scope]})
        assert resp.status == 201
        tokens[scope] = (await resp.json())["token"]
    for scope, wanted in (("read", 403), ("upload", 201)):
        resp = await client.post("/api/uploads", headers={
            **TUS, "Authorization": f"Bearer {tokens[scope]}", "Upload-Length": "100"})
        assert resp.status == wanted, scope
    login = await client.post("/api/auth/login",
                              json={"username": "alice", "password": PASSWORD})
    csrf = (await login.json())["csrf_token"]
    resp = await client.post("/api/uploads", headers={**TUS, "Upload-Length": "100"})
    assert resp.status == 403  # a cookie alone cannot create: CSRF token needed
    resp = await client.post("/api/uploads", headers={**TUS, "Upload-Length": "100",
                                                      "X-CSRF-Token": csrf})
    assert resp.status == 201
    path = path_of(resp.headers["Location"])
    resp = await client.head(path, headers=TUS)
    assert resp.status == 200 and resp.headers["Upload-Offset"] == "0"


async def test_patch_after_completion(client: TestClient, clip_bytes: bytes) -> None:
    alice = await sign_up(client, "alice")
    path = path_of((await create(client, alice, len(clip_bytes))).headers["Location"])
    assert (await patch(client, alice, path, 0, clip_bytes)).status == 204
    resp = await patch(client, alice, path, len(clip_bytes), b"")
    assert resp.status == 204 and resp.headers["Upload-Offset"] == str(len(clip_bytes))
    resp = await patch(client, alice, path, 0, clip_bytes[:100])
    assert resp.status == 409


async def test_recovery_finishes_an_upload_whose_last_byte_landed(
        client: TestClient, config: Config, clip_bytes: bytes) -> None:
    """A crash between the last write and completion: start-up recovery completes it."""
    from server import keys
    from server.uploads.sweeper import recover

    alice = await sign_up(client, "alice")
    resp = await create(client, alice, len(clip_bytes))
    path, video_id = path_of(resp.headers["Location"]), resp.headers["Video-Id"]
    (config.uploads_dir / path.rsplit("/", 1)[1]).write_bytes(clip_bytes)
    app = client.server.app
    await recover(app[keys.SERVICES], app[keys.UPLOADS], app.get(keys.WORKERS))
    video = await (await client.get(f"/api/videos/{video_id}", headers=alice.headers)).json()
    assert video["status"] in ("uploaded", "processing", "ready")
    assert (config.media_dir / video_id / "original").read_bytes() == clip_bytes
    assert await client.server.app[keys.DB].fetch_value(
        "SELECT state FROM uploads WHERE public_id = ?", (path.rsplit("/", 1)[1],)) == "complete"


async def test_tiny_text_file_refused(client: TestClient, config: Config) -> None:
    alice = await sign_up(client, "alice")
    text = b"just a short note, not a video\n"
    resp = await create(client, alice, len(text), filename="note.mp4")
    path, video_id = path_of(resp.headers["Location"]), resp.headers["Video-Id"]
    resp = await patch(client, alice, path, 0, text)
    assert resp.status == 415
    video = await (await client.get(f"/api/videos/{video_id}", headers=alice.headers)).json()
    assert video["status"] == "failed" and "text" in video["error"]
    assert not (config.media_dir / video_id / "original").exists()


async def test_chunked_transfer_coding_patch(client: TestClient, config: Config,
                                             clip_bytes: bytes) -> None:
    """A PATCH without Content-Length (HTTP/1.1 chunked body) is streamed the same way."""
    alice = await sign_up(client, "alice")
    resp = await create(client, alice, len(clip_bytes))
    path, video_id = path_of(resp.headers["Location"]), resp.headers["Video-Id"]

    async def pieces() -> Any:
        for start in range(0, len(clip_bytes), 7000):
            yield clip_bytes[start:start + 7000]

    resp = await client.patch(path, data=pieces(), headers={
        **tus_headers(alice), "Upload-Offset": "0", "Content-Type": OCTETS})
    assert resp.status == 204, await resp.text()
    assert resp.headers["Upload-Offset"] == str(len(clip_bytes))
    assert (config.media_dir / video_id / "original").read_bytes() == clip_bytes


async def test_sweep_purges_old_tombstones_and_orphans(client: TestClient,
                                                       config: Config) -> None:
    import os

    from server import keys
    from server.uploads.sweeper import sweep_once

    alice = await sign_up(client, "alice")
    path = path_of((await create(client, alice, 100)).headers["Location"])
    app = client.server.app
    await app[keys.DB].write("UPDATE uploads SET expires_at = 0")
    assert await sweep_once(app[keys.SERVICES], app[keys.UPLOADS]) == 1
    assert (await client.head(path, headers=tus_headers(alice))).status == 410
    orphan = config.uploads_dir / "leftover.chunk-0000"
    orphan.write_bytes(b"x" * 10)
    fresh = config.uploads_dir / "fresh.chunk-0000"
    fresh.write_bytes(b"x")
    os.utime(orphan, (time.time() - 7200, time.time() - 7200))
    await sweep_once(app[keys.SERVICES], app[keys.UPLOADS])
    assert not orphan.exists() and fresh.exists()  # only files idle for an hour go
    await sweep_once(app[keys.SERVICES], app[keys.UPLOADS], now=time.time() + 30 * 86400)
    assert (await client.head(path, headers=tus_headers(alice))).status == 404
