"""Every open live connection, so that shutdown can close them all, and how many each user
has open (ws_connections_per_user)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import WSCloseCode, web

from server.bus import Subscription


@dataclass(eq=False)
class LiveHub:
    sockets: set[web.WebSocketResponse] = field(default_factory=set)
    streams: set[Subscription] = field(default_factory=set)
    per_user: dict[int, int] = field(default_factory=dict)

    def admit(self, user_id: int, limit: int) -> bool:
        """Count one more live connection of the user; False (nothing counted) when that
        would pass `limit` (0: no limit). Checked and counted in one step, with no await
        between, so a burst of connections cannot all pass the check together."""
        count = self.per_user.get(user_id, 0)
        if 0 < limit <= count:
            return False
        self.per_user[user_id] = count + 1
        return True

    def release(self, user_id: int) -> None:
        count = self.per_user.get(user_id, 0) - 1
        if count > 0:
            self.per_user[user_id] = count
        else:
            self.per_user.pop(user_id, None)

    async def close_all(self) -> None:
        for subscription in list(self.streams):
            # An SSE handler ends when its subscription does, telling the client why.
            subscription.bus.unsubscribe(subscription, reason="server shutting down")
        for ws in list(self.sockets):
            # RFC 6455 section 7.4.1: 1001 "going away", e.g. a server going down.
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
