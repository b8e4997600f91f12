"""Video metadata."""

from __future__ import annotations

from aiohttp import web

from server import keys, videos
from server.identity import current_viewer
from server.openapi import op, path_param, ref

VIDEO = {
    "type": "object",
    "required": ["id", "title", "description", "privacy", "status", "channel", "created_at"],
    "properties": {
        "id": {"type": "string"},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "privacy": {"enum": list(videos.PRIVACY)},
        "status": {"enum": list(videos.STATUSES)},
        "error": {"type": ["string", "null"]},
        "duration": {"type": ["number", "null"]},
        "size": {"type": "integer"},
        "bytes_received": {"type": "integer"},
        "width": {"type": ["integer", "null"]},
        "height": {"type": ["integer", "null"]},
        "views": {"type": "integer"},
        "likes": {"type": "integer"},
        "dislikes": {"type": "integer"},
        "comments_enabled": {"type": "boolean"},
        "allow_download": {"type": "boolean"},
        "created_at": {"type": "string"},
        "published_at": {"type": ["string", "null"]},
        "owner": {"type": ["string", "null"]},
        "channel": {"anyOf": [ref("ChannelBrief"), {"type": "null"}]},
        "progress": {"type": ["object", "null"]},
        "can_manage": {"type": "boolean"},
    },
}
SCHEMAS = {"Video": VIDEO}
VIDEO_ID = path_param("video_id", "the video's public id")
PATHS = {
    "/api/videos/{video_id}": {
        "get": op("A video's metadata and the ways to play it", tag="videos",
                  params=[VIDEO_ID], responses={200: ref("Video")}, auth="optional"),
    },
}


async def get_video(request: web.Request) -> web.Response:
    db = request.app[keys.DB]
    viewer = current_viewer(request)
    row = await videos.visible_video(db, request.match_info["video_id"], viewer)
    return web.json_response(await videos.video_json(db, row, viewer))
