"""Any Unicode file name, by multipart (raw UTF-8, RFC 8187 `filename*`, Latin-1) and by tus
(base64 UTF-8 in Upload-Metadata): stored as given, shown to the owner, the title's default,
and the name of the original's download (RFC 6266 and RFC 8187)."""

from __future__ import annotations

import asyncio
import io
import re
from typing import Any
from urllib.parse import quote, unquote

import pytest
import requests
from aiohttp.test_utils import TestClient
from tusclient import client as tus_client

from server.config import Config
from tests.helpers import User, check_openapi, sign_up
from tests.uploads.tushelp import metadata, path_of, tus_headers

JAPANESE = "日本の動画.mp4"
EMOJI = "🎬 première 🎉.mp4"
BOUNDARY = "----reelhouse-names"


def raw_form(disposition: bytes, data: bytes, *fields: tuple[bytes, bytes]) -> bytes:
    """A multipart body written by hand, byte for byte, as a browser or a script sends it."""
    parts = [b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: form-data; name=\"" + name
             + b"\"\r\n\r\n" + value + b"\r\n" for name, value in fields]
    parts.append(b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: " + disposition
                 + b"\r\nContent-Type: video/mp4\r\n\r\n" + data + b"\r\n")
    return b"".join(parts) + b"--" + BOUNDARY.encode() + b"--\r\n"


async def post_raw(client: TestClient, user: User, body: bytes,
                   content_type: str = f"multipart/form-data; boundary={BOUNDARY}") -> Any:
    return await client.post("/api/videos/upload", data=body, headers={
        **user.headers, "Content-Type": content_type})


def requests_upload(client: TestClient, token: str, name: str, data: bytes,
                    **fields: str) -> requests.Response:
    """`requests` (urllib3's encoder) puts a non-ASCII name in `filename="..."` as raw UTF-8,
    the way browsers do (the HTML standard's multipart/form-data encoding)."""
    return requests.post(str(client.make_url("/api/videos/upload")), timeout=60,
                         headers={"Authorization": f"Bearer {token}"}, data=fields,
                         files={"file": (name, io.BytesIO(data), "video/mp4")})


def disposition_name(header: str) -> str:
    """The name a browser saves the download as: `filename*` (RFC 8187) over `filename`."""
    match = re.search(r"filename\*=UTF-8''([^;\s]+)", header)
    assert match is not None, header
    return unquote(match.group(1), errors="strict")


async def owner_view(client: TestClient, user: User, video_id: str,
                     openapi: dict[str, Any]) -> dict[str, Any]:
    resp = await client.get(f"/api/videos/{video_id}", headers=user.headers)
    body: dict[str, Any] = await check_openapi(openapi, resp)
    return body


async def download_name(client: TestClient, user: User, video_id: str) -> tuple[str, str]:
    resp = await client.get(f"/api/videos/{video_id}/original", headers=user.headers)
    assert resp.status == 200, await resp.text()
    header = resp.headers["Content-Disposition"]
    assert header.startswith("attachment; ")
    header.encode("ascii")  # the header itself is plain ASCII (RFC 8187 carries the rest)
    fallback = re.search(r'filename="([^"]*)"', header)
    assert fallback is not None
    return disposition_name(header), fallback.group(1)


@pytest.mark.parametrize("name", [JAPANESE, EMOJI, "Ελληνικά βίντεο.webm", "видео.mkv"])
async def test_multipart_client_with_non_latin_names(client: TestClient, openapi: dict[str, Any],
                                                     clip_bytes: bytes, name: str) -> None:
    alice = await sign_up(client, "alice")
    resp = await asyncio.to_thread(requests_upload, client, alice.tokens["access_token"],
                                   name, clip_bytes)
    assert resp.status_code == 201, resp.text
    video = await owner_view(client, alice, resp.json()["id"], openapi)
    assert video["original_filename"] == name
    assert video["title"] == name.rsplit(".", 1)[0]  # the title defaults to the name's stem
    saved, fallback = await download_name(client, alice, video["id"])
    assert saved == name
    assert fallback.isascii() and fallback.endswith("." + name.rsplit(".", 1)[1])
    bob = await sign_up(client, "bob")
    other = await (await client.get(f"/api/videos/{video['id']}", headers=bob.headers)).json()
    assert other["original_filename"] is None  # the file's name is its owner's business


async def test_raw_utf8_filename_and_field_names(client: TestClient, config: Config,
                                                 openapi: dict[str, Any],
                                                 clip_bytes: bytes) -> None:
    alice = await sign_up(client, "alice")
    body = raw_form(f'form-data; name="file"; filename="{JAPANESE}"'.encode(), clip_bytes,
                    ("説明".encode(), b"ignored: not a field of ours"),
                    (b"description", "概要 🎞".encode()))
    resp = await post_raw(client, alice, body)
    assert resp.status == 201, await resp.text()
    video = await check_openapi(openapi, resp)
    assert video["original_filename"] == JAPANESE and video["title"] == "日本の動画"
    assert video["description"] == "概要 🎞"
    assert (config.media_dir / video["id"] / "original").read_bytes() == clip_bytes


async def test_rfc8187_filename_star_wins(client: TestClient, openapi: dict[str, Any],
                                          clip_bytes: bytes) -> None:
    alice = await sign_up(client, "alice")
    encoded = quote(EMOJI, safe="").encode()
    body = raw_form(b"form-data; name=\"file\"; filename=\"fallback.mp4\"; filename*=UTF-8''"
                    + encoded, clip_bytes)
    resp = await post_raw(client, alice, body)
    assert resp.status == 201, await resp.text()
    video = await check_openapi(openapi, resp)
    assert video["original_filename"] == EMOJI
    assert (await download_name(client, alice, video["id"]))[0] == EMOJI
    # Both spellings of the parameter name, and a field name given the same way.
    body = raw_form(b"form-data; NAME*=utf-8''file; Filename*=iso-8859-1'fr'caf%E9.mp4",
                    clip_bytes)
    resp = await post_raw(client, alice, body)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["original_filename"] == "café.mp4"


async def test_latin1_bytes_and_hostile_names(client: TestClient, clip_bytes: bytes) -> None:
    alice = await sign_up(client, "alice")
    cases = [
        (b'filename="caf\xe9.mp4"', "café.mp4"),  # an old client's Latin-1 bytes
        (b'filename="C:\\Users\\\xe5\xa4\xaa\xe9\x83\x8e\\clip.mp4"', "clip.mp4"),
        (b'filename="../../etc/\x1b[31mred\x07.mp4"', "[31mred.mp4"),
        (b'filename="\xe2\x80\xaeevil\xe2\x80\xac4pm.exe"', "evil4pm.exe"),  # bidi override
        ('filename="{}.mp4"'.format("長" * 400).encode(), "長" * 251 + ".mp4"),
        (b'filename="say \\"hi\\".mp4"', 'say "hi".mp4'),
    ]
    for disposition, stored in cases:
        resp = await post_raw(client, alice, raw_form(b'form-data; name="file"; '
                                                      + disposition, clip_bytes))
        assert resp.status == 201, (disposition, await resp.text())
        body = await resp.json()
        assert body["original_filename"] == stored, disposition
        assert len(body["original_filename"]) <= 255


async def test_bad_names_are_400_and_store_nothing(client: TestClient, config: Config,
                                                   clip_bytes: bytes) -> None:
    alice = await sign_up(client, "alice")
    for disposition in [b"form-data; name=\"file\"; filename*=UTF-8''%E6%97",  # cut UTF-8
                        b"form-data; name=\"file\"; filename*=KOI8-R''%C1.mp4",
                        b"form-data; name=\"file\"; filename*=no-quotes.mp4",
                        b"form-data; name=\"file\"; filename*=UTF-8''%ZZ.mp4"]:
        resp = await post_raw(client, alice, raw_form(disposition, clip_bytes))
        assert resp.status == 400, disposition
        assert resp.content_type == "application/problem+json"
        assert "filename*" in (await resp.json())["detail"]
    resp = await post_raw(client, alice, raw_form(b'form-data; name="file"', clip_bytes),
                          content_type="multipart/form-data; boundary=日本")
    assert resp.status == 400 and "boundary" in (await resp.json())["detail"]
    resp = await post_raw(client, alice, b"", content_type="multipart/form-data")
    assert resp.status == 400
    mine = await (await client.get(f"/api/channels/{alice.channel_id}/videos",
                                   headers=alice.headers)).json()
    assert mine["items"] == []
    assert list(config.uploads_dir.iterdir()) == []


def tuspy_upload(client: TestClient, token: str, data: bytes, meta: dict[str, str]) -> str:
    tus = tus_client.TusClient(str(client.make_url("/api/uploads")),
                               headers={"Authorization": f"Bearer {token}"})
    uploader = tus.uploader(file_stream=io.BytesIO(data), chunk_size=64 * 1024, metadata=meta)
    uploader.upload()
    return str(uploader.url)


@pytest.mark.parametrize("name", [JAPANESE, EMOJI])
async def test_tuspy_with_non_latin_names(client: TestClient, openapi: dict[str, Any],
                                          clip_bytes: bytes, name: str) -> None:
    alice = await sign_up(client, "alice")
    url = await asyncio.to_thread(tuspy_upload, client, alice.tokens["access_token"],
                                  clip_bytes, {"filename": name, "filetype": "video/mp4"})
    head = await client.head(path_of(url), headers=tus_headers(alice))
    assert head.headers["Upload-Offset"] == str(len(clip_bytes))
    video = await owner_view(client, alice, head.headers["Video-Id"], openapi)
    assert video["original_filename"] == name and video["title"] == name.rsplit(".", 1)[0]
    assert (await download_name(client, alice, video["id"]))[0] == name


async def test_tus_metadata_names_are_cleaned_like_form_names(client: TestClient,
                                                             openapi: dict[str, Any]) -> None:
    alice = await sign_up(client, "alice")
    resp = await client.post("/api/uploads", headers={
        **tus_headers(alice), "Upload-Length": "100",
        "Upload-Metadata": metadata(filename="..\\年\\末/\u202eclip\t.mov",
                                    title="Given title")})
    assert resp.status == 201, await resp.text()
    video = await owner_view(client, alice, resp.headers["Video-Id"], openapi)
    assert video["original_filename"] == "clip.mov" and video["title"] == "Given title"
