"""Domain events: the one place the rest of the server announces what happened.

Each function publishes on the bus; those that concern a person also persist a
notification first (see notifications), so a user who was away still gets it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server import keys


def video_topic(public_id: str) -> str:
    return f"video:{public_id}"


def user_topic(user_id: int) -> str:
    return f"user:{user_id}"


def channel_topic(public_id: str) -> str:
    return f"channel:{public_id}"


def video_progress(app: web.Application, public_id: str, progress: dict[str, Any]) -> None:
    """Processing progress: ephemeral, never persisted (the video row holds the latest)."""
    app[keys.BUS].publish(video_topic(public_id), {"type": "video.progress",
                                                   "video_id": public_id, **progress})


async def video_status_changed(
    app: web.Application, owner_id: int, public_id: str, status: str, error: str | None = None
) -> None:
    event = {"type": "video.status", "video_id": public_id, "status": status, "error": error}
    app[keys.BUS].publish(video_topic(public_id), event)
    app[keys.BUS].publish(user_topic(owner_id), event)


async def upload_completed(app: web.Application, owner_id: int, public_id: str) -> None:
    event = {"type": "upload.completed", "video_id": public_id}
    app[keys.BUS].publish(video_topic(public_id), event)
    app[keys.BUS].publish(user_topic(owner_id), event)
