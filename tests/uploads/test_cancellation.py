"""A client that leaves while its upload is being finished.

The server cancels the handler of a request whose client disconnected (handler
cancellation, as in run.py); the completion it had started (the scan, the move into place,
the job row) goes on regardless. A scanner that takes a while keeps each test's client
inside that window.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp.pytest_plugin import AiohttpClient
from aiohttp.test_utils import TestClient

from server import keys
from server.app import create_app
from tests.conftest import make_config
from tests.helpers import User, sign_up
from tests.uploads.tushelp import OCTETS, metadata, patch, path_of, tus_headers

BOUNDARY = "reelhouse-cancel-boundary"


async def _slow_scan_client(aiohttp_client: AiohttpClient, tmp_path: Path
                            ) -> tuple[TestClient, User, Path]:
    """The scanner marks that it started, then takes a second to say yes."""
    marker = tmp_path / "scanning"
    config = make_config(tmp_path / "data",
                         scan_command=f"sh -c 'touch {marker}; sleep 1' {{path}}")
    client = await aiohttp_client(create_app(config))
    return client, await sign_up(client, "alice"), marker


async def _send_and_leave(client: TestClient, head: str, body: bytes, marker: Path) -> None:
    """Send a whole request, then close the connection once the scanner has started."""
    assert client.port is not None
    _, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(head.encode() + body)
    await writer.drain()
    for _ in range(200):
        if marker.exists():
            break
        await asyncio.sleep(0.025)
    assert marker.exists(), "the scanner never started"
    writer.close()
    await writer.wait_closed()


def _head(method: str, path: str, user: User, length: int, **extra: str) -> str:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1",
             f"Authorization: {user.headers['Authorization']}", f"Content-Length: {length}",
             *(f"{k.replace('_', '-')}: {v}" for k, v in extra.items())]
    return "\r\n".join(lines) + "\r\n\r\n"


async def _statuses(client: TestClient) -> list[str]:
    """The videos' statuses once nothing is `uploading` any more (or after 10 s)."""
    db = client.server.app[keys.DB]
    rows: list[str] = []
    for _ in range(200):
        rows = [r[0] for r in await db.fetch_all("SELECT status FROM videos")]
        if rows and "uploading" not in rows:
            break
        await asyncio.sleep(0.05)
    return rows


async def test_tus_patch_left_during_its_completion(aiohttp_client: AiohttpClient,
                                                     tmp_path: Path, clip_bytes: bytes) -> None:
    client, alice, marker = await _slow_scan_client(aiohttp_client, tmp_path)
    resp = await client.post("/api/uploads", headers={
        **tus_headers(alice), "Upload-Length": str(len(clip_bytes)),
        "Upload-Metadata": metadata(filename="left.mp4")})
    path, video_id = path_of(resp.headers["Location"]), resp.headers["Video-Id"]
    await _send_and_leave(client, _head("PATCH", path, alice, len(clip_bytes),
                                        Tus_Resumable="1.0.0", Upload_Offset="0",
                                        Content_Type=OCTETS), clip_bytes, marker)
    assert await _statuses(client) in (["uploaded"], ["processing"], ["ready"])
    config = client.server.app[keys.CONFIG]
    assert (config.media_dir / video_id / "original").read_bytes() == clip_bytes
    head = await client.head(path, headers=tus_headers(alice))
    assert head.status == 200 and head.headers["Upload-Offset"] == str(len(clip_bytes))
    assert "Upload-Expires" not in head.headers  # complete, not waiting for more bytes


async def test_tus_patch_left_right_after_its_last_byte(aiohttp_client: AiohttpClient,
                                                         tmp_path: Path, clip_bytes: bytes
                                                         ) -> None:
    """The client closes as soon as its last byte is sent: whatever the handler was doing
    then (writing, recording, finishing), the full upload is finished."""
    client = await aiohttp_client(create_app(make_config(tmp_path / "data")))
    alice = await sign_up(client, "alice")
    resp = await client.post("/api/uploads", headers={
        **tus_headers(alice), "Upload-Length": str(len(clip_bytes)),
        "Upload-Metadata": metadata(filename="gone.mp4")})
    path, video_id = path_of(resp.headers["Location"]), resp.headers["Video-Id"]
    assert client.port is not None
    _, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(_head("PATCH", path, alice, len(clip_bytes), Tus_Resumable="1.0.0",
                       Upload_Offset="0", Content_Type=OCTETS).encode() + clip_bytes[:-1])
    await writer.drain()
    await asyncio.sleep(0.3)  # the handler has read all but the last byte and waits for it
    writer.write(clip_bytes[-1:])
    writer.close()
    await writer.wait_closed()
    assert await _statuses(client) in (["uploaded"], ["processing"], ["ready"])
    config = client.server.app[keys.CONFIG]
    assert (config.media_dir / video_id / "original").read_bytes() == clip_bytes


async def test_final_concatenation_left_during_its_completion(
        aiohttp_client: AiohttpClient, tmp_path: Path, clip_bytes: bytes) -> None:
    client, alice, marker = await _slow_scan_client(aiohttp_client, tmp_path)
    cut = len(clip_bytes) // 2
    parts = []
    for piece in (clip_bytes[:cut], clip_bytes[cut:]):
        resp = await client.post("/api/uploads", headers={
            **tus_headers(alice), "Upload-Length": str(len(piece)), "Upload-Concat": "partial"})
        parts.append(path_of(resp.headers["Location"]))
        assert (await patch(client, alice, parts[-1], 0, piece)).status == 204
    await _send_and_leave(client, _head(
        "POST", "/api/uploads", alice, 0, Tus_Resumable="1.0.0",
        Upload_Concat="final;" + " ".join(parts),
        Upload_Metadata=metadata(filename="joined.mp4")), b"", marker)
    assert await _statuses(client) in (["uploaded"], ["processing"], ["ready"])
    db = client.server.app[keys.DB]
    video_id = await db.fetch_value("SELECT public_id FROM videos")
    config = client.server.app[keys.CONFIG]
    assert (config.media_dir / str(video_id) / "original").read_bytes() == clip_bytes


async def test_multipart_left_during_its_completion(aiohttp_client: AiohttpClient,
                                                    tmp_path: Path, clip_bytes: bytes) -> None:
    client, alice, marker = await _slow_scan_client(aiohttp_client, tmp_path)
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nLeft\r\n"
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            "filename=\"left.mp4\"\r\nContent-Type: video/mp4\r\n\r\n").encode()
    body += clip_bytes + f"\r\n--{BOUNDARY}--\r\n".encode()
    await _send_and_leave(client, _head(
        "POST", "/api/videos/upload", alice, len(body),
        Content_Type=f"multipart/form-data; boundary={BOUNDARY}"), body, marker)
    assert await _statuses(client) in (["uploaded"], ["processing"], ["ready"])
    db = client.server.app[keys.DB]
    video_id = await db.fetch_value("SELECT public_id FROM videos")
    config = client.server.app[keys.CONFIG]
    assert (config.media_dir / str(video_id) / "original").read_bytes() == clip_bytes
