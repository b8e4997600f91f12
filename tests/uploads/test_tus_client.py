"""Uploads with tuspy, a real tus client, against the app served on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import io
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from tusclient import client as tus_client

from server.config import Config
from tests.helpers import check_openapi, sign_up
from tests.uploads.tushelp import path_of


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
