"""Simple multipart upload, early sniffing, limits while streaming, CORS and proxies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.pytest_plugin import AiohttpClient
from aiohttp.test_utils import TestClient

from server import keys
from server.app import create_app
from server.config import Config
from tests.conftest import make_config
from tests.helpers import User, check_openapi, sign_up
from tests.uploads.tushelp import OCTETS, create, path_of, tus_headers

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 16
BOUNDARY = "reelhouse-test-boundary"
# Socket buffers and the server's read buffer hold a few MiB before a refusal lands.
EARLY = 64 << 20


class Counter:
    def __init__(self) -> None:
        self.sent = 0


async def _stream(head: bytes, total: int, counter: Counter, tail: bytes = b""
                  ) -> AsyncIterator[bytes]:
    """`head`, then zeros up to `total` bytes in 1 MiB pieces, then `tail`."""
    yield head
    counter.sent += len(head)
    block = bytes(1 << 20)
    while counter.sent < total:
        piece = block[: min(len(block), total - counter.sent)]
        counter.sent += len(piece)
        yield piece
        await asyncio.sleep(0)
    if tail:
        yield tail


def _form_head(**fields: str) -> bytes:
    parts = [f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
             for k, v in fields.items()]
    parts.append(f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
                 "filename=\"big.mp4\"\r\nContent-Type: video/mp4\r\n\r\n")
    return "".join(parts).encode()


async def test_multipart_upload(client: TestClient, config: Config, openapi: dict[str, Any],
                                clip_bytes: bytes) -> None:
    alice = await sign_up(client, "alice")
    form = aiohttp.FormData()
    form.add_field("title", "From a form")
    form.add_field("description", "multipart")
    form.add_field("privacy", "private")
    form.add_field("file", clip_bytes, filename="clip.mp4", content_type="video/mp4")
    resp = await client.post("/api/videos/upload", data=form, headers=alice.headers)
    assert resp.status == 201, await resp.text()
    body = await check_openapi(openapi, resp)
    assert body["title"] == "From a form" and body["privacy"] == "private"
    assert body["status"] in ("uploaded", "processing", "ready")
    assert body["size"] == len(clip_bytes)
    stored = config.media_dir / body["id"] / "original"
    assert stored.read_bytes() == clip_bytes
    assert list(config.uploads_dir.iterdir()) == []


async def test_multipart_bad_fields(client: TestClient, clip_bytes: bytes) -> None:
    alice = await sign_up(client, "alice")
    form = aiohttp.FormData()
    form.add_field("privacy", "everyone")
    form.add_field("file", clip_bytes, filename="clip.mp4", content_type="video/mp4")
    resp = await client.post("/api/videos/upload", data=form, headers=alice.headers)
    assert resp.status == 400
    assert "privacy" in (await resp.json())["detail"]
    resp = await client.post("/api/videos/upload", json={"file": "x"}, headers=alice.headers)
    assert resp.status == 415
    resp = await client.post("/api/videos/upload", data=aiohttp.FormData({"title": "x"}),
                             headers=alice.headers)
    assert resp.status in (400, 415)


async def _small_limit_client(aiohttp_client: AiohttpClient, tmp_path: Path, **overrides: Any
                              ) -> tuple[TestClient, User]:
    client = await aiohttp_client(create_app(make_config(tmp_path / "data", **overrides)))
    return client, await sign_up(client, "alice")


async def test_multipart_413_while_streaming(aiohttp_client: AiohttpClient,
                                             tmp_path: Path, clip_bytes: bytes) -> None:
    client, alice = await _small_limit_client(aiohttp_client, tmp_path,
                                              max_upload_bytes=4 << 20)
    counter = Counter()
    total = 256 << 20
    resp = await client.post(
        "/api/videos/upload", data=_stream(_form_head(title="big") + clip_bytes[:4096],
                                           total, counter, f"\r\n--{BOUNDARY}--\r\n".encode()),
        headers={**alice.headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert resp.status == 413
    assert resp.content_type == "application/problem+json"
    assert counter.sent < EARLY  # answered long before the body was read
    assert list((tmp_path / "data" / "uploads").iterdir()) == []


async def test_quota_413(aiohttp_client: AiohttpClient, tmp_path: Path,
                         clip_bytes: bytes) -> None:
    client, _admin = await _small_limit_client(aiohttp_client, tmp_path,
                                               user_quota_bytes=len(clip_bytes) + 1000,
                                               user_daily_quota_bytes=10 * len(clip_bytes))
    alice = await sign_up(client, "alice2")  # the first account is the admin: no quota
    await create(client, alice, len(clip_bytes))
    resp = await client.post("/api/uploads", headers={**tus_headers(alice),
                                                      "Upload-Length": "2000"})
    assert resp.status == 413
    assert "quota" in (await resp.json())["detail"]
    assert resp.headers["Tus-Resumable"] == "1.0.0"


async def test_insufficient_storage_507(aiohttp_client: AiohttpClient, tmp_path: Path) -> None:
    client, alice = await _small_limit_client(aiohttp_client, tmp_path,
                                              min_free_disk_bytes=1 << 60)
    resp = await client.post("/api/uploads", headers={**tus_headers(alice),
                                                      "Upload-Length": "2000"})
    assert resp.status == 507
    assert "disk" in (await resp.json())["detail"]


async def test_png_refused_early_over_tus(client: TestClient, config: Config) -> None:
    alice = await sign_up(client, "alice")
    total = 512 << 20
    resp = await create(client, alice, total, filename="photo.mp4")
    path, video_id = path_of(resp.headers["Location"]), resp.headers["Video-Id"]
    counter = Counter()
    resp = await client.patch(path, data=_stream(PNG, total, counter), headers={
        **tus_headers(alice), "Upload-Offset": "0", "Content-Type": OCTETS})
    assert resp.status == 415
    assert "PNG" in (await resp.json())["detail"]
    assert resp.headers["Tus-Resumable"] == "1.0.0"
    assert counter.sent < EARLY  # refused long before the body was read
    assert not (config.uploads_dir / path.rsplit("/", 1)[1]).exists()
    video = await (await client.get(f"/api/videos/{video_id}", headers=alice.headers)).json()
    assert video["status"] == "failed" and "PNG" in video["error"]
    assert (await client.head(path, headers=tus_headers(alice))).status == 410


async def test_text_refused_by_multipart(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    form = aiohttp.FormData()
    form.add_field("file", b"<!DOCTYPE html><html><body>" + b"hello " * 1000,
                   filename="page.mp4", content_type="video/mp4")
    resp = await client.post("/api/videos/upload", data=form, headers=alice.headers)
    assert resp.status == 415
    assert "HTML" in (await resp.json())["detail"]


async def test_cors_preflight_and_exposed_headers(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    origin = "https://uploader.example"
    resp = await client.options("/api/uploads", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,tus-resumable,upload-length,"
                                          "upload-metadata"})
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert "PATCH" in resp.headers["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "tus-resumable", "upload-length", "upload-metadata",
            "upload-offset", "content-type", "x-http-method-override"} <= allowed
    resp = await client.post("/api/uploads", headers={
        **tus_headers(alice), "Origin": origin, "Upload-Length": "100"})
    assert resp.status == 201
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    exposed = {h.strip() for h in resp.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"Location", "Upload-Offset", "Upload-Length", "Tus-Version", "Tus-Resumable",
            "Tus-Max-Size", "Tus-Extension", "Upload-Expires", "Video-Id"} <= exposed
    resp = await client.post("/api/uploads", headers={"Origin": origin, "Upload-Length": "1"})
    assert resp.status == 412  # errors carry CORS too, so the browser can read them
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


async def test_cors_preflight_of_a_multipart_upload(client: TestClient,
                                                   clip_bytes: bytes) -> None:
    alice = await sign_up(client, "alice")
    origin = "https://uploader.example"
    resp = await client.options("/api/videos/upload", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization"})
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert "authorization" in resp.headers["Access-Control-Allow-Headers"].lower()
    plain = await client.options("/api/videos/upload")
    assert plain.status == 204 and plain.headers["Allow"] == "OPTIONS, POST"
    form = aiohttp.FormData()
    form.add_field("file", clip_bytes, filename="clip.mp4", content_type="video/mp4")
    resp = await client.post("/api/videos/upload", data=form,
                             headers={**alice.headers, "Origin": origin})
    assert resp.status == 201
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


async def test_cors_listed_origin_gets_credentials(aiohttp_client: AiohttpClient,
                                                   tmp_path: Path) -> None:
    client, _ = await _small_limit_client(aiohttp_client, tmp_path,
                                          cors_origins="https://app.example")
    resp = await client.options("/api/uploads/x", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "PATCH"})
    assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    resp = await client.options("/api/uploads/x", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "PATCH"})
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_location_behind_proxy(aiohttp_client: AiohttpClient, tmp_path: Path) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "video.example.org"}
    client, alice = await _small_limit_client(aiohttp_client, tmp_path, trusted_proxies="")
    resp = await create(client, alice, 100)
    assert resp.headers["Location"].startswith(f"http://127.0.0.1:{client.port}/api/uploads/")
    resp = await client.post("/api/uploads", headers={**tus_headers(alice), **forwarded,
                                                      "Upload-Length": "100"})
    assert "video.example.org" not in resp.headers["Location"]  # untrusted peer: ignored
    trusted, bob = await _small_limit_client(aiohttp_client, tmp_path / "b",
                                             trusted_proxies="127.0.0.1")
    resp = await trusted.post("/api/uploads", headers={**tus_headers(bob), **forwarded,
                                                       "Upload-Length": "100"})
    assert resp.headers["Location"].startswith("https://video.example.org/api/uploads/")
    public, carol = await _small_limit_client(aiohttp_client, tmp_path / "c",
                                              public_url="https://tv.example/",
                                              trusted_proxies="")
    resp = await public.post("/api/uploads", headers={**tus_headers(carol),
                                                      "Upload-Length": "100"})
    assert resp.headers["Location"].startswith("https://tv.example/api/uploads/")
    assert public.server.app[keys.CONFIG].public_url


async def test_scan_hook(aiohttp_client: AiohttpClient, tmp_path: Path,
                         clip_bytes: bytes) -> None:
    marker = tmp_path / "scanned"
    client, alice = await _small_limit_client(
        aiohttp_client, tmp_path, scan_command=f"cp {{path}} {marker}")
    resp = await create(client, alice, len(clip_bytes))
    path = path_of(resp.headers["Location"])
    resp = await client.patch(path, data=clip_bytes, headers={
        **tus_headers(alice), "Upload-Offset": "0", "Content-Type": OCTETS})
    assert resp.status == 204
    assert marker.read_bytes() == clip_bytes  # the scanner saw the whole file

    refusing, bob = await _small_limit_client(
        aiohttp_client, tmp_path / "b",
        scan_command="sh -c 'echo \"Eicar-Signature FOUND\"; exit 1' {path}")
    resp = await create(refusing, bob, len(clip_bytes))
    path, video_id = path_of(resp.headers["Location"]), resp.headers["Video-Id"]
    resp = await refusing.patch(path, data=clip_bytes, headers={
        **tus_headers(bob), "Upload-Offset": "0", "Content-Type": OCTETS})
    assert resp.status == 422
    assert "Eicar-Signature FOUND" in (await resp.json())["detail"]
    video = await (await refusing.get(f"/api/videos/{video_id}", headers=bob.headers)).json()
    assert video["status"] == "failed" and "Eicar-Signature FOUND" in video["error"]
    assert list((tmp_path / "b" / "data" / "uploads").iterdir()) == []
    assert not (tmp_path / "b" / "data" / "media" / video_id / "original").exists()


async def test_other_methods_on_the_multipart_url_are_405_with_its_own_allow(
        client: TestClient) -> None:
    """/api/videos/upload is not a video id (ids are 11 characters): its 405 lists only the
    upload's methods (RFC 9110 section 15.5.6), not those of /api/videos/{video_id}."""
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        resp = await client.request(method, "/api/videos/upload")
        assert resp.status == 405, method
        assert resp.headers["Allow"] == "OPTIONS,POST"
        assert resp.content_type == "application/problem+json"
