"""Video metadata: one video, listings, owner edits and deletion, watch progress."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from aiohttp import web

from server import events, keys, storage, videos
from server.errors import BadRequest
from server.identity import ANON_COOKIE, current_viewer, require_user, viewer_key
from server.openapi import CURSOR_PARAMS, Schema, link, op, path_param, query_param, ref
from server.playback import watching
from server.validation import json_body
from server.viewer import Viewer
from server.workers.jobs import stop_processing

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
        "original_filename": {"type": ["string", "null"], "description": "the uploaded file's "
                              "name as given, in any script (to the owner; null for others)"},
        "processing_again": {"type": "boolean", "description": "a ready video is being "
                             "processed again; it plays its current ladder until the new one "
                             "is complete (POST /api/videos/{id}/reprocess)"},
        "streams": {
            "type": "object",
            "required": ["hls", "hls_ts", "progressive", "original"],
            "properties": {
                "hls": {"type": ["string", "null"], "description": "fMP4 HLS master"},
                "hls_ts": {"type": ["string", "null"], "description": "MPEG-TS HLS master"},
                "progressive": {"type": "array", "items": {
                    "type": "object", "required": ["name", "url", "width", "height"],
                    "properties": {"name": {"type": "string"}, "url": {"type": "string"},
                                   "width": {"type": ["integer", "null"]},
                                   "height": {"type": ["integer", "null"]}}}},
                "original": {"type": ["string", "null"]},
            },
        },
        "poster": {"type": ["string", "null"]},
        "storyboard": {"type": ["string", "null"], "description": "WebVTT of sprite cues"},
        "resume_position": {"type": ["number", "null"]},
    },
}
VIDEO_PAGE = {
    "type": "object",
    "required": ["items", "next_cursor"],
    "properties": {"items": {"type": "array", "items": ref("Video")},
                   "next_cursor": {"type": ["string", "null"]}},
}
VIDEO_PATCH = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": 200},
        "description": {"type": "string", "maxLength": 10000},
        "privacy": {"enum": list(videos.PRIVACY)},
        "comments_enabled": {"type": "boolean"},
        "allow_download": {"type": "boolean"},
    },
}
PROGRESS = {
    "type": "object",
    "additionalProperties": False,
    "required": ["position"],
    "properties": {
        "position": {"type": "number", "minimum": 0, "maximum": 1e7},
        "watched": {"type": "number", "minimum": 0, "maximum": 3600,
                    "description": "seconds played since the previous report"},
    },
}
PROGRESS_RESULT = {
    "type": "object",
    "required": ["position", "views", "counted"],
    "properties": {"position": {"type": "number"}, "views": {"type": "integer"},
                   "counted": {"type": "boolean"}},
}
SCHEMAS = {"Video": VIDEO, "VideoPage": VIDEO_PAGE, "VideoPatch": VIDEO_PATCH,
           "WatchProgress": PROGRESS, "WatchProgressResult": PROGRESS_RESULT}
VIDEO_ID = path_param("video_id", "the video's public id")
_VIDEO = "/api/videos/{video_id}"
_NEXT = (
    ("GetVideo", "get", _VIDEO, "its metadata and the ways to play it"),
    ("UpdateVideo", "patch", _VIDEO, "change its title, description or privacy"),
    ("DeleteVideo", "delete", _VIDEO, "delete it"),
    ("SaveProgress", "post", f"{_VIDEO}/progress", "save a resume position"),
    ("CancelProcessing", "post", f"{_VIDEO}/cancel", "stop its processing"),
    ("ListComments", "get", f"{_VIDEO}/comments", "its comments"),
    ("PostComment", "post", f"{_VIDEO}/comments", "comment on it"),
    ("GetRating", "get", f"{_VIDEO}/rating", "its rating"),
    ("RateVideo", "put", f"{_VIDEO}/rating", "like or dislike it"),
    ("GetOriginal", "get", f"{_VIDEO}/original", "download the original file"),
    ("GetPoster", "get", f"{_VIDEO}/poster.jpg", "its poster frame"),
    ("GetMaster", "get", f"{_VIDEO}/hls/master.m3u8", "its HLS master playlist"),
)


def video_links(video_id: str) -> dict[str, Schema]:
    """Links from an answer that names a new video (`video_id`, a runtime expression) to
    what its owner may do with it next."""
    links = {name: link(path, method, summary, {"video_id": video_id})
             for name, method, path, summary in _NEXT}
    # A first comment, not a reply to some comment that may not exist.
    links["PostComment"]["requestBody"] = {"body": "First!"}
    return links


PATHS = {
    "/api/videos": {
        "get": op("Videos: public ones, or every video of your own channel", tag="videos",
                  params=[query_param("channel", {"type": "string"}, "channel id or handle"),
                          query_param("sort", {"enum": ["newest", "views"]}, "order"),
                          *CURSOR_PARAMS],
                  responses={200: ref("VideoPage")}, auth="optional"),
    },
    "/api/videos/{video_id}": {
        "get": op("A video's metadata and the ways to play it (signed media URLs)",
                  tag="videos", params=[VIDEO_ID], responses={200: ref("Video")},
                  auth="optional"),
        "patch": op("Change a video's title, description, privacy or options (owner)",
                    tag="videos", params=[VIDEO_ID], body=ref("VideoPatch"),
                    responses={200: ref("Video")}),
        "delete": op("Delete a video and its files (owner)", tag="videos",
                     params=[VIDEO_ID], responses={204: None}),
    },
    "/api/videos/{video_id}/progress": {
        "post": op("Save the resume position; counts a view after 10 s watched per hour",
                   tag="videos", params=[VIDEO_ID], body=ref("WatchProgress"),
                   responses={200: ref("WatchProgressResult")}, auth="optional"),
    },
}


def _anon_cookie(request: web.Request, response: web.StreamResponse,
                 viewer: Viewer | None) -> None:
    if viewer is None and ANON_COOKIE not in request.cookies:
        response.set_cookie(ANON_COOKIE, request[_NEW_ANON], max_age=365 * 86400,
                            httponly=True, samesite="Lax", path="/",
                            secure=request.secure)


_NEW_ANON: web.RequestKey[str] = web.RequestKey("new_anon_viewer")


def _viewer_key(request: web.Request, viewer: Viewer | None) -> str:
    if viewer is None and ANON_COOKIE not in request.cookies:
        request[_NEW_ANON] = secrets.token_urlsafe(16)
        return f"anon:{request[_NEW_ANON]}"
    return viewer_key(request, viewer)


async def get_video(request: web.Request) -> web.Response:
    db = request.app[keys.DB]
    viewer = current_viewer(request)
    row = await videos.visible_video(db, request.match_info["video_id"], viewer)
    key = _viewer_key(request, viewer)
    # Public and unlisted media URLs are the same for everyone (cacheable); only a private
    # video's carry a grant, for players that cannot send the viewer's token.
    credential = viewer.credential if viewer is not None else None
    grant = (request.app[keys.SIGNER].media_grant(row["public_id"], key, credential)
             if row["privacy"] == "private" and credential is not None else None)
    body = await videos.video_json(db, row, viewer, grant=grant, viewer_key=key)
    response = web.json_response(body, headers={"Cache-Control": "private, no-store"})
    _anon_cookie(request, response, viewer)
    return response


async def list_videos(request: web.Request) -> web.Response:
    db = request.app[keys.DB]
    viewer = current_viewer(request)
    query = request.query
    sort = query.get("sort", "newest")
    if sort not in ("newest", "views"):
        raise BadRequest("sort must be 'newest' or 'views'")
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise BadRequest("limit must be an integer from 1 to 100")
    rows, cursor = await videos.list_videos(
        db, viewer, channel=query.get("channel"), sort=sort, cursor=query.get("cursor"),
        limit=limit)
    items = [await videos.video_json(db, row, viewer) for row in rows]
    return web.json_response({"items": items, "next_cursor": cursor})


async def update_video(request: web.Request) -> web.Response:
    db = request.app[keys.DB]
    viewer = require_user(request)
    row = await videos.managed_video(db, request.match_info["video_id"], viewer)
    changes: dict[str, Any] = await json_body(request, VIDEO_PATCH)
    row = await videos.update_video(db, row, changes)
    config = request.app[keys.CONFIG]
    # Privacy is read on every media request; drop the cached copy so it applies at once.
    request.app[keys.PLAYBACK].forget_video(row["public_id"],
                                       storage.video_dir(config, row["public_id"]))
    if "privacy" in changes:
        services = request.app[keys.SERVICES]
        if row["privacy"] == "private":
            events.video_hidden(services, row["public_id"], row["owner_id"],
                                "the video is private now")
        # A ready video made public for the first time is announced to subscribers now.
        await events.video_visibility_changed(services, row["public_id"])
        row = await videos.get_video(db, row["public_id"])
    return web.json_response(await videos.video_json(db, row, viewer))


async def delete_video(request: web.Request) -> web.Response:
    db = request.app[keys.DB]
    viewer = require_user(request)
    row = await videos.managed_video(db, request.match_info["video_id"], viewer)
    await stop_processing(request.app[keys.SERVICES], request.app.get(keys.WORKERS), row)
    await videos.delete_video(db, row)
    events.video_hidden(request.app[keys.SERVICES], row["public_id"], -1, "the video was deleted")
    directory = storage.video_dir(request.app[keys.CONFIG], row["public_id"])
    request.app[keys.PLAYBACK].forget_video(row["public_id"], directory)
    await asyncio.to_thread(storage.remove_tree, directory)
    return web.Response(status=204)


async def post_progress(request: web.Request) -> web.Response:
    db = request.app[keys.DB]
    viewer = current_viewer(request)
    row = await videos.visible_video(db, request.match_info["video_id"], viewer)
    body: dict[str, Any] = await json_body(request, PROGRESS)
    key = _viewer_key(request, viewer)
    counted = await watching.record_progress(
        db, row["id"], key, float(body["position"]), body.get("watched"), row["duration"])
    views = await db.fetch_value("SELECT views FROM videos WHERE id = ?", (row["id"],))
    position = await watching.resume_position(db, row["id"], key)
    response = web.json_response(
        {"position": position, "views": int(views or 0), "counted": counted})
    _anon_cookie(request, response, viewer)
    return response
