"""Small helpers for speaking tus over raw HTTP in tests."""

from __future__ import annotations

import base64
from typing import Any

from aiohttp.test_utils import TestClient

from tests.helpers import User

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = "application/offset+octet-stream"


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def tus_headers(user: User | None, **extra: str) -> dict[str, str]:
    headers = dict(TUS)
    if user is not None:
        headers.update(user.headers)
    headers.update({k.replace("_", "-"): v for k, v in extra.items()})
    return headers


async def create(client: TestClient, user: User, length: int | None, **meta: str) -> Any:
    headers = tus_headers(user)
    if length is None:
        headers["Upload-Defer-Length"] = "1"
    else:
        headers["Upload-Length"] = str(length)
    headers["Upload-Metadata"] = metadata(**(meta or {"filename": "clip.mp4"}))
    resp = await client.post("/api/uploads", headers=headers)
    assert resp.status == 201, await resp.text()
    return resp


def path_of(location: str) -> str:
    return "/api/uploads/" + location.rsplit("/", 1)[1]


async def patch(client: TestClient, user: User, path: str, offset: int, body: bytes,
                **extra: str) -> Any:
    headers = tus_headers(user, **extra)
    headers["Upload-Offset"] = str(offset)
    headers["Content-Type"] = OCTETS
    return await client.patch(path, headers=headers, data=body)
