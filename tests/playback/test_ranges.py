"""RFC 9110 byte ranges and conditional requests, checked byte for byte.

Two kinds of representation: a stored segment (one file) and a progressive MP4 (a virtual
file: generated moov and sidx, then the stored segments), where ranges cross part
boundaries. Plus the pure range parser on edge cases."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import keys, storage
from server.api import playback as playback_api
from server.playback.ranges import Validators, decide, http_date, parse_range
from tests.helpers import check_openapi, sign_up
from tests.playback.conftest import Tree, add_video


def _parse_multipart(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    boundary = re.search(r"boundary=(\S+)", content_type)
    assert boundary is not None
    out = []
    for chunk in body.split(b"--" + boundary.group(1).encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, data = chunk.partition(b"\r\n\r\n")
        match = re.search(rb"Content-Range: (bytes \S+)", head)
        assert match is not None
        out.append((match.group(1).decode(), data[:-2]))  # the CRLF before the delimiter
    return out


async def _matrix(client: TestClient, url: str, expected: bytes) -> None:
    size = len(expected)
    full = await client.get(url)
    assert full.status == 200
    assert await full.read() == expected
    assert full.headers["Accept-Ranges"] == "bytes"
    assert int(full.headers["Content-Length"]) == size
    etag, modified = full.headers["ETag"], full.headers["Last-Modified"]
    assert etag.startswith('"') and not etag.startswith("W/")

    cases: list[tuple[dict[str, str], int, tuple[int, int] | None]] = [
        ({"Range": "bytes=0-99"}, 206, (0, 99)),
        ({"Range": "bytes=100-"}, 206, (100, size - 1)),
        ({"Range": "bytes=-500"}, 206, (size - 500, size - 1)),
        ({"Range": f"bytes={size - 10}-{size + 1000}"}, 206, (size - 10, size - 1)),
        ({"Range": f"bytes=0-{size * 3}"}, 206, (0, size - 1)),
        ({"Range": f"bytes=-{size * 3}"}, 206, (0, size - 1)),
        ({"Range": f"bytes={size // 2}-{size // 2}"}, 206, (size // 2, size // 2)),
        ({"Range": "bytes=0-9", "If-Range": etag}, 206, (0, 9)),
        ({"Range": "bytes=0-9", "If-Range": modified}, 206, (0, 9)),
        ({"Range": "bytes=0-9", "If-Range": '"stale"'}, 200, None),
        ({"Range": "bytes=0-9", "If-Range": "Mon, 01 Jan 2001 00:00:00 GMT"}, 200, None),
        ({"Range": "bytes=9-2"}, 200, None),  # invalid: the header is ignored
        ({"Range": "bytes=abc"}, 200, None),
        ({"Range": "items=0-9"}, 200, None),
        ({"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}, 200, None),
        ({"If-None-Match": '"other"'}, 200, None),
    ]
    for headers, status, span in cases:
        resp = await client.get(url, headers=headers)
        body = await resp.read()
        assert resp.status == status, headers
        if span is None:
            assert body == expected, headers
            continue
        first, last = span
        assert resp.headers["Content-Range"] == f"bytes {first}-{last}/{size}", headers
        assert int(resp.headers["Content-Length"]) == last - first + 1
        assert body == expected[first:last + 1], headers
        assert resp.headers["ETag"] == etag

    for headers in ({"Range": f"bytes={size}-"}, {"Range": f"bytes={size + 5}-{size + 9}"},
                    {"Range": "bytes=-0"}):
        resp = await client.get(url, headers=headers)
        assert resp.status == 416, headers
        assert resp.headers["Content-Range"] == f"bytes */{size}"

    for headers in ({"If-None-Match": etag}, {"If-None-Match": f'"x", {etag}'},
                    {"If-None-Match": "*"}, {"If-Modified-Since": modified},
                    {"If-None-Match": etag, "Range": "bytes=0-9"}):
        resp = await client.get(url, headers=headers)
        assert resp.status == 304, headers
        assert await resp.read() == b""
        assert resp.headers["ETag"] == etag

    resp = await client.get(url, headers={"If-Match": '"other"'})
    assert resp.status == 412

    resp = await client.get(url, headers={"Range": "bytes=0-9,20-29,-5"})
    assert resp.status == 206
    assert resp.headers["Content-Type"].startswith("multipart/byteranges; boundary=")
    parts = _parse_multipart(resp.headers["Content-Type"], await resp.read())
    assert parts == [
        (f"bytes 0-9/{size}", expected[0:10]),
        (f"bytes 20-29/{size}", expected[20:30]),
        (f"bytes {size - 5}-{size - 1}/{size}", expected[-5:]),
    ]

    head = await client.head(url)
    assert head.status == 200 and int(head.headers["Content-Length"]) == size
    assert head.headers["ETag"] == etag and await head.read() == b""


async def test_segment_ranges(client: TestClient, hls_tree: Tree) -> None:
    alice = await sign_up(client, "alice")
    vid = await add_video(client, alice, hls_tree)
    path = hls_tree.root / "hls" / "360p" / "seg_00001.m4s"
    await _matrix(client, f"/api/videos/{vid}/hls/360p/seg_00001.m4s", path.read_bytes())


async def test_original_ranges(client: TestClient, hls_tree: Tree) -> None:
    alice = await sign_up(client, "alice")
    vid = await add_video(client, alice, hls_tree)
    await _matrix(client, f"/api/videos/{vid}/original", hls_tree.source.read_bytes())


async def test_progressive_ranges_cross_part_boundaries(
    client: TestClient, hls_tree: Tree
) -> None:
    alice = await sign_up(client, "alice")
    vid = await add_video(client, alice, hls_tree)
    url = f"/api/videos/{vid}/progressive/360p.mp4"
    whole = await (await client.get(url)).read()
    directory = storage.video_dir(client.app[keys.CONFIG], vid) / "hls" / "360p"
    segments = b"".join(p.read_bytes() for p in sorted(directory.glob("seg_*.m4s")))
    assert whole.endswith(segments)  # the stored segments, as they are, no second copy
    assert whole[4:8] == b"ftyp" and b"sidx" in whole[: len(whole) - len(segments)]
    await _matrix(client, url, whole)
    head_len = len(whole) - len(segments)
    resp = await client.get(url, headers={"Range": f"bytes={head_len - 30}-{head_len + 30}"})
    assert resp.status == 206 and await resp.read() == whole[head_len - 30:head_len + 31]


def test_parse_range_edges() -> None:
    assert parse_range("bytes=0-0", 10) == [(0, 0)]
    assert parse_range("bytes=5-", 0) == []
    assert parse_range("bytes=-3", 0) == []
    assert parse_range("bytes= 1-2 , 4-5", 10) == [(1, 2), (4, 5)]
    assert parse_range("bytes=" + ",".join(["0-1"] * 17), 10) is None  # too many: ignored
    assert parse_range("bytes=1-2,x", 10) is None
    assert parse_range("bytes", 10) is None


@pytest.mark.parametrize(("method", "status"), [("HEAD", 200), ("GET", 206)])
def test_range_applies_to_get_only(method: str, status: int) -> None:
    v = Validators('"a"', 1_700_000_000)
    assert decide(method, {"Range": "bytes=0-1"}, 10, v).status == status
    assert decide(method, {"If-Modified-Since": http_date(1_700_000_000)}, 10, v).status == 304


def test_fixture_tree_is_untouched(hls_tree: Tree) -> None:
    assert not list(Path(hls_tree.root).rglob("*.ts"))


async def test_media_answers_match_the_openapi_document(
    client: TestClient, hls_tree: Tree, openapi: dict[str, Any]
) -> None:
    alice = await sign_up(client, "alice")
    vid = await add_video(client, alice, hls_tree)
    url = f"/api/videos/{vid}/hls/240p/seg_00000.m4s"
    # check_openapi reads bodies as text, so binary answers are checked here by hand.
    responses = openapi["paths"]["/api/videos/{video_id}/hls/{rendition}/{segment}"]["get"][
        "responses"]
    full = await client.get(url)
    for headers in ({}, {"Range": "bytes=0-3"}, {"Range": "bytes=0-1,4-5"}):
        resp = await client.get(url, headers=headers)
        assert resp.content_type in responses[str(resp.status)]["content"], headers
    for headers in ({"If-None-Match": full.headers["ETag"]}, {"Range": "bytes=99999999-"},
                    {"If-Match": '"nope"'}):
        resp = await client.get(url, headers=headers)
        await check_openapi(openapi, resp)
    resp = await client.get(url, headers={"Range": "bytes=99999999-"})
    problem = await resp.json(content_type="application/problem+json")
    assert resp.status == 416 and problem["status"] == 416
    assert resp.headers["Content-Range"] == f"bytes */{full.headers['Content-Length']}"


async def test_every_playback_route_is_documented(
    client: TestClient, openapi: dict[str, Any]
) -> None:
    documented = {(path, method) for path, ops in openapi["paths"].items() for method in ops}
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter", "")
        if route.method == "HEAD" and path not in playback_api.PATHS:
            continue  # JSON routes document GET only, as elsewhere in the API
        if path.startswith("/api/videos") and route.method in ("GET", "HEAD", "PATCH",
                                                                "DELETE", "POST"):
            assert (path, route.method.lower()) in documented, (path, route.method)
