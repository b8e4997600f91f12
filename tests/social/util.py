"""Helpers for the social tests: videos made through the real domain functions and made
ready through the real event path the pipeline uses."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from server import events, keys
from server.videos import create_video
from tests.helpers import User


def app_of(client: TestClient) -> web.Application:
    app = client.server.app
    assert app is not None
    return app


async def new_video(client: TestClient, owner: User, title: str = "clip", *,
                    privacy: str = "public", status: str = "processing") -> str:
    app = app_of(client)
    db = app[keys.DB]
    channel_key = await db.fetch_value("SELECT id FROM channels WHERE public_id = ?",
                                       (owner.channel_id,))
    row = await create_video(db, owner.id, channel_key, title, privacy=privacy, status=status)
    return str(row["public_id"])


async def make_ready(client: TestClient, owner: User, video_id: str,
                     status: str = "ready", error: str | None = None) -> None:
    """What the pipeline does: write the status, then call the event function."""
    app = app_of(client)
    await app[keys.DB].write("UPDATE videos SET status = ?, error = ? WHERE public_id = ?",
                             (status, error, video_id))
    await events.video_status_changed(app[keys.SERVICES], owner.id, video_id, status, error)


async def subscribe(client: TestClient, user: User, channel_id: str,
                    notify: str | None = None) -> Any:
    body = {} if notify is None else {"notify": notify}
    resp = await client.post(f"/api/subscriptions/{channel_id}", json=body,
                             headers=user.headers)
    assert resp.status in (200, 201), await resp.text()
    return await resp.json()
