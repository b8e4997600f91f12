"""Every open live connection, so that shutdown can close them all."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import WSCloseCode, web

from server.bus import Subscription


@dataclass(eq=False)
class LiveHub:
    sockets: set[web.WebSocketResponse] = field(default_factory=set)
    streams: set[Subscription] = field(default_factory=set)

    async def close_all(self) -> None:
        for subscription in list(self.streams):
            # An SSE handler ends when its subscription does, telling the client why.
            subscription.bus.unsubscribe(subscription, reason="server shutting down")
        for ws in list(self.sockets):
            # RFC 6455 section 7.4.1: 1001 "going away", e.g. a server going down.
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
