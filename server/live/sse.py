"""`GET /api/events`: the same stream as /api/ws as Server-Sent Events (WHATWG HTML,
section 9.2), for clients without WebSocket.

Notifications carry `id:` lines with their notification id, so a reconnecting
EventSource resumes by itself (it sends `Last-Event-ID`); other events carry no id and
leave the last event id where it was (section 9.2.6). `?topic=` (repeatable) follows
video or channel topics too. When the server drops a slow reader or shuts down, a last
`event: closed` carries the reason.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from server import events, keys
from server.errors import BadRequest, TooManyRequests
from server.live.connect import (
    MAX_TOPICS,
    TOO_MANY_SLUG,
    authenticate,
    backlog,
    check_topic,
    parse_last_id,
    too_many,
)

RETRY_MS = 3000


def _frame(text: str, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}data: {text}\n\n".encode()


async def event_stream(request: web.Request) -> web.StreamResponse:
    viewer = await authenticate(request)
    header = request.headers.get("Last-Event-ID")
    last_id = parse_last_id(header, "Last-Event-ID") if header else \
        parse_last_id(request.query.get("last_id"))
    wanted = request.query.getall("topic", [])
    if len(wanted) > MAX_TOPICS:
        raise BadRequest(f"at most {MAX_TOPICS} topics per connection")
    app = request.app
    topics = {events.user_topic(viewer.user_id)}
    for topic in wanted:
        topics.add(await check_topic(app, viewer, topic))
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",  # tell nginx not to buffer the stream
    })
    hub, metrics = app[keys.LIVE], app[keys.METRICS]
    limit = app[keys.CONFIG].ws_connections_per_user
    if not hub.admit(viewer.user_id, limit):
        # RFC 6585 section 4: 429, with the reason in the problem's detail. An EventSource
        # does not reconnect after an answer other than 200 (WHATWG HTML section 9.2.3).
        raise TooManyRequests(too_many(limit), slug=TOO_MANY_SLUG)
    subscription = app[keys.BUS].subscribe(topics, user_id=viewer.user_id,
                                           is_admin=viewer.is_admin)
    hub.streams.add(subscription)
    metrics.live_connections.inc()
    heartbeat = app[keys.CONFIG].ws_heartbeat_seconds
    try:
        await response.prepare(request)
        await response.write(f"retry: {RETRY_MS}\n\n".encode())
        sent_up_to = 0
        if last_id is not None:
            async for notification_id, text in backlog(app, viewer.user_id, last_id):
                await response.write(_frame(text, notification_id))
                sent_up_to = notification_id
        while True:
            try:
                message = await asyncio.wait_for(subscription.get(), heartbeat)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")  # a comment line, ignored
                continue
            if message is None:
                break
            if message.get("type") == "notification":
                notification_id = message["notification"]["id"]
                if notification_id <= sent_up_to:
                    continue
                await response.write(_frame(message.text, notification_id))
            else:
                await response.write(_frame(message.text))
        if subscription.dropped:
            with contextlib.suppress(ConnectionError):
                await response.write(f"event: closed\ndata: {subscription.dropped}\n\n".encode())
    except ConnectionError:
        pass
    finally:
        subscription.close()
        hub.streams.discard(subscription)
        hub.release(viewer.user_id)
        metrics.live_connections.dec()
    return response
