"""What the WebSocket (ws.py) and SSE (sse.py) handlers share: who is connecting (cookie,
Bearer header or `?token=`), which topics they may follow, and the backlog of missed
notifications."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from aiohttp import web

from server import channels, events, keys
from server.errors import Forbidden, NotFound, Unauthorized, ValidationFailed, field_error
from server.identity import current_viewer, viewer_from_token
from server.social import notifications
from server.videos import visible_video
from server.viewer import Viewer

MAX_TOPICS = 64
MAX_ID = (1 << 63) - 1
TOO_MANY_SLUG = "too-many-live-connections"


def too_many(limit: int) -> str:
    """Why a live connection was refused: fits a WebSocket close reason (RFC 6455 section
    5.5: a control frame's payload is at most 125 bytes, the code taking two)."""
    return f"at most {limit} live connections (WebSocket and SSE) per user; close one first"


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if not origin:
        return True  # not a browser: no ambient cookie to abuse
    host = urlsplit(origin).netloc.lower()
    public = urlsplit(request.app[keys.CONFIG].public_url).netloc.lower()
    return host in {request.host.lower(), public}


async def authenticate(request: web.Request) -> Viewer:
    """Cookie or Bearer header (resolved by the middleware), else `?token=`: browsers
    cannot set headers on WebSocket or EventSource requests."""
    viewer = current_viewer(request)
    token = request.query.get("token")
    if viewer is None and token:
        viewer = await viewer_from_token(request, token)
    if viewer is None:
        raise Unauthorized()
    if "read" not in viewer.scopes:
        raise Forbidden("this API token lacks the 'read' scope", slug="scope")
    # A cookie rides along on cross-site WebSocket requests (no CORS there): refuse
    # foreign origins, or any page could read a signed-in user's events.
    if viewer.via == "cookie" and not _same_origin(request):
        raise Forbidden("cross-origin live connections need a token", slug="origin")
    return viewer


def parse_last_id(raw: object, name: str = "last_id") -> int | None:
    if raw is None or raw == "":
        return None
    try:
        value = int(str(raw))
    except ValueError:
        value = -1
    # SQLite integers are 64-bit: a larger id would fail in the database, not here.
    if not 0 <= value <= MAX_ID or isinstance(raw, bool):
        raise ValidationFailed([field_error(name, "must be an integer from 0 to 2^63-1")])
    return value


async def check_topic(app: web.Application, viewer: Viewer, topic: str) -> str:
    """A topic the viewer may follow: their own user topic, a video they may see, or a
    channel (channel events only announce public videos)."""
    kind, _, ident = topic.partition(":")
    db = app[keys.DB]
    if kind == "user" and ident == str(viewer.user_id):
        return topic
    if kind == "video" and ident:
        row = await visible_video(db, ident, viewer)
        return events.video_topic(row["public_id"])
    if kind == "channel" and ident:
        channel = await channels.get_channel(db, ident)
        return events.channel_topic(channel["public_id"])
    raise NotFound(f"no topic '{topic[:80]}' you may follow")


async def backlog(app: web.Application, user_id: int,
                  last_id: int) -> AsyncIterator[tuple[int, str]]:
    """Stored notifications newer than `last_id`, oldest first, as (id, JSON message)."""
    db = app[keys.DB]
    while True:
        rows = await notifications.since(db, user_id, last_id)
        for row in rows:
            message = {"type": "notification", "topic": events.user_topic(user_id),
                       "notification": notifications.notification_json(row)}
            yield row["id"], json.dumps(message, separators=(",", ":"))
            last_id = row["id"]
        if len(rows) < notifications.RESUME_BATCH:
            return
