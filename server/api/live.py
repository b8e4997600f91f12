"""Live delivery endpoints: WebSocket and its Server-Sent Events fallback."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.identity import require_admin
from server.live import hooks
from server.live.sse import event_stream
from server.live.ws import websocket
from server.openapi import header_param, op, query_param, refusal
from server.validation import json_body

TOKEN = query_param("token", {"type": "string"},
                    "an access or API token, for clients that cannot send headers")
LAST_ID = query_param("last_id", {"type": "integer", "minimum": 0},
                      "send stored notifications newer than this id first")
TOPIC = query_param("topic", {"type": "string"}, "also follow video:<id> or channel:<id>")
HOOK_BODY: dict[str, Any] = {"type": "object", "additionalProperties": False,
                             "properties": {"title": {"type": "string", "minLength": 1,
                                                      "maxLength": 200}}}
PUBLISHED = {"type": "object", "required": ["video_id", "published_at"],
             "properties": {"video_id": {"type": "string"},
                            "published_at": {"type": "string"}}}
SCHEMAS: dict[str, Any] = {"TestHookPublished": PUBLISHED}
PATHS = {
    "/api/ws": {
        "get": op("WebSocket (RFC 6455) of notifications and live events; messages "
                  "resume/subscribe/unsubscribe/ping. Past ws_connections_per_user live "
                  "connections (default 16, WebSocket and SSE together) the socket is "
                  "closed at once with 1008 (RFC 6455 section 7.4.1) and the reason",
                  tag="live", params=[TOKEN, LAST_ID], responses={101: None}),
    },
    "/api/events": {
        "get": refusal(op(
            "The same stream as Server-Sent Events; notifications carry id: lines",
            tag="live", params=[TOKEN, LAST_ID, TOPIC,
                                header_param("Last-Event-ID", "resume after this notification id")],
            responses={200: "text/event-stream"}),
            429, "the user already has ws_connections_per_user live connections (default "
            "16, WebSocket and SSE together): close one first (RFC 6585 section 4)"),
    },
    "/api/admin/test-hooks/publish": {
        "post": op("Benchmarks only (setting test_hooks, off by default: 404): make a public "
                   "video in my channel ready through the pipeline's event path",
                   tag="live", body=HOOK_BODY, body_required=False,
                   responses={201: {"$ref": "#/components/schemas/TestHookPublished"}}),
    },
}


async def test_hook_publish(request: web.Request) -> web.Response:
    hooks.check_enabled(request.app)
    viewer = require_admin(request)
    body = await json_body(request, HOOK_BODY) if request.can_read_body else {}
    video = await hooks.publish_now(request.app, viewer.user_id, body.get("title", "bench"))
    return web.json_response({"video_id": video["public_id"],
                              "published_at": video["published_at"]}, status=201)

__all__ = ["PATHS", "SCHEMAS", "event_stream", "test_hook_publish", "websocket"]
