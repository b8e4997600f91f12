"""The notification inbox."""

from __future__ import annotations

from aiohttp import web

from server import events, keys
from server.errors import NotFound
from server.identity import require_user
from server.openapi import CURSOR_PARAMS, ROW_ID, op, path_param, ref
from server.social import notifications
from server.social.paging import page_request, page_schema
from server.validation import parse_id

NOTIFICATION = {
    "type": "object", "required": ["id", "kind", "read", "created_at", "data"],
    "properties": {
        "id": {"type": "integer", "description": "grows monotonically; resume after it"},
        "kind": {"enum": list(notifications.KINDS)},
        "read": {"type": "boolean"}, "created_at": {"type": "string"},
        "data": {"type": "object", "description": "video, channel, comment and actor, "
                 "as the kind needs"},
    },
}
INBOX = page_schema(ref("Notification"))
INBOX["required"] = [*INBOX["required"], "unread_count"]
INBOX["properties"]["unread_count"] = {"type": "integer"}
READ_ALL = {"type": "object", "required": ["marked", "unread_count"],
            "properties": {"marked": {"type": "integer"}, "unread_count": {"type": "integer"}}}
SCHEMAS = {"Notification": NOTIFICATION, "NotificationPage": INBOX, "ReadAll": READ_ALL}
PATHS = {
    "/api/notifications": {
        "get": op("My notifications, unread first, newest first", tag="notifications",
                  params=CURSOR_PARAMS, responses={200: ref("NotificationPage")}),
    },
    "/api/notifications/{notification_id}/read": {
        "post": op("Mark one notification read", tag="notifications",
                   params=[path_param("notification_id", "the notification's id", ROW_ID)],
                   responses={200: ref("Notification")}),
    },
    "/api/notifications/read-all": {
        "post": op("Mark every notification read", tag="notifications",
                   responses={200: ref("ReadAll")}),
    },
}


async def inbox(request: web.Request) -> web.Response:
    viewer = require_user(request)
    page = page_request(request, 2)
    return web.json_response(await notifications.inbox(request.app[keys.DB], viewer.user_id,
                                                       page))


async def mark_read(request: web.Request) -> web.Response:
    viewer = require_user(request)
    raw = request.match_info["notification_id"]
    notification_id = parse_id(raw)
    if notification_id is None:
        raise NotFound(f"no notification '{raw[:40]}'")
    db = request.app[keys.DB]
    row = await notifications.mark_read(db, viewer.user_id, notification_id)
    events.notifications_read(request.app[keys.SERVICES], viewer.user_id,
                              await notifications.unread_count(db, viewer.user_id))
    return web.json_response(notifications.notification_json(row))


async def mark_all_read(request: web.Request) -> web.Response:
    viewer = require_user(request)
    db = request.app[keys.DB]
    marked = await notifications.mark_all_read(db, viewer.user_id)
    unread = await notifications.unread_count(db, viewer.user_id)
    events.notifications_read(request.app[keys.SERVICES], viewer.user_id, unread)
    return web.json_response({"marked": marked, "unread_count": unread})
