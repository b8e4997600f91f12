"""tus 1.0.0 to the letter: Tus-Resumable on OPTIONS answers, X-HTTP-Method-Override on
every tus URL, and Upload-Metadata whose keys are never empty."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.config import Config
from tests.helpers import check_openapi, sign_up
from tests.uploads.tushelp import OCTETS, TUS, create, metadata, path_of, tus_headers

DISCOVERY = ("Tus-Version", "Tus-Extension", "Tus-Max-Size", "Tus-Checksum-Algorithm")
ORIGIN = "https://uploader.example"


def assert_discovery(resp: Any) -> None:
    assert resp.status == 204
    assert resp.headers["Tus-Resumable"] == "1.0.0"
    for name in DISCOVERY:
        assert name in resp.headers, name


async def test_options_answers_carry_tus_resumable(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    path = path_of((await create(client, alice, 100)).headers["Location"])
    for url in ("/api/uploads", path):
        assert_discovery(await client.options(url))  # no Tus-Resumable asked of the request


async def test_creation_url_overridden_to_options(client: TestClient, config: Config,
                                                  openapi: dict[str, Any]) -> None:
    alice = await sign_up(client, "alice")
    for method, headers in (("GET", {}), ("POST", alice.headers), ("GET", alice.headers)):
        resp = await client.request(method, "/api/uploads", headers={
            **headers, "X-HTTP-Method-Override": "OPTIONS"})
        assert_discovery(resp)
        await check_openapi(openapi, resp)
    assert list(config.uploads_dir.iterdir()) == []  # a POST standing for OPTIONS made nothing
    resp = await client.post("/api/uploads", headers={
        **tus_headers(alice), "Upload-Length": "10", "X-HTTP-Method-Override": "POST"})
    assert resp.status == 201  # naming the request's own method changes nothing


async def test_upload_url_overridden_to_every_method(client: TestClient,
                                                     openapi: dict[str, Any],
                                                     clip_bytes: bytes) -> None:
    alice = await sign_up(client, "alice")
    path = path_of((await create(client, alice, len(clip_bytes))).headers["Location"])
    resp = await client.post(path, data=clip_bytes[:500], headers={
        **tus_headers(alice), "X-HTTP-Method-Override": "patch", "Upload-Offset": "0",
        "Content-Type": OCTETS})
    assert resp.status == 204 and resp.headers["Upload-Offset"] == "500"
    await check_openapi(openapi, resp)
    for method in ("POST", "GET"):
        resp = await client.request(method, path, headers={
            **tus_headers(alice), "X-HTTP-Method-Override": "HEAD"})
        assert resp.status == 200 and resp.headers["Upload-Offset"] == "500", method
        assert resp.headers["Cache-Control"] == "no-store"
        await check_openapi(openapi, resp)
        assert_discovery(await client.request(method, path, headers={
            "X-HTTP-Method-Override": "OPTIONS"}))
    # A PATCH or a DELETE may carry the header too: it is the method on every request.
    resp = await client.patch(path, headers={**tus_headers(alice),
                                             "X-HTTP-Method-Override": "HEAD"})
    assert resp.status == 200 and resp.headers["Upload-Offset"] == "500"
    resp = await client.post(path, headers={**tus_headers(alice),
                                            "X-HTTP-Method-Override": "DELETE"})
    assert resp.status == 204 and resp.headers["Tus-Resumable"] == "1.0.0"
    assert (await client.head(path, headers=tus_headers(alice))).status == 404


@pytest.mark.parametrize(("method", "url", "override"), [
    ("GET", "upload", "PATCH"),      # a safe method never stands for a change
    ("GET", "upload", "DELETE"),
    ("GET", "creation", "POST"),
    ("GET", "upload", None),         # GET is only a carrier of the header
    ("GET", "creation", None),
    ("POST", "upload", None),
    ("POST", "creation", "PATCH"),   # not a method of the creation URL
    ("POST", "upload", "PUT"),
    ("POST", "upload", "GET"),
])
async def test_override_refusals_are_405_and_change_nothing(
        client: TestClient, openapi: dict[str, Any], method: str, url: str,
        override: str | None) -> None:
    alice = await sign_up(client, "alice")
    path = path_of((await create(client, alice, 100)).headers["Location"])
    headers = tus_headers(alice, Upload_Offset="0", Upload_Length="100",
                          Content_Type=OCTETS)
    if override is not None:
        headers["X-HTTP-Method-Override"] = override
    resp = await client.request(method, path if url == "upload" else "/api/uploads",
                                headers=headers, data=b"x" * 100)
    assert resp.status == 405, await resp.text()
    assert resp.headers["Tus-Resumable"] == "1.0.0" and "Allow" in resp.headers
    await check_openapi(openapi, resp)
    head = await client.head(path, headers=tus_headers(alice))
    assert head.status == 200 and head.headers["Upload-Offset"] == "0"
    mine = await (await client.get(f"/api/channels/{alice.channel_id}/videos",
                                   headers=alice.headers)).json()
    assert len(mine["items"]) == 1


async def test_override_keeps_the_edge(client: TestClient) -> None:
    """CORS, identity and the 412 still apply to a request that stands for another."""
    alice = await sign_up(client, "alice")
    path = path_of((await create(client, alice, 100)).headers["Location"])
    resp = await client.get(path, headers={**tus_headers(alice), "Origin": ORIGIN,
                                           "X-HTTP-Method-Override": "HEAD"})
    assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == "*"
    resp = await client.head(path, headers={**tus_headers(alice), "Origin": ORIGIN})
    assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == "*"
    resp = await client.post(path, headers={**TUS, "X-HTTP-Method-Override": "DELETE"})
    assert resp.status == 401
    resp = await client.post(path, headers={**alice.headers, "X-HTTP-Method-Override": "HEAD"})
    assert resp.status == 412 and resp.headers["Tus-Resumable"] == "1.0.0"


@pytest.mark.parametrize("header", [
    metadata(filename="a.mp4") + ",",            # the trailing comma of the issue
    "," + metadata(filename="a.mp4"),
    metadata(filename="a.mp4") + ",," + metadata(title="t"),
    metadata(filename="a.mp4") + ", ",
    " , ",
])
async def test_empty_metadata_pair_is_400(client: TestClient, config: Config,
                                          header: str) -> None:
    alice = await sign_up(client, "alice")
    resp = await client.post("/api/uploads", headers={
        **tus_headers(alice), "Upload-Length": "100", "Upload-Metadata": header})
    assert resp.status == 400, header
    assert resp.content_type == "application/problem+json"
    assert "empty" in (await resp.json())["detail"]
    assert list(config.uploads_dir.iterdir()) == []


async def test_metadata_key_without_value_is_fine(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    resp = await client.post("/api/uploads", headers={
        **tus_headers(alice), "Upload-Length": "100",
        "Upload-Metadata": "is_confidential," + metadata(filename="x.mp4")})
    assert resp.status == 201, await resp.text()


async def test_the_edges_refusals_carry_tus_resumable(aiohttp_client: Any, tmp_path: Any
                                                      ) -> None:
    """tus 1.0.0: Tus-Resumable on every answer but to OPTIONS, the edge's 401 (no or a bad
    token) and 429 (the upload budget spent) as well as the handler's own."""
    from server.app import create_app
    from tests.conftest import make_config

    client = await aiohttp_client(create_app(make_config(
        tmp_path / "data", upload_rate_limit_per_minute=2)))
    alice = await sign_up(client, "alice")
    for headers in (TUS, {**TUS, "Authorization": "Bearer not-a-token"}):
        resp = await client.post("/api/uploads", headers={**headers, "Upload-Length": "10"})
        assert resp.status == 401
        assert resp.headers["Tus-Resumable"] == "1.0.0"
        assert resp.content_type == "application/problem+json"
    statuses = []
    for _ in range(4):
        resp = await client.post("/api/uploads", headers={**tus_headers(alice),
                                                          "Upload-Length": "10"})
        statuses.append(resp.status)
        assert resp.headers["Tus-Resumable"] == "1.0.0"
    assert statuses[:2] == [201, 201] and statuses[-1] == 429
    # Not a tus URL: no tus header.
    assert "Tus-Resumable" not in (await client.get("/api/users/me")).headers
