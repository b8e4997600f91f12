"""Subscriptions, the subscription feed, comments and ratings."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server import channels, events, keys
from server.errors import ValidationFailed, field_error
from server.identity import current_viewer, require_user
from server.openapi import (
    CURSOR_PARAMS,
    NOT_BLANK,
    ROW_ID,
    link,
    op,
    path_param,
    query_param,
    ref,
    with_links,
)
from server.social import comments, likes, subscriptions
from server.social.feed import subscription_feed
from server.social.paging import page_request, page_schema
from server.validation import MAX_ID, json_body, optional_json_body, parse_id
from server.videos import visible_video

NOTIFY = {"enum": list(subscriptions.NOTIFY),
          "description": "'all': a notification for each new video; 'none': just the feed"}
SUBSCRIBE_BODY: dict[str, Any] = {"type": "object", "additionalProperties": False,
                                  "properties": {"notify": NOTIFY}}
NOTIFY_BODY: dict[str, Any] = {"type": "object", "additionalProperties": False,
                               "required": ["notify"], "properties": {"notify": NOTIFY}}
# Not blank (the pattern), and at most MAX_LENGTH once trimmed, which no maxLength says:
# the server validates bodies with this very schema.
COMMENT_TEXT = {"type": "string", "minLength": 1, "pattern": NOT_BLANK,
                "description": f"1 to {comments.MAX_LENGTH} characters once surrounding "
                "white space is trimmed"}
COMMENT_BODY: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["body"],
    "properties": {"body": COMMENT_TEXT,
                   "parent_id": {"anyOf": [ROW_ID, {"type": "null"}],
                                 "description": "the comment this one answers"}},
}
EDIT_BODY: dict[str, Any] = {"type": "object", "additionalProperties": False,
                             "required": ["body"], "properties": {"body": COMMENT_TEXT}}
RATING_BODY: dict[str, Any] = {"type": "object", "additionalProperties": False,
                               "required": ["rating"],
                               "properties": {"rating": {"enum": list(likes.RATINGS)}}}

SUBSCRIPTION = {
    "type": "object", "required": ["channel", "notify", "created_at"],
    "properties": {
        "channel": {"type": "object", "required": ["id", "handle", "display_name"],
                    "properties": {"id": {"type": "string"}, "handle": {"type": "string"},
                                   "display_name": {"type": "string"},
                                   "subscriber_count": {"type": "integer"}}},
        "notify": {"enum": list(subscriptions.NOTIFY)},
        "created_at": {"type": "string"},
    },
}
COMMENT = {
    "type": "object",
    "required": ["id", "video_id", "parent_id", "author", "body", "deleted", "reply_count",
                 "created_at"],
    "properties": {
        "id": {"type": "integer"}, "video_id": {"type": "string"},
        "parent_id": {"type": ["integer", "null"]},
        "author": {"anyOf": [{"type": "null"}, {
            "type": "object", "required": ["username"],
            "properties": {"username": {"type": "string"},
                           "display_name": {"type": "string"}}}]},
        "body": {"type": "string", "description": "'[deleted]' for a deleted comment"},
        "deleted": {"type": "boolean"}, "reply_count": {"type": "integer"},
        "created_at": {"type": "string"}, "edited_at": {"type": ["string", "null"]},
        "can_edit": {"type": "boolean"}, "can_delete": {"type": "boolean"},
    },
}
RATING = {"type": "object", "required": ["rating", "likes", "dislikes"],
          "properties": {"rating": {"enum": list(likes.RATINGS)},
                         "likes": {"type": "integer"}, "dislikes": {"type": "integer"}}}
SCHEMAS = {
    "Subscription": SUBSCRIPTION, "SubscriptionPage": page_schema(ref("Subscription")),
    "VideoPage": page_schema(ref("Video")), "Comment": COMMENT,
    "CommentPage": page_schema(ref("Comment")), "Rating": RATING,
}
CHANNEL_ID = path_param("channel_id", "the channel's id or handle")
VIDEO_ID = path_param("video_id", "the video's public id")
COMMENT_ID = path_param("comment_id", "the comment's id", ROW_ID)
PARENT = query_param("parent_id", ROW_ID,
                     "list the replies to this comment instead of the top-level comments")
_COMMENT = "/api/videos/{video_id}/comments/{comment_id}"
PATHS = {
    "/api/subscriptions": {
        "get": op("My subscriptions, newest first", tag="social", params=CURSOR_PARAMS,
                  responses={200: ref("SubscriptionPage")}),
    },
    "/api/subscriptions/{channel_id}": {
        "post": op("Subscribe to a channel (200 if already subscribed)", tag="social",
                   params=[CHANNEL_ID], body=SUBSCRIBE_BODY, body_required=False,
                   responses={201: ref("Subscription"), 200: ref("Subscription")}),
        "patch": op("Change a subscription's notification preference", tag="social",
                    params=[CHANNEL_ID], body=NOTIFY_BODY,
                    responses={200: ref("Subscription")}),
        "delete": op("Unsubscribe", tag="social", params=[CHANNEL_ID], responses={204: None}),
    },
    "/api/feed": {
        "get": op("The newest public videos of my subscribed channels", tag="social",
                  params=CURSOR_PARAMS, responses={200: ref("VideoPage")}),
    },
    "/api/videos/{video_id}/comments": {
        "get": op("Comments on a video (top level newest first, replies oldest first)",
                  tag="social", params=[VIDEO_ID, PARENT, *CURSOR_PARAMS],
                  responses={200: ref("CommentPage")}, auth="optional"),
        "post": with_links(
            op("Comment on a video, or reply with parent_id", tag="social",
               params=[VIDEO_ID], body=COMMENT_BODY, responses={201: ref("Comment")}),
            201, {name: link(_COMMENT, method, summary, {"video_id": "$request.path.video_id",
                                                         "comment_id": "$response.body#/id"})
                  for name, method, summary in (("EditComment", "patch", "edit it"),
                                                ("DeleteComment", "delete", "delete it"))}
            | {"ListReplies": link("/api/videos/{video_id}/comments", "get", "its replies",
                                   {"video_id": "$request.path.video_id",
                                    "parent_id": "$response.body#/id"})}),
    },
    _COMMENT: {
        "patch": op("Edit my comment", tag="social", params=[VIDEO_ID, COMMENT_ID],
                    body=EDIT_BODY, responses={200: ref("Comment")}),
        "delete": op("Delete a comment (author, video owner or admin)", tag="social",
                     params=[VIDEO_ID, COMMENT_ID], responses={204: None}),
    },
    "/api/videos/{video_id}/rating": {
        "get": op("My rating of a video and its totals", tag="social", params=[VIDEO_ID],
                  responses={200: ref("Rating")}, auth="optional"),
        "put": op("Like, dislike or clear my rating", tag="social", params=[VIDEO_ID],
                  body=RATING_BODY, responses={200: ref("Rating")}),
    },
}


def _int_param(name: str, source: str | None) -> int | None:
    if source is None:
        return None
    value = parse_id(source)
    if value is None:
        raise ValidationFailed([field_error(name, "must be a comment id: an integer from 1 to "
                                                  f"{MAX_ID}")])
    return value


async def subscribe(request: web.Request) -> web.Response:
    viewer = require_user(request)
    body = await optional_json_body(request, SUBSCRIBE_BODY)
    db = request.app[keys.DB]
    channel = await channels.get_channel(db, request.match_info["channel_id"])
    row, created = await subscriptions.subscribe(db, viewer.user_id, channel,
                                                 body.get("notify"))
    if created:
        await events.channel_subscribed(request.app[keys.SERVICES], channel, viewer.username)
    return web.json_response(subscriptions.subscription_json(row), status=201 if created else 200)


async def update_subscription(request: web.Request) -> web.Response:
    viewer = require_user(request)
    body = await json_body(request, NOTIFY_BODY)
    db = request.app[keys.DB]
    channel = await channels.get_channel(db, request.match_info["channel_id"])
    row = await subscriptions.set_notify(db, viewer.user_id, channel, body["notify"])
    return web.json_response(subscriptions.subscription_json(row))


async def unsubscribe(request: web.Request) -> web.Response:
    viewer = require_user(request)
    db = request.app[keys.DB]
    channel = await channels.get_channel(db, request.match_info["channel_id"])
    await subscriptions.unsubscribe(db, viewer.user_id, channel)
    return web.Response(status=204)


async def list_subscriptions(request: web.Request) -> web.Response:
    viewer = require_user(request)
    page = page_request(request, 1)
    return web.json_response(await subscriptions.listing(request.app[keys.DB], viewer.user_id,
                                                         page))


async def feed(request: web.Request) -> web.Response:
    viewer = require_user(request)
    page = page_request(request, 2)
    return web.json_response(await subscription_feed(request.app[keys.DB], viewer, page))


async def list_comments(request: web.Request) -> web.Response:
    viewer = current_viewer(request)
    db = request.app[keys.DB]
    video = await visible_video(db, request.match_info["video_id"], viewer)
    parent_id = _int_param("parent_id", request.query.get("parent_id"))
    page = page_request(request, 1)
    rows = await comments.listing(db, video, parent_id, page)
    return web.json_response(comments.listing_json(rows, video, viewer, page))


async def post_comment(request: web.Request) -> web.Response:
    viewer = require_user(request)
    db = request.app[keys.DB]
    video = await visible_video(db, request.match_info["video_id"], viewer)
    body = await json_body(request, COMMENT_BODY)
    row, parent = await comments.post(db, video, viewer.user_id, body["body"],
                                      body.get("parent_id"))
    comment = comments.comment_json(row, video, viewer)
    await events.comment_posted(request.app[keys.SERVICES], video, comment, viewer.user_id,
                                parent["author_id"] if parent else None)
    return web.json_response(comment, status=201)


async def _comment(request: web.Request) -> tuple[Any, Any, Any]:
    viewer = require_user(request)
    db = request.app[keys.DB]
    video = await visible_video(db, request.match_info["video_id"], viewer)
    comment_id = _int_param("comment_id", request.match_info["comment_id"])
    assert comment_id is not None
    return viewer, video, await comments.get_comment(db, video, comment_id)


async def edit_comment(request: web.Request) -> web.Response:
    viewer, video, comment = await _comment(request)
    body = await json_body(request, EDIT_BODY)
    row = await comments.edit(request.app[keys.DB], video, comment, viewer, body["body"])
    return web.json_response(comments.comment_json(row, video, viewer))


async def delete_comment(request: web.Request) -> web.Response:
    viewer, video, comment = await _comment(request)
    await comments.delete(request.app[keys.DB], video, comment, viewer)
    return web.Response(status=204)


async def get_rating(request: web.Request) -> web.Response:
    viewer = current_viewer(request)
    db = request.app[keys.DB]
    video = await visible_video(db, request.match_info["video_id"], viewer)
    return web.json_response(await likes.get_rating(db, video,
                                                    viewer.user_id if viewer else None))


async def put_rating(request: web.Request) -> web.Response:
    viewer = require_user(request)
    db = request.app[keys.DB]
    video = await visible_video(db, request.match_info["video_id"], viewer)
    body = await json_body(request, RATING_BODY)
    return web.json_response(await likes.set_rating(db, video, viewer.user_id, body["rating"]))
