"""Channel pages and channel management."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server import channels, keys
from server.identity import current_viewer, require_user
from server.openapi import CURSOR_PARAMS, SINGLE_LINE, link, op, path_param, ref, with_links
from server.social.feed import channel_videos as list_channel_videos
from server.social.paging import page_request
from server.validation import json_body

HANDLE = {"type": "string", "minLength": 3, "maxLength": 32,
          "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$"}
NAME = {"type": "string", "minLength": 1, "maxLength": 80, "pattern": SINGLE_LINE}
DESCRIPTION = {"type": "string", "maxLength": 5000}
CREATE_BODY: dict[str, Any] = {
    "type": "object", "required": ["handle", "display_name"], "additionalProperties": False,
    "properties": {"handle": HANDLE, "display_name": NAME, "description": DESCRIPTION},
}
UPDATE_BODY: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {"handle": HANDLE, "display_name": NAME, "description": DESCRIPTION},
}
CHANNEL = {
    "type": "object",
    "required": ["id", "handle", "display_name", "description", "subscriber_count",
                 "video_count"],
    "properties": {
        "id": {"type": "string"}, "handle": {"type": "string"},
        "display_name": {"type": "string"}, "description": {"type": "string"},
        "owner": {"type": ["string", "null"]}, "avatar": {"type": ["string", "null"]},
        "subscriber_count": {"type": "integer"}, "video_count": {"type": "integer"},
        "created_at": {"type": "string"},
    },
}
SCHEMAS = {"Channel": CHANNEL}
CHANNEL_ID = path_param("channel_id", "the channel's id or handle")
_CHANNEL_LINKS = (
    ("GetChannel", "get", "/api/channels/{channel_id}", "the new channel's page"),
    ("UpdateChannel", "patch", "/api/channels/{channel_id}", "rename or describe it"),
    ("DeleteChannel", "delete", "/api/channels/{channel_id}", "delete it"),
    ("ChannelVideos", "get", "/api/channels/{channel_id}/videos", "its videos"),
    ("Subscribe", "post", "/api/subscriptions/{channel_id}", "subscribe to it"),
    ("UpdateSubscription", "patch", "/api/subscriptions/{channel_id}",
     "change the subscription's notifications"),
    ("Unsubscribe", "delete", "/api/subscriptions/{channel_id}", "unsubscribe"),
)
PATHS = {
    "/api/channels": {"post": with_links(
        op("Create a channel", tag="channels", body=CREATE_BODY, responses={201: ref("Channel")}),
        201, {name: link(path, method, summary, {"channel_id": "$response.body#/id"})
              for name, method, path, summary in _CHANNEL_LINKS})},
    "/api/channels/{channel_id}": {
        "get": op("A channel's public page", tag="channels", params=[CHANNEL_ID],
                  responses={200: ref("Channel")}, auth="none"),
        "patch": op("Rename or describe a channel (owner)", tag="channels", params=[CHANNEL_ID],
                    body=UPDATE_BODY, responses={200: ref("Channel")}),
        "delete": op("Delete a channel and its videos (owner)", tag="channels",
                     params=[CHANNEL_ID], responses={204: None}),
    },
    "/api/channels/{channel_id}/videos": {
        "get": op("A channel's videos, newest first (private and unlisted ones only for the "
                  "owner)", tag="channels", params=[CHANNEL_ID, *CURSOR_PARAMS],
                  responses={200: ref("VideoPage")}, auth="optional"),
    },
}


async def get_channel(request: web.Request) -> web.Response:
    db = request.app[keys.DB]
    row = await channels.get_channel(db, request.match_info["channel_id"])
    return web.json_response(await channels.channel_json(db, row))


async def create_channel(request: web.Request) -> web.Response:
    viewer = require_user(request)
    body = await json_body(request, CREATE_BODY)
    db = request.app[keys.DB]
    row = await channels.create_channel(db, viewer.user_id, body["handle"],
                                        body["display_name"], body.get("description", ""))
    return web.json_response(await channels.channel_json(db, row), status=201)


async def update_channel(request: web.Request) -> web.Response:
    viewer = require_user(request)
    body = await json_body(request, UPDATE_BODY)
    db = request.app[keys.DB]
    row = await channels.owned_channel(db, request.match_info["channel_id"], viewer.user_id,
                                       viewer.is_admin)
    await channels.update_channel(db, row, body)
    fresh = await channels.get_channel(db, row["public_id"])
    return web.json_response(await channels.channel_json(db, fresh))


async def delete_channel(request: web.Request) -> web.Response:
    viewer = require_user(request)
    db = request.app[keys.DB]
    row = await channels.owned_channel(db, request.match_info["channel_id"], viewer.user_id,
                                       viewer.is_admin)
    app = request.app
    await channels.delete_channel(app[keys.SERVICES], app.get(keys.WORKERS),
                                  app[keys.PLAYBACK], row)
    return web.Response(status=204)


async def channel_videos(request: web.Request) -> web.Response:
    db = request.app[keys.DB]
    row = await channels.get_channel(db, request.match_info["channel_id"])
    page = page_request(request, 2)
    return web.json_response(await list_channel_videos(db, row, current_viewer(request), page))
