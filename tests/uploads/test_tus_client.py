"""Uploads with tuspy, a real tus client, against the app served on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp.test_utils import TestClient
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError, TusUploadFailed

from server.config import Config
from tests.helpers import check_openapi, sign_up
from tests.uploads.tushelp import metadata, path_of


def uploader(client: TestClient, token: str, data: bytes, chunk: int,
             **kwargs: Any) -> Any:
    tus = tus_client.TusClient(str(client.make_url("/api/uploads")),
                               headers={"Authorization": f"Bearer {token}"})
    return tus.uploader(file_stream=io.BytesIO(data), chunk_size=chunk, **kwargs)


def original(config: Config, video_id: str) -> Path:
    return config.media_dir / video_id / "original"


async def test_full_upload(client: TestClient, config: Config, openapi: dict[str, Any],
                           clip_bytes: bytes) -> None:
    alice = await sign_up(client, "alice")
    up = uploader(client, alice.tokens["access_token"], clip_bytes, 64 * 1024,
                  metadata={"filename": "holiday.mp4", "title": "Holiday",
                            "privacy": "unlisted", "filetype": "video/mp4"},
                  upload_checksum=True)
    await asyncio.to_thread(up.upload)
    assert up.offset == len(clip_bytes)
    head = await client.head(path_of(up.url), headers={"Tus-Resumable": "1.0.0",
                                                        **alice.headers})
    assert head.status == 200
    assert head.headers["Upload-Offset"] == str(len(clip_bytes))
    video_id = head.headers["Video-Id"]
    resp = await client.get(f"/api/videos/{video_id}", headers=alice.headers)
    body = await check_openapi(openapi, resp)
    assert body["title"] == "Holiday" and body["privacy"] == "unlisted"
    assert body["status"] in ("uploaded", "processing", "ready")
    assert body["size"] == len(clip_bytes)
    stored = original(config, video_id)
    assert hashlib.sha256(stored.read_bytes()).digest() == hashlib.sha256(clip_bytes).digest()
    assert not (config.uploads_dir / path_of(up.url).rsplit("/", 1)[1]).exists()


async def _wait_offset(client: TestClient, path: str, headers: dict[str, str],
                       wanted: int) -> int:
    offset = -1
    for _ in range(100):
        resp = await client.head(path, headers={"Tus-Resumable": "1.0.0", **headers})
        offset = int(resp.headers["Upload-Offset"])
        if offset == wanted:
            break
        await asyncio.sleep(0.05)
    return offset


async def _raw_patch_start(client: TestClient, path: str, token: str, offset: int,
                           total: int, first: bytes) -> tuple[asyncio.StreamReader,
                                                              asyncio.StreamWriter]:
    """A PATCH announcing `total` bytes that sends only `first`: the socket stays open."""
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write((f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n"
                  f"Authorization: Bearer {token}\r\nUpload-Offset: {offset}\r\n"
                  f"Content-Type: application/offset+octet-stream\r\n"
                  f"Content-Length: {total}\r\n\r\n").encode() + first)
    await writer.drain()
    return reader, writer


async def test_resume_after_connection_cut(client: TestClient, config: Config,
                                           clip_bytes: bytes) -> None:
    alice = await sign_up(client, "alice")
    token = alice.tokens["access_token"]
    up = uploader(client, token, clip_bytes, 1 << 20, metadata={"filename": "cut.mp4"})
    url = await asyncio.to_thread(up.create_url)
    path = path_of(url)
    sent = len(clip_bytes) // 3
    _, writer = await _raw_patch_start(client, path, token, 0, len(clip_bytes),
                                       clip_bytes[:1000])
    await asyncio.sleep(0.3)  # the server is now streaming this PATCH to disk
    writer.write(clip_bytes[1000:sent])
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.close()  # the connection drops mid-PATCH
    assert await _wait_offset(client, path, alice.headers, sent) == sent  # bytes kept
    resumed = await asyncio.to_thread(uploader, client, token, clip_bytes, 64 * 1024, url=url)
    assert resumed.offset == sent
    await asyncio.to_thread(resumed.upload)
    video_id = (await client.head(path, headers={"Tus-Resumable": "1.0.0",
                                                 **alice.headers})).headers["Video-Id"]
    assert original(config, video_id).read_bytes() == clip_bytes


async def test_stalled_request_is_taken_over(client: TestClient, config: Config,
                                             clip_bytes: bytes) -> None:
    alice = await sign_up(client, "alice")
    token = alice.tokens["access_token"]
    up = uploader(client, token, clip_bytes, 1 << 20, metadata={"filename": "stall.mp4"})
    url = await asyncio.to_thread(up.create_url)
    reader, writer = await _raw_patch_start(client, path_of(url), token, 0, len(clip_bytes),
                                            clip_bytes[:5000])
    await asyncio.sleep(0.2)  # the first request now holds the lock, waiting for bytes
    resumed = await asyncio.to_thread(uploader, client, token, clip_bytes, 64 * 1024, url=url)
    await asyncio.wait_for(asyncio.to_thread(resumed.upload), 20)
    assert await asyncio.wait_for(reader.read(), 5) == b""  # the stalled one was closed
    writer.close()
    head = await client.head(path_of(url), headers={"Tus-Resumable": "1.0.0", **alice.headers})
    assert original(config, head.headers["Video-Id"]).read_bytes() == clip_bytes


async def test_other_user_is_refused(client: TestClient, clip_bytes: bytes) -> None:
    alice = await sign_up(client, "alice")
    mallory = await sign_up(client, "mallory")
    up = uploader(client, alice.tokens["access_token"], clip_bytes, 64 * 1024)
    url = await asyncio.to_thread(up.create_url)
    with pytest.raises(TusCommunicationError) as refused:
        await asyncio.to_thread(uploader, client, mallory.tokens["access_token"], clip_bytes,
                                64 * 1024, url=url)
    assert refused.value.status_code == 403
    theirs = await asyncio.to_thread(uploader, client, alice.tokens["access_token"],
                                     clip_bytes, 64 * 1024, url=url)
    theirs.client.headers = dict(mallory.headers)
    with pytest.raises(TusUploadFailed) as failed:
        await asyncio.to_thread(theirs.upload_chunk)
    assert failed.value.status_code == 403


class CorruptingUploader(tus_client.Uploader):  # type: ignore[misc]
    """tuspy whose sha1 is taken of other bytes than it sends, as when a chunk is damaged
    between the client's checksum and the wire."""

    @property
    def checksum_algorithm(self) -> Any:
        return lambda chunk: hashlib.sha1(b"damaged" + chunk)


async def test_checksum_mismatch_with_tuspy(client: TestClient, config: Config,
                                            clip_bytes: bytes) -> None:
    alice = await sign_up(client, "alice")
    good = uploader(client, alice.tokens["access_token"], clip_bytes, 64 * 1024,
                    upload_checksum=True)
    url = await asyncio.to_thread(good.create_url)
    good.set_url(url)
    await asyncio.to_thread(good.upload_chunk)
    bad = await asyncio.to_thread(  # the constructor asks the server for the offset
        CorruptingUploader, file_stream=io.BytesIO(clip_bytes), client=good.client,
        chunk_size=64 * 1024, upload_checksum=True, url=url)
    assert bad.offset == 64 * 1024
    with pytest.raises(TusUploadFailed) as refused:
        await asyncio.to_thread(bad.upload_chunk)
    assert refused.value.status_code == 460  # tus checksum extension
    # The chunk was discarded: the offset is where it was, and the upload resumes intact.
    head = await client.head(path_of(url), headers={"Tus-Resumable": "1.0.0", **alice.headers})
    assert head.headers["Upload-Offset"] == str(64 * 1024)
    resumed = await asyncio.to_thread(uploader, client, alice.tokens["access_token"],
                                      clip_bytes, 64 * 1024, upload_checksum=True, url=url)
    await asyncio.to_thread(resumed.upload)
    head = await client.head(path_of(url), headers={"Tus-Resumable": "1.0.0", **alice.headers})
    assert original(config, head.headers["Video-Id"]).read_bytes() == clip_bytes


class DeferredUploader(tus_client.Uploader):  # type: ignore[misc]
    """tuspy with creation-defer-length: the length goes with the last PATCH."""

    def get_url_creation_headers(self) -> dict[str, str]:
        headers = dict(super().get_url_creation_headers())
        del headers["upload-length"]
        headers["Upload-Defer-Length"] = "1"
        return headers


class PartialUploader(tus_client.Uploader):  # type: ignore[misc]
    def get_url_creation_headers(self) -> dict[str, str]:
        return {**super().get_url_creation_headers(), "Upload-Concat": "partial"}


async def test_deferred_length_with_tuspy(client: TestClient, config: Config,
                                          clip_bytes: bytes) -> None:
    alice = await sign_up(client, "alice")
    tus = tus_client.TusClient(str(client.make_url("/api/uploads")), headers=alice.headers)
    up = DeferredUploader(file_stream=io.BytesIO(clip_bytes), client=tus, chunk_size=50_000,
                          metadata={"filename": "deferred.mp4"})
    url = await asyncio.to_thread(up.create_url)
    up.set_url(url)
    head = await client.head(path_of(url), headers={"Tus-Resumable": "1.0.0", **alice.headers})
    assert head.headers["Upload-Defer-Length"] == "1"
    await asyncio.to_thread(up.upload_chunk)
    tus.headers["Upload-Length"] = str(len(clip_bytes))  # now known: sent with each PATCH
    await asyncio.to_thread(up.upload)
    head = await client.head(path_of(url), headers={"Tus-Resumable": "1.0.0", **alice.headers})
    assert head.headers["Upload-Length"] == str(len(clip_bytes))
    assert original(config, head.headers["Video-Id"]).read_bytes() == clip_bytes


async def test_concatenation_of_parallel_partials(client: TestClient, config: Config,
                                                  clip_bytes: bytes) -> None:
    alice = await sign_up(client, "alice")
    tus = tus_client.TusClient(str(client.make_url("/api/uploads")), headers=alice.headers)
    cut = len(clip_bytes) // 2
    halves = [clip_bytes[:cut], clip_bytes[cut:]]
    parts = [PartialUploader(file_stream=io.BytesIO(h), client=tus, chunk_size=32_768)
             for h in halves]
    await asyncio.gather(*(asyncio.to_thread(p.upload) for p in parts))
    resp = await client.post("/api/uploads", headers={
        "Tus-Resumable": "1.0.0", **alice.headers,
        "Upload-Concat": "final;" + " ".join(p.url for p in parts),
        "Upload-Metadata": metadata(filename="joined.mp4", title="Joined")})
    assert resp.status == 201, await resp.text()
    final = path_of(resp.headers["Location"])
    head = await client.head(final, headers={"Tus-Resumable": "1.0.0", **alice.headers})
    assert head.headers["Upload-Offset"] == head.headers["Upload-Length"] == str(len(clip_bytes))
    video_id = resp.headers["Video-Id"]
    assert original(config, video_id).read_bytes() == clip_bytes
    for part in parts:
        assert not (config.uploads_dir / path_of(part.url).rsplit("/", 1)[1]).exists()


async def test_concatenation_unfinished(client: TestClient, config: Config,
                                        clip_bytes: bytes) -> None:
    """The final upload may be declared before its partials are done."""
    alice = await sign_up(client, "alice")
    tus = tus_client.TusClient(str(client.make_url("/api/uploads")), headers=alice.headers)
    cut = len(clip_bytes) // 3
    parts = [PartialUploader(file_stream=io.BytesIO(h), client=tus, chunk_size=32_768)
             for h in (clip_bytes[:cut], clip_bytes[cut:])]
    for p in parts:
        p.set_url(await asyncio.to_thread(p.create_url))
    resp = await client.post("/api/uploads", headers={
        "Tus-Resumable": "1.0.0", **alice.headers,
        "Upload-Concat": "final;" + " ".join(path_of(p.url) for p in parts)})
    assert resp.status == 201
    video_id = resp.headers["Video-Id"]
    await asyncio.gather(*(asyncio.to_thread(p.upload) for p in parts))
    assert original(config, video_id).read_bytes() == clip_bytes


async def test_termination_and_expiry_with_tuspy(client: TestClient, clip_bytes: bytes) -> None:
    from server import keys
    from server.uploads.sweeper import sweep_once

    alice = await sign_up(client, "alice")
    token = alice.tokens["access_token"]
    for action in ("terminate", "expire"):
        up = uploader(client, token, clip_bytes, 32_768)
        up.set_url(await asyncio.to_thread(up.create_url))
        await asyncio.to_thread(up.upload_chunk)
        if action == "terminate":
            resp = await asyncio.to_thread(
                requests.delete, up.url, headers={"Tus-Resumable": "1.0.0", **alice.headers})
            assert resp.status_code == 204
        else:
            app = client.server.app
            await app[keys.DB].write("UPDATE uploads SET expires_at = 0 WHERE public_id = ?",
                                     (path_of(up.url).rsplit("/", 1)[1],))
            assert await sweep_once(app[keys.SERVICES], app[keys.UPLOADS]) == 1
        with pytest.raises(TusCommunicationError) as gone:
            await asyncio.to_thread(uploader, client, token, clip_bytes, 32_768, url=up.url)
        assert gone.value.status_code == (404 if action == "terminate" else 410)


async def test_progress_visible_during_a_slow_patch(client: TestClient,
                                                    clip_bytes: bytes) -> None:
    alice = await sign_up(client, "alice")
    token = alice.tokens["access_token"]
    up = uploader(client, token, clip_bytes, 1 << 20, metadata={"filename": "slow.mp4"})
    url = await asyncio.to_thread(up.create_url)
    path = path_of(url)
    head = await client.head(path, headers={"Tus-Resumable": "1.0.0", **alice.headers})
    video_id = head.headers["Video-Id"]
    _, writer = await _raw_patch_start(client, path, token, 0, len(clip_bytes),
                                       clip_bytes[:5000])
    await asyncio.sleep(1.2)
    writer.write(clip_bytes[5000:9000])  # a slow client: bytes reach the disk by age
    await writer.drain()
    assert await _wait_offset(client, path, alice.headers, 9000) == 9000
    video = await (await client.get(f"/api/videos/{video_id}", headers=alice.headers)).json()
    assert video["status"] == "uploading" and video["bytes_received"] == 9000
    writer.close()
