"""Live delivery endpoints: WebSocket and its Server-Sent Events fallback."""

from __future__ import annotations

from server.live.sse import event_stream
from server.live.ws import websocket
from server.openapi import header_param, op, query_param

TOKEN = query_param("token", {"type": "string"},
                    "an access or API token, for clients that cannot send headers")
LAST_ID = query_param("last_id", {"type": "integer", "minimum": 0},
                      "send stored notifications newer than this id first")
TOPIC = query_param("topic", {"type": "string"}, "also follow video:<id> or channel:<id>")
SCHEMAS: dict[str, object] = {}
PATHS = {
    "/api/ws": {
        "get": op("WebSocket (RFC 6455) of notifications and live events; messages "
                  "resume/subscribe/unsubscribe/ping", tag="live", params=[TOKEN, LAST_ID],
                  responses={101: None}),
    },
    "/api/events": {
        "get": op("The same stream as Server-Sent Events; notifications carry id: lines",
                  tag="live",
                  params=[TOKEN, LAST_ID, TOPIC,
                          header_param("Last-Event-ID", "resume after this notification id")],
                  responses={200: "text/event-stream"}),
    },
}

__all__ = ["PATHS", "SCHEMAS", "event_stream", "websocket"]
