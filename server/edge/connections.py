"""Connections before their requests: a head that must arrive within `header_timeout`, and
at most `max_connections_per_address` open connections per client address.

aiohttp 3.14 offers no hook for either. Its public knobs stop at `keepalive_timeout` (a
timer armed when a connection opens and after each response, and not moved by incoming
bytes: so it already bounds a trickled head, but only at the idle timeout, 75 s) and the
head's size limits; `web.Server` and its `RequestHandler` have no header or read timeout
and no say over which connections are accepted. So the listening socket
(server/edge/listen.py) is made with `loop.create_server` and this module's factory, which
wraps the `RequestHandler` that `AppRunner.server` makes for each connection:

- the wrapper is the transport's protocol and passes every callback on to aiohttp's;
- `connection_made` counts the peer's address (`transport.get_extra_info('peername')`) and
  closes a connection over the limit at once, before aiohttp sees it;
- a deadline is armed when a connection opens and when the first byte of a later head
  arrives while no request is being answered (nginx's client_header_timeout works the
  same way); the edge middleware calls `head_arrived` as each request starts (aiohttp has
  parsed its head by then) and the deadline is off until that request's task, which
  writes the response, has ended. A connection whose head is late is aborted, as nginx
  closes one without an answer (it only logs a 408).

Only public asyncio and aiohttp APIs are used; HTTP is parsed by aiohttp alone.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from typing import Any, cast

from aiohttp import web

HEADER_TIMEOUT = "header_timeout"
PER_ADDRESS = "per_address"


def peer_address(transport: asyncio.BaseTransport) -> str:
    """The peer's IP address as the rest of the server writes it (request.remote), an
    IPv4-mapped IPv6 address (a dual-stack socket's IPv4 client) as plain IPv4."""
    peer = transport.get_extra_info("peername")
    if not isinstance(peer, tuple) or not peer:
        return ""  # a Unix socket: no address to count
    host = str(peer[0])
    try:
        mapped = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(mapped, ipaddress.IPv6Address) and mapped.ipv4_mapped is not None:
        return str(mapped.ipv4_mapped)
    return host


class ConnectionGuard:
    """The protocol factory handed to `loop.create_server`: one `GuardedConnection` per
    accepted connection, around a protocol from `inner` (aiohttp's `web.Server`)."""

    def __init__(self, inner: Callable[[], asyncio.Protocol], *, header_timeout: float,
                 per_address: int, exempt: frozenset[str],
                 on_shed: Callable[[str], None] | None = None) -> None:
        self.inner = inner
        self.header_timeout = header_timeout
        self.per_address = per_address
        self.exempt = exempt
        self.on_shed = on_shed
        self.open: dict[str, int] = {}

    def __call__(self) -> GuardedConnection:
        return GuardedConnection(self)

    def admit(self, address: str) -> bool:
        """Count one more connection of `address`; False when that is over the limit.

        A trusted proxy (trusted_proxies) is exempt: every client behind it shares its
        address, so the per-client limit is the proxy's to apply (nginx `limit_conn`).
        """
        if not address or address in self.exempt:
            return True
        count = self.open.get(address, 0)
        if 0 < self.per_address <= count:
            return False
        self.open[address] = count + 1
        return True

    def release(self, address: str) -> None:
        count = self.open.get(address, 0) - 1
        if count > 0:
            self.open[address] = count
        else:
            self.open.pop(address, None)

    def shed(self, reason: str) -> None:
        if self.on_shed is not None:
            self.on_shed(reason)


class GuardedConnection(asyncio.Protocol):
    __slots__ = ("address", "busy", "counted", "deadline", "guard", "inner", "transport")

    def __init__(self, guard: ConnectionGuard) -> None:
        self.guard = guard
        self.inner: asyncio.Protocol | None = None
        self.transport: asyncio.Transport | None = None
        self.deadline: asyncio.TimerHandle | None = None
        self.address = ""
        self.counted = False
        self.busy = 0  # requests of this connection being answered (pipelining: several)

    # --- asyncio.Protocol, passed on to aiohttp's RequestHandler --------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's do not derive from asyncio.Transport, so no check).
        stream = cast(asyncio.Transport, transport)
        self.address = peer_address(stream)
        if not self.guard.admit(self.address):
            self.guard.shed(PER_ADDRESS)
            stream.abort()  # nothing was read or written: free the socket now
            return
        self.counted = True
        self.transport = stream
        self.inner = self.guard.inner()
        self.inner.connection_made(stream)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.inner is None:
            return
        if self.deadline is None and not self.busy:
            self._arm()  # the first byte of the next head on a kept-alive connection
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.counted:
            self.counted = False
            self.guard.release(self.address)
        self.transport = None
        if self.inner is not None:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    # --- The head's deadline --------------------------------------------------------------

    def head_arrived(self, task: asyncio.Task[Any] | None) -> None:
        """A request's head is in (aiohttp parsed it): no deadline until `task`, which
        answers the request, has ended."""
        self._disarm()
        if task is None:
            return
        self.busy += 1
        task.add_done_callback(self._answered)

    def _answered(self, _: asyncio.Task[Any]) -> None:
        self.busy -= 1

    def _arm(self) -> None:
        if self.guard.header_timeout > 0:
            loop = asyncio.get_running_loop()
            self.deadline = loop.call_later(self.guard.header_timeout, self._late)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _late(self) -> None:
        self.deadline = None
        if self.busy or self.transport is None:
            return
        self.guard.shed(HEADER_TIMEOUT)
        # Aborted, not closed: a TLS close would wait for the peer's close_notify, and a
        # client that trickles its head is not owed a graceful end.
        self.transport.abort()


def head_arrived(request: web.BaseRequest) -> None:
    """Called by the edge middleware as each request starts. Its task is the one aiohttp
    made for this request, which also writes the response. Nothing happens for a
    connection the guard did not accept (aiohttp's test server, for one)."""
    transport = request.transport
    if transport is None:
        return
    protocol = transport.get_protocol()
    if isinstance(protocol, GuardedConnection):
        protocol.head_arrived(asyncio.current_task())
