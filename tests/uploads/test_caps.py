"""Per-user upload caps (issue 22): at most unfinished_uploads_per_user unfinished uploads,
the declared length of unfinished uploads (tus and multipart) held against the quota while
they are open, a default quota of 10 GiB for every account but the admin's."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp.pytest_plugin import AiohttpClient
from aiohttp.test_utils import TestClient

from server import keys
from server.app import create_app
from server.config import Config
from tests.conftest import make_config
from tests.helpers import User, check_openapi, sign_up
from tests.social.util import app_of
from tests.uploads.tushelp import create, metadata, patch, path_of, tus_headers

GIB = 1 << 30
BOUNDARY = "caps-boundary"


async def _create(client: TestClient, user: User, **headers: str) -> aiohttp.ClientResponse:
    return await client.post("/api/uploads", headers=tus_headers(
        user, Upload_Metadata=metadata(filename="clip.mp4"), **headers))


async def _multipart(client: TestClient, user: User, clip: bytes) -> aiohttp.ClientResponse:
    form = aiohttp.FormData()
    form.add_field("file", clip, filename="clip.mp4", content_type="video/mp4")
    return await client.post("/api/videos/upload", data=form, headers=user.headers)


async def test_unfinished_uploads_per_user(client: TestClient, config: Config,
                                           openapi: dict[str, Any], clip_bytes: bytes) -> None:
    limit = config.unfinished_uploads_per_user
    assert limit == 20  # the default
    await sign_up(client, "admin")  # the first account
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    plain = [await create(client, alice, 1000) for _ in range(limit - 2)]
    half = len(clip_bytes) // 2
    parts = []
    for piece in (clip_bytes[:half], clip_bytes[half:]):
        resp = await _create(client, alice, Upload_Length=str(len(piece)),
                             Upload_Concat="partial")
        assert resp.status == 201
        assert (await patch(client, alice, path_of(resp.headers["Location"]), 0,
                            piece)).status == 204
        parts.append(resp.headers["Location"])
    # 18 receiving and 2 finished partials waiting for their final: 20 unfinished.
    refused = await _create(client, alice, Upload_Length="1000")
    assert refused.status == 429
    assert refused.headers["Tus-Resumable"] == "1.0.0"
    assert "Retry-After" not in refused.headers  # waiting does not help: finishing does
    body = await check_openapi(openapi, refused)
    assert body["type"].endswith("/too-many-uploads") and str(limit) in body["detail"]
    resp = await _multipart(client, alice, clip_bytes)
    assert resp.status == 429
    await check_openapi(openapi, resp)
    assert (await create(client, bob, 1000)).status == 201  # others are not affected
    # At the limit a concatenation can still be finished: its final replaces its parts.
    final = await _create(client, alice, Upload_Concat="final;" + " ".join(parts))
    assert final.status == 201, await final.text()
    # Joined, the parts are gone and the final is complete: 18 unfinished, room for 2.
    for _ in range(2):
        assert (await _create(client, alice, Upload_Length="1000")).status == 201
    assert (await _create(client, alice, Upload_Length="1000")).status == 429
    # Terminating one (tus DELETE) makes room at once.
    resp = await client.delete(path_of(plain[0].headers["Location"]),
                               headers=tus_headers(alice))
    assert resp.status == 204
    assert (await _multipart(client, alice, clip_bytes)).status == 201


async def test_declared_lengths_count_against_the_default_quota(
    client: TestClient, config: Config, openapi: dict[str, Any],
) -> None:
    assert config.user_quota_bytes == 10 * GIB  # the default, for every new account
    admin, alice = await sign_up(client, "admin"), await sign_up(client, "alice")
    big = await _create(client, alice, Upload_Length=str(6 * GIB))  # not a byte sent
    assert big.status == 201
    resp = await _create(client, alice, Upload_Length=str(5 * GIB))
    assert resp.status == 413
    body = await check_openapi(openapi, resp)
    assert body["type"].endswith("/quota-exceeded") and "declared length" in body["detail"]
    assert (await _create(client, alice, Upload_Length=str(4 * GIB))).status == 201
    # A multipart upload's Content-Length is refused before its body is read.
    url = client.make_url("/api/videos/upload")
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(f"POST /api/videos/upload HTTP/1.1\r\nHost: x\r\nAuthorization: "
                 f"{alice.headers['Authorization']}\r\nContent-Type: multipart/form-data; "
                 f"boundary={BOUNDARY}\r\nContent-Length: {GIB}\r\n\r\n".encode())
    assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 413")
    writer.close()
    # Terminating the big one gives its room back.
    resp = await client.delete(path_of(big.headers["Location"]), headers=tus_headers(alice))
    assert resp.status == 204
    assert (await _create(client, alice, Upload_Length=str(5 * GIB))).status == 201
    # The admin has no quota: three uploads of 8 GiB (max_upload_bytes) are 24 GiB.
    for _ in range(3):
        assert (await _create(client, admin, Upload_Length=str(8 * GIB))).status == 201


async def _open_form(client: TestClient, user: User, declared: int, head: bytes
                     ) -> asyncio.StreamWriter:
    """A multipart upload that declares `declared` bytes, sends `head` and then waits."""
    url = client.make_url("/api/videos/upload")
    _, writer = await asyncio.open_connection(url.host, url.port)
    part = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            "filename=\"slow.mp4\"\r\nContent-Type: video/mp4\r\n\r\n").encode()
    writer.write(f"POST /api/videos/upload HTTP/1.1\r\nHost: x\r\nAuthorization: "
                 f"{user.headers['Authorization']}\r\nContent-Type: multipart/form-data; "
                 f"boundary={BOUNDARY}\r\nContent-Length: {declared}\r\n\r\n".encode()
                 + part + head)
    await writer.drain()
    return writer


async def _until(check: Any) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


async def test_an_open_multipart_upload_holds_its_length(client: TestClient,
                                                         clip_bytes: bytes) -> None:
    await sign_up(client, "admin")
    alice = await sign_up(client, "alice")
    users = app_of(client)[keys.UPLOADS].users
    writer = await _open_form(client, alice, 6 * GIB, clip_bytes[:8192])
    await _until(lambda: users.held_bytes(alice.id) > 0)
    assert (await _create(client, alice, Upload_Length=str(5 * GIB))).status == 413
    assert (await _create(client, alice, Upload_Length=str(3 * GIB))).status == 201
    writer.close()  # the client goes: its hold goes with it
    await _until(lambda: users.held_bytes(alice.id) == 0 and not users.held)
    assert (await _create(client, alice, Upload_Length=str(6 * GIB))).status == 201


async def test_a_deferred_length_holds_its_bytes_on_disk(aiohttp_client: AiohttpClient,
                                                         tmp_path: Any, clip_bytes: bytes
                                                         ) -> None:
    quota = 100_000
    client = await aiohttp_client(create_app(make_config(tmp_path / "data",
                                                         user_quota_bytes=quota)))
    await sign_up(client, "admin")
    alice = await sign_up(client, "alice")
    body = (clip_bytes[:8192] + bytes(60_000))[:60_000]
    deferred = await create(client, alice, None)
    path = path_of(deferred.headers["Location"])
    assert (await patch(client, alice, path, 0, body)).status == 204
    assert (await _create(client, alice, Upload_Length="50000")).status == 413
    assert (await _create(client, alice, Upload_Length="30000")).status == 201
    # Declaring its length later needs only the bytes it does not hold yet: 10,000 are left.
    resp = await patch(client, alice, path, 60_000, b"", Upload_Length="75000")
    assert resp.status == 413
    resp = await patch(client, alice, path, 60_000, b"", Upload_Length="70000")
    assert resp.status == 204, await resp.text()


async def test_a_burst_of_parallel_creations_stops_at_the_limit(client: TestClient,
                                                                config: Config) -> None:
    """Issue 22: 254 uploads in 4 s. Checked and created in one step per user, a burst of
    parallel creations cannot all pass the count before any of them is recorded."""
    await sign_up(client, "admin")
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    limit = config.unfinished_uploads_per_user
    answers = await asyncio.gather(*(_create(client, alice, Upload_Length="1000")
                                     for _ in range(2 * limit)))
    assert sorted(r.status for r in answers) == [201] * limit + [429] * limit
    # The same for the quota: 15 declarations of 1 GiB at once, 10 fit in 10 GiB.
    answers = await asyncio.gather(*(_create(client, bob, Upload_Length=str(GIB))
                                     for _ in range(15)))
    assert sorted(r.status for r in answers) == [201] * 10 + [413] * 5
